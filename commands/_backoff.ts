/**
 * Delays between reconnection attempts: exponential, capped, with jitter,
 * so that the members of a room whose server restarts do not all knock at
 * the same instant. Ten lines of arithmetic did not justify an npm
 * dependency.
 *
 * @module
 */

/** Options of {@linkcode Backoff}. */
export interface BackoffOptions {
  /** The first delay, before jitter. @default 500 */
  initialMs?: number;
  /** The largest delay. @default 30000 */
  maxMs?: number;
  /** A number in [0, 1) (tests pass a fixed one). @default Math.random */
  random?: () => number;
}

/**
 * Each delay is drawn between half and all of a base that doubles from
 * `initialMs` up to `maxMs` ("equal jitter"): never shorter than half the
 * base, so a failing server is not hammered, and spread over the other half.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  /** A backoff at its first delay. */
  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 500;
    this.#maxMs = options.maxMs ?? 30_000;
    this.#random = options.random ?? Math.random;
  }

  /** The delay before the next attempt, in ms; each call doubles the base, up to the cap. */
  next(): number {
    const base = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(base / 2 + this.#random() * base / 2);
  }

  /** Starts again from the first delay (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}
