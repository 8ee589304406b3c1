/**
 * Gives the C heap's free pages back to the system after many connections
 * close. Once V8 has collected a closed connection's objects, what the
 * server still holds is glibc's malloc arenas (the runtime's socket and
 * buffer allocations): free, but not returned, so the RSS stays at nearly
 * its peak (bench/idle_connections.ts). `malloc_trim(0)` returns them.
 *
 * Only on Linux with glibc (`libc.so.6` exporting `malloc_trim`), and only
 * with `--allow-ffi`: otherwise, or when the library cannot be loaded, it
 * does nothing. It never throws.
 *
 * @module
 */

type Trim = () => Promise<unknown>;

/** undefined: not tried yet; null: cannot load here. */
let loaded: Trim | null | undefined;

function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

function load(): Trim | null {
  if (Deno.build.os !== "linux") return null;
  try {
    const lib = Deno.dlopen("libc.so.6", {
      // On a worker thread: a trim walks every arena, which can take some
      // milliseconds that the event loop should not wait for.
      malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true },
    });
    return () => lib.symbols.malloc_trim(0n);
  } catch {
    // Not glibc (musl has no libc.so.6), or no such symbol.
    return null;
  }
}

/**
 * Returns free C heap memory to the system, when this process can; resolves
 * to whether it tried.
 */
export async function mallocTrim(): Promise<boolean> {
  // Asked each time: a permission can be revoked.
  if (!ffiGranted()) return false;
  if (loaded === undefined) loaded = load();
  if (loaded === null) return false;
  try {
    await loaded();
    return true;
  } catch {
    return false;
  }
}

/** Options of {@linkcode TrimScheduler}. */
export interface TrimSchedulerOptions {
  /** Closes since the last trim that make a trim worth doing. @default 64 */
  minClosed?: number;
  /** Delay from the close that crosses `minClosed` to the trim, in ms. @default 2000 */
  delayMs?: number;
  /** Least time between two trims, in ms. @default 10000 */
  minIntervalMs?: number;
  /** The trim; a test replaces it. @default mallocTrim */
  trim?: () => Promise<unknown>;
}

/**
 * Decides when to trim: a few seconds after many connections have closed,
 * at most once every `minIntervalMs`, and once more a while later, when V8
 * has collected the closed connections' buffers (its memory reducer runs
 * about 20 s after the heap stops changing) and freed their C memory.
 */
export class TrimScheduler {
  readonly #minClosed: number;
  readonly #delayMs: number;
  readonly #minIntervalMs: number;
  readonly #trim: () => Promise<unknown>;
  #closed = 0;
  #lastTrim = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the next timer is the follow-up after a trim. */
  #followUp = false;
  #stopped = false;

  constructor(options: TrimSchedulerOptions = {}) {
    this.#minClosed = options.minClosed ?? 64;
    this.#delayMs = options.delayMs ?? 2000;
    this.#minIntervalMs = options.minIntervalMs ?? 10_000;
    this.#trim = options.trim ?? mallocTrim;
  }

  /** Counts one closed connection. */
  closed(): void {
    if (this.#stopped) return;
    this.#closed++;
    if (this.#closed < this.#minClosed) return;
    if (this.#timer !== undefined && !this.#followUp) return;
    this.#schedule(this.#delayMs, false);
  }

  /** Cancels any pending trim; later closes are ignored. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number, followUp: boolean): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const wait = Math.max(delayMs, this.#lastTrim + this.#minIntervalMs - performance.now());
    this.#followUp = followUp;
    const timer = setTimeout(() => this.#run(), wait);
    // A pending trim never keeps the process alive.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #run(): void {
    this.#timer = undefined;
    const followUp = this.#followUp;
    this.#followUp = false;
    this.#closed = 0;
    this.#lastTrim = performance.now();
    this.#trim().catch(() => {}).finally(() => {
      if (!followUp && !this.#stopped && this.#timer === undefined) {
        this.#schedule(30_000, true);
      }
    });
  }
}
