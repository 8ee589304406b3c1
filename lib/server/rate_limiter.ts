/**
 * Per-key request limits as token buckets: a key may make `count` requests
 * at once (the burst) and earns them back at `count` per period. Buckets
 * are keyed by fingerprint alone, so a limit holds across all of a key's
 * connections, and a bucket survives a change of the key's rate: the
 * tokens left are kept (clamped to the new burst), never refilled, so that
 * alternating between connections made before and after an edit of
 * `rate=` cannot reset the limit.
 *
 * @module
 */

import type { Rate } from "../trust/key_options.ts";

/**
 * The outcome of taking a token.
 *
 * @example Refused, with when to retry
 * ```ts
 * import type { RateDecision } from "@ovtp/ovtp";
 *
 * const decision: RateDecision = { allowed: false, retryAfterMs: 1500 };
 * if (!decision.allowed) console.log(`retry in ${decision.retryAfterMs} ms`);
 * ```
 */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/**
 * Where a server takes a key's tokens: in memory by default, or somewhere
 * relays share (a cluster), so that one key's budget holds across them.
 *
 * @example A limiter that allows everything
 * ```ts
 * import type { Limiter } from "@ovtp/ovtp";
 *
 * const open: Limiter = { take: () => ({ allowed: true }) };
 * ```
 */
export interface Limiter {
  /** Takes one token from `key`'s bucket under `rate`. */
  take(key: string, rate: Rate): RateDecision | Promise<RateDecision>;
}

/** One key's bucket: what a shared limiter stores. */
export interface TokenBucket {
  tokens: number;
  updated: number;
  rate: Rate;
}

/**
 * Takes one token from `bucket` (a full one when undefined) at `now`:
 * returns the bucket to store and the decision. Pure, so that a shared
 * store can run it inside a compare-and-set.
 */
export function takeToken(
  previous: TokenBucket | undefined,
  rate: Rate,
  now: number,
): { bucket: TokenBucket; decision: RateDecision } {
  const bucket = previous ? { ...previous } : { tokens: rate.count, updated: now, rate };
  // Time since the last request earns tokens at the rate then in force;
  // a new rate applies from now on, and its burst caps what is left.
  const earned = Math.max(0, now - bucket.updated) * bucket.rate.count / bucket.rate.perMs;
  bucket.tokens = Math.min(bucket.rate.count, rate.count, bucket.tokens + earned);
  bucket.rate = rate;
  bucket.updated = now;
  const perToken = rate.perMs / rate.count;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return { bucket, decision: { allowed: true } };
  }
  return {
    bucket,
    decision: { allowed: false, retryAfterMs: Math.ceil((1 - bucket.tokens) * perToken) },
  };
}

/** Token buckets for many keys, in memory. */
export class RateLimiter implements Limiter {
  #buckets = new Map<string, TokenBucket>();
  #now: () => number;

  /** `now` is injectable for tests. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Takes one token from `key`'s bucket under `rate`. */
  take(key: string, rate: Rate): RateDecision {
    const { bucket, decision } = takeToken(this.#buckets.get(key), rate, this.#now());
    this.#buckets.set(key, bucket);
    return decision;
  }
}
