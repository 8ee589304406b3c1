/**
 * Builds the `ovtp` binary with `deno compile`: for this machine, or for one
 * of the release targets. `deno compile` downloads a runtime for the target
 * the first time, so this needs an internet connection.
 *
 * Usage: deno run -A scripts/compile.ts [TARGET]
 *   TARGET: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu,
 *           x86_64-apple-darwin, aarch64-apple-darwin, x86_64-pc-windows-msvc
 * Output: dist/ovtp (this machine) or dist/ovtp-TARGET[.exe]
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import permissions from "./permissions.json" with { type: "json" };
import v8Flags from "./v8_flags.json" with { type: "json" };

/** The five release targets. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/**
 * The permissions compiled into the binary, the least ovtp needs (README,
 * "Building a binary", says why each). They live in a JSON file because the
 * npm package's launcher (bin/ovtp.cjs, plain Node) reads the same list.
 */
export const PERMISSIONS: readonly string[] = permissions;

/**
 * V8 settings of the binary: a young generation of at most 2 MiB per
 * semi-space (V8's default grows to 16 MiB and more under the handshakes of
 * many clients, and never gives it back), which took a server's idle
 * connections from 65 to 39 KiB each, with no throughput measurably lost.
 * In a JSON file, as the permissions are, for the npm launcher.
 */
export const V8_FLAGS: string = v8Flags[0];

/** The `deno compile` arguments for a target (undefined: this machine). */
export function compileArgs(target?: string): string[] {
  const output = target
    ? `dist/ovtp-${target}${target.includes("windows") ? ".exe" : ""}`
    : "dist/ovtp";
  return [
    "compile",
    "--no-prompt",
    ...PERMISSIONS,
    V8_FLAGS,
    // Started with `new Worker(new URL(...))`, which compile cannot see:
    // without it, seal and open fall back to one thread.
    "--include",
    "lib/sealed/_chunk_worker.ts",
    // Loaded by main.ts from a computed path (see commandModule there).
    ...commandModules().flatMap((file) => ["--include", `commands/${file}`]),
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    "main.ts",
  ];
}

/**
 * The commands' modules, which main.ts loads by a computed path: every file
 * of commands/ but the shared helpers (`_*.ts`), which they import.
 */
export function commandModules(): string[] {
  const files = [];
  for (const entry of Deno.readDirSync(new URL("../commands/", import.meta.url))) {
    if (entry.isFile && entry.name.endsWith(".ts") && !entry.name.startsWith("_")) {
      files.push(entry.name);
    }
  }
  return files.sort();
}

if (import.meta.main) {
  const target = Deno.args[0];
  if (target !== undefined && !(TARGETS as readonly string[]).includes(target)) {
    console.error(`Unknown target "${target}"; one of: ${TARGETS.join(", ")}`);
    Deno.exit(2);
  }
  const root = fileURLToPath(new URL("..", import.meta.url));
  const status = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(target),
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  Deno.exit(status.code);
}
