/**
 * The one benchmark harness: what every bench script shares. The crypto
 * backend OVTP_CRYPTO names; environment knobs; readings from Linux's /proc
 * (CPU time, memory, load; NaN or "–" off Linux); statistics and the
 * figures' formats; the watchdog and signals that stop a run; and child
 * processes (a server announcing "listening on 127.0.0.1:PORT", or a
 * helper role of the bench itself) with their stderr drained into a bounded
 * log. The real `ovtp listen` with an authorized client is ./_listen.ts,
 * over tests/_listen_process.ts.
 *
 * @module
 */

import { cryptoBackendInfo, selectCryptoBackend } from "../lib/crypto/mod.ts";

// --- the crypto backend ----------------------------------------------------------------------

/** Selects the backend OVTP_CRYPTO names; returns "crypto: NAME (DETAIL)". */
export function applyCryptoEnv(): string {
  const choice = Deno.env.get("OVTP_CRYPTO") || "auto";
  if (choice !== "auto" && choice !== "native" && choice !== "portable") {
    throw new Error(`Invalid OVTP_CRYPTO "${choice}": use native, portable or auto`);
  }
  selectCryptoBackend(choice);
  const info = cryptoBackendInfo();
  return `crypto: ${info.name} (${info.detail})`;
}

// --- environment and /proc -------------------------------------------------------------------

let clockTicks = 100;

/** Reads the kernel's clock ticks per second; call once before {@linkcode cpuSeconds}. */
export async function initClockTicks(): Promise<void> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).output();
    const value = Number(new TextDecoder().decode(out.stdout).trim());
    clockTicks = value > 0 ? value : 100;
  } catch {
    clockTicks = 100;
  }
}

/** A numeric knob from the environment, checked against its range. */
export function envNumber(name: string, fallback: number, min: number, max: number): number {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`Invalid ${name} "${text}": expected a number from ${min} to ${max}`);
  }
  return value;
}

/** CPU seconds (user + system) a process has used, or NaN off Linux. */
export function cpuSeconds(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds of the whole machine (all cores) from /proc/stat: `busy` is
 * user, system, irq and softirq time of every process and the kernel;
 * `steal` is time the hypervisor gave this virtual machine's CPUs to someone
 * else.
 */
export function machineSeconds(): { busy: number; steal: number } {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim().split(/\s+/)
      .slice(1, 9).map(Number);
    return { busy: (user + nice + system + irq + softirq) / clockTicks, steal: steal / clockTicks };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

/** Resident set size now in KiB, or 0 when the process is gone. */
export function rssKib(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Peak resident set size in KiB, or NaN. */
export function peakRssKib(pid: number | "self"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** The 1, 5 and 15 minute load averages, or "–". */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "–";
  }
}

// --- statistics and formats ------------------------------------------------------------------

/** The q-quantile of sorted values, interpolated between the closest ranks (NaN when empty). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

/** The median of values in any order. */
export function median(values: number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

/** A rate or a count: one decimal below 100, none above; "–" when not finite. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { maximumFractionDigits: value < 100 ? 1 : 0 });
}

/** Milliseconds: three decimals below 10, two above; "–" when not finite. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value < 10 ? value.toFixed(3) : value.toFixed(2);
}

/** A share (CPU seconds per wall second) as a whole percentage; "–" when not finite. */
export function percent(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value * 100)}%` : "–";
}

/** Three table cells: the median, min and max of `values`, each as {@linkcode fmt} writes it. */
export function medianMinMax(values: number[]): string {
  return `${fmt(median(values))} | ${fmt(Math.min(...values))} | ${fmt(Math.max(...values))}`;
}

/** The median of `pick` over `samples`, as a percentage cell. */
export function medianPercent<T>(samples: T[], pick: (sample: T) => number): string {
  return percent(median(samples.map(pick)));
}

// --- stopping a run --------------------------------------------------------------------------

/** A run's watchdog and signal handlers, from {@linkcode guardRun}. */
export interface RunGuard {
  /** Stops the run with exit `code` (the first stop's code stays), saying why. */
  stop(code: number, why: string): void;
  /** The exit code of the stop, or undefined while the run goes on. */
  readonly code: number | undefined;
  /** Removes the watchdog and the signal handlers. */
  dispose(): void;
}

/**
 * Stops the run (exit 3) when it has taken `timeoutSeconds` (BENCH_TIMEOUT)
 * and on SIGINT or SIGTERM (exit 130), calling `onStop` (a cleanup) each
 * time; the measurement then fails fast and the bench returns the code.
 */
export function guardRun(timeoutSeconds: number, onStop: () => void = () => {}): RunGuard {
  let code: number | undefined;
  const stop = (exit: number, why: string) => {
    code ??= exit;
    console.error(`bench: ${why}; stopping`);
    onStop();
  };
  const watchdog = setTimeout(
    () => stop(3, `the whole run exceeded BENCH_TIMEOUT=${timeoutSeconds} s`),
    timeoutSeconds * 1000,
  );
  const onSignal = () => stop(130, "interrupted");
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  return {
    stop,
    get code() {
      return code;
    },
    dispose() {
      clearTimeout(watchdog);
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    },
  };
}

/**
 * Runs a bench's `main` as the program: exits with the code it resolves
 * with, or prints its error on one line and exits 1.
 */
export async function runMain(main: () => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`bench: error: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}

// --- child processes -------------------------------------------------------------------------

/** The non-empty lines of a byte stream. */
export async function* lines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    for (const line of parts) if (line) yield line;
  }
  if (buffered) yield buffered;
}

/**
 * `BENCH_CPU_PROF=DIR`: every child writes a V8 CPU profile into DIR when
 * it exits (`deno run --cpu-prof`), to see where a benchmark's time goes.
 * Profiling slows the children: figures from such a run are not comparable.
 */
function cpuProfileFlags(): string[] {
  const dir = Deno.env.get("BENCH_CPU_PROF");
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/** A child process whose stderr is drained into a bounded log. */
export class Child {
  readonly process: Deno.ChildProcess;
  readonly log: string[] = [];
  readonly #drained: Promise<void>;
  #exited = false;

  constructor(args: string[], stdin: "piped" | "null", stdout: "piped" | "null") {
    const process = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-all", ...cpuProfileFlags(), ...args],
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdin,
      stdout,
      stderr: "piped",
    }).spawn();
    this.process = process;
    process.status.then(() => (this.#exited = true));
    this.#drained = (async () => {
      for await (const line of lines(process.stderr)) {
        this.log.push(line);
        if (this.log.length > 200) this.log.shift();
        this.onLine?.(line);
      }
    })().catch(() => {});
  }

  /** Sees each stderr line as it comes. */
  onLine?: (line: string) => void;

  get pid(): number {
    return this.process.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; waits for the exit and the log. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.#exited) {
      try {
        this.process.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    const killer = setTimeout(() => {
      try {
        this.process.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, graceMs);
    await this.process.status;
    clearTimeout(killer);
    await this.#drained;
  }
}

/** Waits for `promise`, failing after `ms` with `what`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `deno run -A ARGS...` (stdout to /dev/null), which must print
 * "listening on 127.0.0.1:PORT" on stderr within `timeoutMs`; its stderr is
 * drained for the whole run (a server logging every connection would
 * otherwise stall on a full pipe).
 */
export async function startChildServer(
  args: string[],
  timeoutMs: number,
): Promise<{ server: Child; port: number }> {
  const server = new Child(args, "null", "null");
  const { promise, resolve, reject } = Promise.withResolvers<number>();
  server.onLine = (line) => {
    const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
    if (match) resolve(Number(match[1]));
  };
  server.process.status.then((status) =>
    reject(new Error(`The server exited early (code ${status.code}): ${server.log.join(" | ")}`))
  );
  try {
    return { server, port: await within(promise, timeoutMs, "The server's start") };
  } catch (error) {
    await server.stop(0);
    throw error;
  }
}
