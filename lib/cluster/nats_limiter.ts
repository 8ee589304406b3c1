/**
 * Rate-limit buckets shared by a cluster's relays: one key-value entry per
 * client key (`hex(fingerprint)` in `ovtp_rates`), changed by
 * compare-and-set, so that a key's budget is one budget whichever relays it
 * uses. While NATS cannot be reached, each relay counts in memory (a key may
 * then get a budget per relay), so that requests keep being served.
 *
 * @module
 */

import { fromUtf8, toHex, utf8 } from "../bytes.ts";
import type { Rate } from "../trust/key_options.ts";
import type { Logger } from "../logger.ts";
import {
  type Limiter,
  type RateDecision,
  RateLimiter,
  takeToken,
  type TokenBucket,
} from "../server/rate_limiter.ts";
import type { NatsCluster } from "./nats_cluster.ts";

/** See the module. */
export class NatsLimiter implements Limiter {
  readonly #cluster: NatsCluster;
  readonly #logger: Logger;
  readonly #local = new RateLimiter();
  #warned = false;

  /** Shares buckets through `cluster`. */
  constructor(cluster: NatsCluster, logger: Logger) {
    this.#cluster = cluster;
    this.#logger = logger;
  }

  async take(key: string, rate: Rate): Promise<RateDecision> {
    if (this.#cluster.connected) {
      try {
        const decision = await this.#shared(key, rate);
        this.#warned = false;
        return decision;
      } catch (error) {
        if (!this.#warned) {
          this.#logger.warn(
            `cluster: rate limits counted on this relay alone: ${(error as Error).message}`,
          );
        }
        this.#warned = true;
      }
    }
    return this.#local.take(key, rate);
  }

  async #shared(key: string, rate: Rate): Promise<RateDecision> {
    const { rates } = this.#cluster.state();
    const entryKey = toHex(utf8(key));
    // Another relay may take from this bucket between our read and our write:
    // the write then fails and the token is taken again from the new state.
    for (let attempt = 0; attempt < 20; attempt++) {
      const entry = await rates.get(entryKey);
      const previous = entry?.operation === "PUT" ? readBucket(entry.value) : undefined;
      const { bucket, decision } = takeToken(previous, rate, Date.now());
      const value = JSON.stringify(bucket);
      try {
        if (entry) await rates.update(entryKey, value, entry.revision);
        else await rates.create(entryKey, value);
        return decision;
      } catch (error) {
        if (!/wrong last sequence|key exists/i.test((error as Error).message)) throw error;
      }
    }
    throw new Error("too many relays changed the bucket at once");
  }
}

/** A stored bucket, or undefined (a full one) when it is not one. */
function readBucket(value: Uint8Array): TokenBucket | undefined {
  try {
    const b = JSON.parse(fromUtf8(value));
    const ok = Number.isFinite(b.tokens) && Number.isFinite(b.updated) &&
      Number.isSafeInteger(b.rate?.count) && b.rate.count > 0 && b.rate.perMs > 0;
    return ok ? b : undefined;
  } catch {
    return undefined;
  }
}
