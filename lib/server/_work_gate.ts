/**
 * Bounds the work one connection has running at once (requests and calls
 * being answered): their number, and what they hold, counted as each one's
 * body plus {@linkcode WORK_OVERHEAD}. Work past a bound still runs; the
 * connection stops reading until enough of it has finished, so a client
 * that pipelines without end is slowed down through TCP instead of growing
 * the server.
 *
 * @module
 */

/**
 * What the server holds for a piece of work besides its body (the message,
 * the handler's promises and closures), charged so that empty requests are
 * not free.
 */
export const WORK_OVERHEAD = 1024;

/** Counts work in flight against two bounds. */
export class WorkGate {
  #count = 0;
  #bytes = 0;
  #maxCount: number;
  #maxBytes: number;
  #waiting: (() => void)[] = [];

  /** At most `maxCount` pieces, holding at most `maxBytes` together. */
  constructor(maxCount: number, maxBytes: number) {
    this.#maxCount = maxCount;
    this.#maxBytes = maxBytes;
  }

  /** Work in flight now: pieces, and bytes charged. */
  get held(): { count: number; bytes: number } {
    return { count: this.#count, bytes: this.#bytes };
  }

  /**
   * Counts a piece of work whose body is `size` bytes until `work` settles;
   * returns a promise to await before reading more when a bound is reached
   * (undefined otherwise).
   */
  run(size: number, work: Promise<unknown>): Promise<void> | undefined {
    const cost = size + WORK_OVERHEAD;
    this.#count++;
    this.#bytes += cost;
    work.catch(() => {}).finally(() => {
      this.#count--;
      this.#bytes -= cost;
      if (!this.#full()) { for (const wake of this.#waiting.splice(0)) wake(); }
    });
    return this.#full() ? new Promise((resolve) => this.#waiting.push(resolve)) : undefined;
  }

  #full(): boolean {
    return this.#count >= this.#maxCount || this.#bytes >= this.#maxBytes;
  }
}
