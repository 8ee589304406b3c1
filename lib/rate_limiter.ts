/**
 * Per-key request limits as token buckets: a key may make `count` requests
 * at once (the burst) and earns them back at `count` per period. Buckets
 * are keyed by fingerprint, so a limit holds across all of a key's
 * connections.
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
    if (!bucket || bucket.rate.count !== rate.count || bucket.rate.perMs !== rate.perMs) {
      bucket = { tokens: rate.count, updated: now, rate };
      this.#buckets.set(key, bucket);
    }
    const perToken = rate.perMs / rate.count;
    bucket.tokens = Math.min(rate.count, bucket.tokens + (now - bucket.updated) / perToken);
    bucket.updated = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterMs: Math.ceil((1 - bucket.tokens) * perToken) };
  }
}
