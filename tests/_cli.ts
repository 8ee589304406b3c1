/**
 * Helpers for black-box tests: run the real CLI (`deno run main.ts`) with a
 * temporary OVTP_HOME, start `ovtp listen` on port 0, and stop it.
 */

import { tempDir, tempDirSync } from "./_tmp.ts";
import assert from "node:assert/strict";
import { DENO_RUN_MAIN, MAIN, startListenProcess } from "./_listen_process.ts";

export { MAIN };

/**
 * Whether {@linkcode Listener.stop} lets listen shut down and exit 0.
 * Windows has no SIGTERM: Deno terminates the process instead (exit code 1).
 */
export const GRACEFUL_STOP: boolean = Deno.build.os !== "windows";
if (!GRACEFUL_STOP) {
  console.log(
    "tests/_cli.ts: Windows has no SIGTERM, so stopping listen terminates it: " +
      "its exit code is not checked, and the tests of a graceful shutdown are skipped",
  );
}

/** Asserts that a listener stopped by {@linkcode Listener.stop} exited 0 (not on Windows). */
export function assertStoppedCleanly(code: number): void {
  if (GRACEFUL_STOP) assert.equal(code, 0);
}

/**
 * A `--exec` command: `posix` (run by `sh -c`), or on Windows (where it
 * would run under `cmd /c`, without the POSIX programs) `code` as a Deno
 * one-liner that does the same.
 */
export function execCommand(posix: string, code: string): string {
  // Nothing that sh or cmd would expand or unquote inside "...".
  if (/["$`\\%!]/.test(code)) throw new Error(`Cannot quote ${code} for sh and cmd alike`);
  return Deno.build.os === "windows" ? `"${Deno.execPath()}" eval "${code}"` : posix;
}

/**
 * Whether this process may create symlinks: always elsewhere, but on Windows
 * only with the privilege (an administrator, or Developer Mode).
 */
export const SYMLINKS: boolean = Deno.build.os !== "windows" || canSymlink();
if (!SYMLINKS) {
  console.log("tests/_cli.ts: this user cannot create symlinks: the symlink cases are skipped");
}

function canSymlink(): boolean {
  const dir = tempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/target`, "");
    Deno.symlinkSync(`${dir}/target`, `${dir}/link`, { type: "file" });
    return true;
  } catch {
    return false;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** `cat` as a `--exec` command. */
export const CAT: string = execCommand(
  "cat",
  "await Deno.stdin.readable.pipeTo(Deno.stdout.writable)",
);

/** What a finished CLI run printed, and its exit code. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode ovtp}. */
export interface RunOptions {
  /** The OVTP_HOME to use. */
  home?: string;
  /** Bytes or text for stdin; stdin is closed after it. */
  stdin?: string | Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** The working directory (default: the test's). */
  cwd?: string;
  /** The program and its first arguments (default: `deno run` of main.ts). */
  program?: string[];
}

/**
 * The environment every CLI run of the tests gets: no colours, and unknown
 * hosts recorded without asking (the tests connect to a new server each time;
 * the tests of the first-contact prompt set OVTP_ACCEPT_NEW to "0").
 */
export const CLI_ENV: Record<string, string> = {
  NO_COLOR: "1",
  DENO_NO_UPDATE_CHECK: "1",
  OVTP_ACCEPT_NEW: "1",
};

function baseEnv(home: string | undefined, extra: Record<string, string> = {}) {
  // HOME points at a scratch directory too, so nothing can reach ~/.ovtp.
  return {
    ...CLI_ENV,
    HOME: home ? `${home}.user` : tempDirSync(),
    ...(home ? { OVTP_HOME: home } : {}),
    ...extra,
  };
}

/** Starts `ovtp ARGS...` with every stream piped. */
function spawnOvtp(args: string[], options: RunOptions): Deno.ChildProcess {
  const [program, ...first] = options.program ?? DENO_RUN_MAIN;
  return new Deno.Command(program, {
    args: [...first, ...args],
    cwd: options.cwd,
    env: baseEnv(options.home, options.env),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Writes `options.stdin` (if any) to the child, then closes its stdin. */
async function feedStdin(child: Deno.ChildProcess, options: RunOptions): Promise<void> {
  const writer = child.stdin.getWriter();
  if (options.stdin !== undefined) {
    await writer.write(
      typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
    ).catch(() => {});
  }
  await writer.close().catch(() => {});
}

/** Runs `ovtp ARGS...` to completion. */
export async function ovtp(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const child = spawnOvtp(args, options);
  await feedStdin(child, options);
  const output = await child.output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/**
 * Runs `ovtp ARGS...` in `cwd` on a pseudo-terminal `columns` wide (util-linux
 * script(1)); returns its exit code and what the terminal received, as sent
 * (CR, erase sequences and all): what a person would see.
 */
export async function ovtpOnTerminal(
  args: string[],
  options: { home: string; cwd?: string; columns?: number },
): Promise<{ code: number; screen: string }> {
  const command = [Deno.execPath(), "run", "--quiet", "-A", MAIN, ...args]
    .map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const cd = options.cwd ? `cd '${options.cwd}'; ` : "";
  const output = await new Deno.Command("script", {
    args: ["-qec", `${cd}stty cols ${options.columns ?? 160}; ${command}`, "/dev/null"],
    env: { ...CLI_ENV, OVTP_HOME: options.home, HOME: `${options.home}.user` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, screen: new TextDecoder().decode(output.stdout) };
}

/** Creates an empty temporary directory to use as an OVTP_HOME. */
export async function tempHome(): Promise<string> {
  const dir = await tempDir({ prefix: "ovtp-test-" });
  await Deno.mkdir(`${dir}/home`);
  return `${dir}/home`;
}

/** Creates a home with a fresh identity; returns the home and its public line. */
export async function homeWithIdentity(comment: string): Promise<{ home: string; line: string }> {
  const home = await tempHome();
  const result = await ovtp(["keygen", "--comment", comment], { home });
  assert.equal(result.code, 0, result.stderr);
  const id = await ovtp(["id"], { home });
  return { home, line: id.stdout.trim() };
}

/** A running `ovtp listen`. */
export interface Listener {
  /** The process started (with an installed launcher, the launcher's). */
  pid: number;
  /** The port it listens on. */
  port: number;
  /** `127.0.0.1:PORT`. */
  target: string;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Waits until stdout or stderr contains `text`, or fails after `ms`. */
  waitFor(text: string | RegExp, stream?: "stdout" | "stderr", ms?: number): Promise<void>;
  /**
   * Sends a signal (SIGTERM by default) and waits for the exit code. On
   * Windows either signal terminates the process, which exits 1.
   */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Starts `ovtp listen --host 127.0.0.1 --port 0 ARGS...` and waits until it is ready. */
export async function startListen(
  home: string,
  args: string[] = [],
  options: Pick<RunOptions, "program" | "env"> = {},
): Promise<Listener> {
  const out = { stdout: "", stderr: "" };
  const listen = await startListenProcess({
    ovtpHome: home,
    args,
    program: options.program,
    env: { ...CLI_ENV, ...options.env },
    onStdout: (text) => out.stdout += text,
    onStderr: (text) => out.stderr += text,
    startupMs: 15_000,
  });
  const waitFor = async (
    text: string | RegExp,
    stream: "stdout" | "stderr" = "stderr",
    ms = 15000,
  ) => {
    const deadline = Date.now() + ms;
    const found = () =>
      typeof text === "string" ? out[stream].includes(text) : text.test(out[stream]);
    while (!found()) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${text} in listen's ${stream}:\n${out[stream]}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    pid: listen.pid,
    port: listen.port,
    target: `127.0.0.1:${listen.port}`,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    waitFor,
    stop: (signal: Deno.Signal = "SIGTERM") => listen.stop(signal),
  };
}

/** A server home with one authorized client home. */
export interface Pair {
  server: { home: string; line: string };
  client: { home: string; line: string };
}

/** Makes a server and a client identity, and authorizes the client. */
export async function makePair(): Promise<Pair> {
  const [server, client] = await Promise.all([
    homeWithIdentity("server"),
    homeWithIdentity("alice"),
  ]);
  const added = await ovtp(["add-key", client.line], { home: server.home });
  assert.equal(added.code, 0, added.stderr);
  return { server, client };
}

/** Asserts that stderr is exactly one `ovtp: error:` line (plus an optional hint). */
export function assertOneError(result: RunResult, pattern: RegExp): void {
  const lines = result.stderr.trimEnd().split("\n").filter((l) => !l.startsWith("ovtp: hint:"));
  const errors = lines.filter((l) => l.startsWith("ovtp: error: "));
  assert.equal(errors.length, 1, `expected one error line, got:\n${result.stderr}`);
  assert.match(errors[0], pattern);
}

/**
 * Runs `ovtp ARGS...` with its stdout closed before it writes anything, as
 * `ovtp ... | head -c 0` does once head has exited; returns the exit code
 * and stderr.
 */
export async function ovtpStdoutClosed(
  args: string[],
  options: RunOptions = {},
): Promise<{ code: number; stderr: string }> {
  const child = spawnOvtp(args, options);
  await child.stdout.cancel(); // Closes the pipe's only read end.
  const stderr = new Response(child.stderr).text();
  await feedStdin(child, options);
  return { code: (await child.status).code, stderr: await stderr };
}
