/**
 * README's first command, `npm install -g --install-links .`, into a fresh
 * npm prefix: done once per test run, for the tests that use the installed
 * `ovtp` (tests/install_test.ts, tests/readme_smoke_test.ts).
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

/** The checkout's root folder. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
const NPM = Deno.build.os === "windows" ? "npm.cmd" : "npm";

function hasNpm(): boolean {
  try {
    return new Deno.Command(NPM, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Whether npm is there to install with. */
export const HAS_NPM: boolean = hasNpm();

let installed: Promise<string[]> | undefined;

/** Installs the checkout into a fresh npm prefix (once); resolves with the `ovtp` command. */
export function install(): Promise<string[]> {
  installed ??= (async () => {
    const prefix = await tempDir({ prefix: "ovtp-npm-" });
    const result = await new Deno.Command(NPM, {
      args: [
        "install",
        "-g",
        "--install-links",
        "--no-audit",
        "--no-fund",
        "--prefix",
        prefix,
        ROOT,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(result.success, new TextDecoder().decode(result.stderr));
    const bin = Deno.build.os === "windows" ? `${prefix}\\ovtp.cmd` : `${prefix}/bin/ovtp`;
    return [bin];
  })();
  return installed;
}
