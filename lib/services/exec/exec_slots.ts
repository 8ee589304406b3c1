/**
 * Caps on the commands `--exec` runs at once, per key and in total, so that
 * one client cannot fill the server host with processes. A request over a
 * cap waits its turn in a bounded queue per key (first come, first served);
 * one over the queue's bound is answered `busy` at once.
 *
 * @module
 */

/** The caps of {@linkcode ExecSlots} when its options leave them out. */
export const DEFAULT_EXEC_SLOTS = { perKey: 4, total: 16, waitingPerKey: 1024 } as const;

/** Options of {@linkcode ExecSlots}. */
export interface ExecSlotsOptions {
  /** Commands running at once for one key. @default 4 */
  perKey?: number;
  /** Commands running at once in total. @default 16 */
  total?: number;
  /** Requests of one key waiting for a slot; more are answered `busy`. @default 1024 */
  waitingPerKey?: number;
}

/**
 * Slots for running commands, shared by every `--exec` handler of a server.
 *
 * @example Two commands at once for a key, the third waits
 * ```ts
 * import { ExecSlots } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const slots = new ExecSlots({ perKey: 2, total: 8, waitingPerKey: 1 });
 * const first = await slots.acquire("alice");
 * const second = await slots.acquire("alice");
 * assert.ok(first && second);
 * const third = slots.acquire("alice"); // Waits for a slot.
 * assert.equal(await slots.acquire("alice"), undefined); // Queue full: busy.
 * assert.ok(await slots.acquire("bob")); // Other keys are not held up.
 * first();
 * const release = await third;
 * assert.ok(release);
 * ```
 */
export class ExecSlots {
  readonly #perKey: number;
  readonly #total: number;
  readonly #waitingPerKey: number;
  #running = 0;
  #runningByKey = new Map<string, number>();
  // Each key's waiting requests, keys in the order they are served next.
  #waiting = new Map<string, (() => void)[]>();

  /** Creates the slots; every limit must be at least 1 (waiting may be 0). */
  constructor(options: ExecSlotsOptions = {}) {
    this.#perKey = options.perKey ?? DEFAULT_EXEC_SLOTS.perKey;
    this.#total = options.total ?? DEFAULT_EXEC_SLOTS.total;
    this.#waitingPerKey = options.waitingPerKey ?? DEFAULT_EXEC_SLOTS.waitingPerKey;
    if (!(this.#perKey >= 1 && this.#total >= 1 && this.#waitingPerKey >= 0)) {
      throw new RangeError("Cannot create exec slots: the limits must be at least 1");
    }
  }

  /**
   * Waits for a slot for `key` (a fingerprint) and resolves with the
   * function that frees it, or with undefined when `key` already has its
   * whole queue waiting (the caller answers `busy`) or when `signal` aborts
   * first (the request's connection ended: it must not run any more).
   */
  acquire(key: string, signal?: AbortSignal): Promise<(() => void) | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    if (this.#fits(key)) return Promise.resolve(this.#take(key));
    const waiting = this.#waiting.get(key) ?? [];
    if (waiting.length >= this.#waitingPerKey) return Promise.resolve(undefined);
    this.#waiting.set(key, waiting);
    return new Promise((resolve) => {
      const abort = () => {
        const index = waiting.indexOf(start);
        if (index >= 0) waiting.splice(index, 1);
        if (waiting.length === 0 && this.#waiting.get(key) === waiting) this.#waiting.delete(key);
        resolve(undefined);
      };
      const start = () => {
        signal?.removeEventListener("abort", abort);
        resolve(this.#take(key));
      };
      signal?.addEventListener("abort", abort, { once: true });
      waiting.push(start);
    });
  }

  #fits(key: string): boolean {
    return this.#running < this.#total && (this.#runningByKey.get(key) ?? 0) < this.#perKey;
  }

  #take(key: string): () => void {
    this.#running++;
    this.#runningByKey.set(key, (this.#runningByKey.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      const left = this.#runningByKey.get(key)! - 1;
      if (left > 0) this.#runningByKey.set(key, left);
      else this.#runningByKey.delete(key);
      this.#startWaiting();
    };
  }

  // Keys take turns: a key whose request starts goes to the back, so that
  // one key's long queue does not hold up the others.
  #startWaiting(): void {
    for (const [key, waiting] of [...this.#waiting]) {
      if (this.#running >= this.#total) return;
      if (!this.#fits(key)) continue;
      const start = waiting.shift()!;
      this.#waiting.delete(key);
      if (waiting.length > 0) this.#waiting.set(key, waiting);
      start();
    }
  }
}
