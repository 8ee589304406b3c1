/**
 * The real `ovtp listen` as a child process: the one way tests, the network
 * fuzzer and the benchmarks start it (`deno run main.ts listen --host
 * 127.0.0.1 --port 0`, with the compiled binary's permissions and V8
 * settings, the port read from the "listening on" line). Its output is
 * scanned as it arrives (a long fuzz run must not keep it whole; a test
 * that wants it whole collects the chunks), and its pid is exposed for RSS
 * and open-file counts.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { PERMISSIONS, V8_FLAGS } from "../scripts/compile.ts";

/** main.ts as a file path (a URL's pathname is "/C:/..." on Windows). */
export const MAIN: string = fileURLToPath(new URL("../main.ts", import.meta.url));
/** How the CLI is run here: main.ts with exactly the compiled binary's permissions and V8 settings. */
export const DENO_RUN_MAIN: readonly string[] = [
  Deno.execPath(),
  "run",
  "--quiet",
  ...PERMISSIONS,
  V8_FLAGS,
  MAIN,
];
/** What a crash or an unhandled rejection prints: Deno's banner, or a stack frame. */
const CRASH_PATTERN = /error: Uncaught|^\s+at /m;
/** How much of stdout is kept to look for a line in. */
const STDOUT_TAIL = 64 * 1024;

/** Options of {@linkcode startListenProcess}. */
export interface ListenProcessOptions {
  /** The server's OVTP_HOME. */
  ovtpHome: string;
  /** Its HOME, so that nothing can reach the real ~/.ovtp. @default `${ovtpHome}.user` */
  home?: string;
  /** More `ovtp listen` arguments. @default none */
  args?: string[];
  /** The program and its first arguments. @default DENO_RUN_MAIN */
  program?: readonly string[];
  /** More environment variables (NO_COLOR, HOME and OVTP_HOME are set). @default none */
  env?: Record<string, string>;
  /** Sees stdout as it comes, in chunks. @default none */
  onStdout?: (text: string) => void;
  /** Sees stderr as it comes, in chunks. @default none */
  onStderr?: (text: string) => void;
  /** Sees each stderr line as it comes. @default none */
  onStderrLine?: (line: string) => void;
  /** Sees each stdout line as it comes (without its newline). @default none */
  onStdoutLine?: (line: string) => void;
  /** How long it may take to listen. @default 30000 */
  startupMs?: number;
}

/** A running `ovtp listen`. */
export interface ListenProcess {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** Its process id. */
  readonly pid: number;
  /** Its exit status once it has exited, else undefined. */
  exitStatus(): Deno.CommandStatus | undefined;
  /** The stderr lines that look like a crash or a stack trace, so far. */
  crashLines(): string[];
  /** The number of lines printed on stderr so far. */
  stderrLines(): number;
  /** The last lines of stderr (for a failure report). */
  stderrTail(): string;
  /** Resolves true once stdout prints `text`, false after `ms`. */
  waitForStdout(text: string, ms: number): Promise<boolean>;
  /** Resident memory in bytes (Linux /proc), or undefined elsewhere. */
  rssBytes(): Promise<number | undefined>;
  /**
   * The most resident memory it has had since it started, in bytes (Linux
   * VmHWM), or undefined elsewhere: a peak during an attack shows here even
   * when the memory was freed before anyone looked.
   */
  peakRssBytes(): Promise<number | undefined>;
  /** Open file descriptors (Linux /proc), or undefined elsewhere. */
  openFiles(): Promise<number | undefined>;
  /** Sends `signal` (SIGKILL after `ms`) and resolves with the exit code. */
  stop(signal?: Deno.Signal, ms?: number): Promise<number>;
}

/**
 * What `command path` prints, or "" if it fails. Deno lets only --allow-all
 * read another process's /proc files, and `deno task fuzz` runs with less;
 * a child process may read them.
 */
async function outputOf(command: string, path: string): Promise<string> {
  try {
    const { success, stdout } = await new Deno.Command(command, {
      args: [path],
      stdout: "piped",
      stderr: "null",
    }).output();
    return success ? new TextDecoder().decode(stdout) : "";
  } catch {
    return "";
  }
}

/** Starts `ovtp listen --host 127.0.0.1 --port 0` and waits until it listens. */
export async function startListenProcess(options: ListenProcessOptions): Promise<ListenProcess> {
  const [program, ...first] = options.program ?? DENO_RUN_MAIN;
  const startupMs = options.startupMs ?? 30_000;
  const child = new Deno.Command(program, {
    args: [...first, "listen", "--host", "127.0.0.1", "--port", "0", ...(options.args ?? [])],
    env: {
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      HOME: options.home ?? `${options.ovtpHome}.user`,
      OVTP_HOME: options.ovtpHome,
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let status: Deno.CommandStatus | undefined;
  const statusPromise = child.status.then((s) => status = s);
  let stdoutTail = "";
  const waiters = new Set<{ text: string; resolve: (found: boolean) => void }>();
  const stderr = { tail: [] as string[], lines: 0, partial: "", crashes: [] as string[] };
  const { promise: ready, resolve: onReady } = Promise.withResolvers<number>();

  let stdoutPartial = "";
  const pumpStdout = (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      options.onStdout?.(text);
      if (options.onStdoutLine) {
        const lines = (stdoutPartial + text).split("\n");
        stdoutPartial = lines.pop()!;
        for (const line of lines) options.onStdoutLine(line);
      }
      stdoutTail = (stdoutTail + text).slice(-STDOUT_TAIL);
      for (const waiter of waiters) {
        if (stdoutTail.includes(waiter.text)) {
          waiters.delete(waiter);
          waiter.resolve(true);
        }
      }
    }
  })();
  const pumpStderr = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      options.onStderr?.(text);
      const lines = (stderr.partial + text).split("\n");
      stderr.partial = lines.pop()!;
      for (const line of lines) {
        options.onStderrLine?.(line);
        stderr.lines++;
        stderr.tail = [...stderr.tail.slice(-19), line];
        if (CRASH_PATTERN.test(line)) stderr.crashes.push(line);
        const listening = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (listening) onReady(Number(listening[1]));
      }
    }
    if (stderr.partial) {
      stderr.lines++;
      stderr.tail.push(stderr.partial);
      if (CRASH_PATTERN.test(stderr.partial)) stderr.crashes.push(stderr.partial);
    }
  })();

  let startupTimer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    ready,
    statusPromise.then((s) => {
      throw new Error(`ovtp listen exited with ${s.code}:\n${stderr.tail.join("\n")}`);
    }),
    new Promise<never>((_, reject) => {
      startupTimer = setTimeout(
        () => reject(new Error(`ovtp listen did not start in ${startupMs} ms`)),
        startupMs,
      );
    }),
  ]).catch(async (error) => {
    if (status === undefined) child.kill("SIGKILL");
    await statusPromise;
    throw error;
  }).finally(() => clearTimeout(startupTimer));

  const proc = `/proc/${child.pid}`;
  return {
    port,
    pid: child.pid,
    exitStatus: () => status,
    crashLines: () => [...stderr.crashes],
    stderrLines: () => stderr.lines,
    stderrTail: () => stderr.tail.join("\n"),
    waitForStdout(text, ms) {
      if (stdoutTail.includes(text)) return Promise.resolve(true);
      const { promise, resolve } = Promise.withResolvers<boolean>();
      const waiter = { text, resolve };
      waiters.add(waiter);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        resolve(false);
      }, ms);
      return promise.finally(() => clearTimeout(timer));
    },
    async rssBytes() {
      const kib = /^VmRSS:\s+(\d+) kB$/m.exec(await outputOf("cat", `${proc}/status`))?.[1];
      return kib ? Number(kib) * 1024 : undefined;
    },
    async peakRssBytes() {
      const kib = /^VmHWM:\s+(\d+) kB$/m.exec(await outputOf("cat", `${proc}/status`))?.[1];
      return kib ? Number(kib) * 1024 : undefined;
    },
    async openFiles() {
      const listing = await outputOf("ls", `${proc}/fd`);
      return listing ? listing.trim().split("\n").length : undefined;
    },
    async stop(signal = "SIGTERM", ms = 15_000) {
      if (status === undefined) child.kill(signal);
      const timer = setTimeout(() => {
        if (status === undefined) child.kill("SIGKILL");
      }, ms);
      const s = await statusPromise;
      clearTimeout(timer);
      await Promise.all([pumpStdout, pumpStderr]);
      return s.code;
    },
  };
}
