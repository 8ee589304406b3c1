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

import type { Rate } from "./key_options.ts";

/** The outcome of taking a token. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  updated: number;
  rate: Rate;
}

/** Token buckets for many keys. */
export class RateLimiter {
  #buckets = new Map<string, Bucket>();
  #now: () => number;

  /** `now` is injectable for tests. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Takes one token from `key`'s bucket under `rate`. */
  take(key: string, rate: Rate): RateDecision {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = { tokens: rate.count, updated: now, rate };
      this.#buckets.set(key, bucket);
    }
    // Time since the last request earns tokens at the rate then in force;
    // a new rate applies from now on, and its burst caps what is left.
    const earned = (now - bucket.updated) * bucket.rate.count / bucket.rate.perMs;
    bucket.tokens = Math.min(bucket.rate.count, rate.count, bucket.tokens + earned);
    bucket.rate = rate;
    bucket.updated = now;
    const perToken = rate.perMs / rate.count;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterMs: Math.ceil((1 - bucket.tokens) * perToken) };
  }
}
