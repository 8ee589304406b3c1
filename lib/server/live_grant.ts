/**
 * A connection's grant, kept current for the connection's whole life: the
 * authorizer is asked again every `intervalMs`, and a timer fires at the
 * key's expiry instant. Removal, expiry, a new name or a narrower `allow`
 * end the connection; a new rate, a later expiry or a wider `allow` apply
 * to the next request.
 *
 * @module
 */

import type { PublicKey } from "../identity/keys.ts";
import type { KeyOptions } from "../trust/key_options.ts";
import type { Authorizer, Grant } from "./types.ts";

/** How often an open connection's grant is checked again by default, in ms. */
export const DEFAULT_RECHECK_MS = 1000;

// setTimeout's delay is a signed 32-bit count of ms: a longer one fires at
// once. An expiry further away is waited for in steps of at most this.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why a connection's authorization ended. */
export interface GrantEnd {
  /** The connection-level error code sent to the client. */
  code: "not-authorized" | "key-expired";
  /** The error's message for the client. */
  message: string;
  /** What the server logs. */
  log: string;
}

/** Options of {@linkcode LiveGrant}. */
export interface LiveGrantOptions {
  /** Asks who the key is now. */
  authorize: Authorizer;
  /** The key being checked. */
  key: PublicKey;
  /** Its fingerprint, for messages. */
  fingerprint: string;
  /** Called once when the grant ends. */
  onEnd: (end: GrantEnd) => void;
  /** Told of an authorizer that fails (the grant then ends). */
  onError?: (error: Error) => void;
  /** How often to ask the authorizer again, in ms (at least 10). @default 1000 */
  intervalMs?: number;
}

/**
 * The current grant of one connection's key; see the module comment.
 * `current()` says why the connection must end, if it must, so that a
 * request arriving at the expiry instant is refused before the timer runs.
 */
export class LiveGrant {
  #grant: Grant;
  #options: LiveGrantOptions;
  #ticker: Ticker | undefined;
  #maxAgeMs = 0;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #ended: GrantEnd | undefined;
  #checking = false;

  /** Starts watching `first`, the grant the handshake got. */
  constructor(first: Grant, options: LiveGrantOptions) {
    this.#grant = first;
    this.#options = options;
    this.#armExpiry();
    if (!this.#ended) {
      // At least 10 ms apart: 0 would ask the authorizer without pause.
      const interval = Math.max(10, options.intervalMs ?? DEFAULT_RECHECK_MS);
      // An answer up to a quarter of the interval old will do (at most
      // 250 ms): thousands of idle connections then share a few looks at
      // authorized_keys a second instead of one each.
      this.#maxAgeMs = Math.min(250, interval / 4);
      this.#ticker = Ticker.join(interval, this.#recheck);
    }
  }

  /** The key's options as last read. */
  get options(): KeyOptions {
    return this.#grant.options ?? {};
  }

  /** Why the connection must end now, or undefined while the grant holds. */
  current(): GrantEnd | undefined {
    if (!this.#ended && expired(this.options)) this.#end(this.#expiredEnd());
    return this.#ended;
  }

  /** Stops the timers (when the connection ends). */
  stop(): void {
    this.#ticker?.leave(this.#recheck);
    this.#ticker = undefined;
    clearTimeout(this.#expiryTimer);
  }

  // A field, so that the ticker holds one function per grant.
  #recheck = async (): Promise<void> => {
    // A slow authorizer must not pile up calls.
    if (this.#checking || this.#ended) return;
    this.#checking = true;
    try {
      const next = await this.#options.authorize(this.#options.key, {
        maxAgeMs: this.#maxAgeMs,
      });
      if (this.#ended) return;
      if (next === undefined) {
        return this.#end({
          code: "not-authorized",
          message:
            `Not authorized: this server no longer accepts your key ${this.#options.fingerprint}`,
          log: "closed client: key removed",
        });
      }
      if (next.name !== this.#grant.name || narrower(this.options, next.options ?? {})) {
        return this.#end({
          code: "not-authorized",
          message: "Not authorized: your key's name or permissions on this server changed; " +
            "connect again",
          log: "closed client: key's name or permissions narrowed",
        });
      }
      this.#grant = next;
      this.#armExpiry();
    } catch (error) {
      // Fail closed: a grant that cannot be checked is not trusted.
      this.#options.onError?.(error as Error);
      this.#end({
        code: "not-authorized",
        message: "Not authorized: the server cannot check your key now",
        log: "closed client: cannot check authorization",
      });
    } finally {
      this.#checking = false;
    }
  };

  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    const expires = this.options.expires;
    if (!expires) return;
    const left = expires.getTime() - Date.now();
    if (left <= 0) return this.#end(this.#expiredEnd());
    this.#expiryTimer = setTimeout(() => this.#armExpiry(), Math.min(left, MAX_TIMER_MS));
  }

  #expiredEnd(): GrantEnd {
    return {
      code: "key-expired",
      message: `Not authorized: your key ${this.#options.fingerprint} expired on ${
        this.options.expires!.toISOString()
      }`,
      log: "closed client: key expired",
    };
  }

  #end(end: GrantEnd): void {
    if (this.#ended) return;
    this.#ended = end;
    this.stop();
    this.#options.onEnd(end);
  }
}

function expired(options: KeyOptions): boolean {
  return options.expires !== undefined && options.expires.getTime() <= Date.now();
}

/** Whether `after` takes away a service `before` allowed. */
function narrower(before: KeyOptions, after: KeyOptions): boolean {
  if (!after.allow) return false;
  if (!before.allow) return true;
  const now = after.allow;
  return before.allow.some((entry) => !now.includes(entry) && !now.includes(entry.split(":")[0]));
}

/**
 * One timer per recheck interval for every grant that uses it: ten
 * thousand idle connections then hold one timer, not one each, and are
 * checked together (against one cached read of authorized_keys).
 */
class Ticker {
  static #byInterval = new Map<number, Ticker>();
  #interval: number;
  #timer: ReturnType<typeof setInterval>;
  #tasks = new Set<() => unknown>();

  private constructor(interval: number) {
    this.#interval = interval;
    this.#timer = setInterval(() => {
      for (const task of this.#tasks) task();
    }, interval);
  }

  /** Runs `task` every `interval` ms until it leaves. */
  static join(interval: number, task: () => unknown): Ticker {
    let ticker = Ticker.#byInterval.get(interval);
    if (!ticker) {
      ticker = new Ticker(interval);
      Ticker.#byInterval.set(interval, ticker);
    }
    ticker.#tasks.add(task);
    return ticker;
  }

  /** Stops running `task`; the timer stops with the last one. */
  leave(task: () => unknown): void {
    this.#tasks.delete(task);
    if (this.#tasks.size > 0) return;
    clearInterval(this.#timer);
    Ticker.#byInterval.delete(this.#interval);
  }
}
