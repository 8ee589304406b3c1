#!/usr/bin/env node
// The `ovtp` command that `npm install -g` puts on the PATH: it runs main.ts
// on the Deno that the `deno` npm package brings, with the permissions and
// V8 settings the compiled binary has (scripts/permissions.json,
// scripts/v8_flags.json), in the caller's directory.
//
// Stopping this process must stop ovtp itself. Where Node can replace its
// process (process.execve, Node 22.15+ on POSIX) it becomes Deno, so the PID
// is ovtp's. Elsewhere Deno runs as a child in the same process group (so it
// can read the terminal), and this process forwards the signals it gets.
"use strict";

const { spawn } = require("node:child_process");
const path = require("node:path");

const root = path.join(__dirname, "..");
const permissions = require("../scripts/permissions.json");
const v8Flags = require("../scripts/v8_flags.json");
const args = [
  "run",
  "--quiet",
  "--no-prompt",
  "--config",
  path.join(root, "deno.json"),
  ...permissions,
  ...v8Flags,
  path.join(root, "main.ts"),
  ...process.argv.slice(2),
];

/** The Deno executable: the npm package's, else OVTP_DENO, else `deno` on the PATH. */
function denoExecutable() {
  try {
    const install = require.resolve("deno/install_api.cjs", { paths: [root] });
    return require(install).runInstall();
  } catch {
    return process.env.OVTP_DENO || "deno";
  }
}

const deno = denoExecutable();
if (typeof process.execve === "function" && process.platform !== "win32") {
  try {
    process.execve(deno, [deno, ...args], process.env);
  } catch {
    // A relative `deno` (searched on the PATH) cannot be exec'd by path: spawn below.
  }
}

const child = spawn(deno, args, { stdio: "inherit" });
child.on("error", (error) => {
  process.stderr.write(`ovtp: error: Cannot start Deno (${deno}): ${error.message}\n`);
  process.exit(1);
});

const FORWARDED = ["SIGTERM", "SIGHUP", "SIGQUIT", "SIGINT"];
for (const signal of FORWARDED) {
  try {
    // A Ctrl-C reaches the child from the terminal too: the copy forwarded
    // here is harmless, as ovtp's signal handlers stay in place once set.
    process.on(signal, () => child.kill(signal));
  } catch {
    // Not every signal exists on every platform (Windows has no SIGQUIT).
  }
}

child.on("exit", (code, signal) => {
  if (signal) {
    for (const name of FORWARDED) process.removeAllListeners(name);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
