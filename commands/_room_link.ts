/**
 * A chat room that outlives its connection: when the server goes away (a
 * restart, a network cut), the room is joined again on a new connection,
 * after a delay that grows with each failed attempt (./_backoff.ts), while
 * the person keeps the prompt. The relay keeps what is posted meanwhile for
 * members who are not connected and delivers it on the rejoin, so nothing
 * is lost; chat.ts drops an envelope id seen before, so nothing shows twice.
 *
 * Only a failure that connecting again may cure (kind `network`) is
 * retried: a changed host key, a key the server no longer accepts or a
 * refused join end the chat with their error.
 *
 * @module
 */

import type { ChatSession } from "../lib/services/chat/chat_session.ts";
import type { OvtpClient } from "../lib/client/client.ts";
import { OvtpError } from "../lib/errors.ts";
import { Backoff } from "./_backoff.ts";

/** Options of {@linkcode RoomLink}. */
export interface RoomLinkOptions {
  /** Opens a new connection to the same server (its key checked against known_hosts). */
  connect(): Promise<OvtpClient>;
  /** Joins the room on a connection. */
  join(client: OvtpClient): Promise<ChatSession>;
  /** Whether a lost connection is opened again (a person at a terminal) or ends the chat. */
  reconnect: boolean;
  /** Shows one status line ("disconnected: reconnecting in 2 s…"). */
  status(line: string): void;
  /** The connection was lost and will be retried. */
  onOffline?(): void;
  /** The room was joined again, as `session`. */
  onRejoin?(session: ChatSession): void;
  /** The delays between attempts. @default new Backoff() (0.5 s doubling to 30 s) */
  backoff?: Backoff;
}

/** A joined room and the loop that joins it again when its connection is lost. */
export class RoomLink {
  readonly #options: RoomLinkOptions;
  readonly #backoff: Backoff;
  readonly #failed = Promise.withResolvers<never>();
  #client: OvtpClient;
  #session: ChatSession;
  #online = true;
  #stopped = false;
  #retryAt = 0;
  #wake: (() => void) | undefined;

  /** Watches `client`, on which `session` was joined. */
  constructor(client: OvtpClient, session: ChatSession, options: RoomLinkOptions) {
    this.#client = client;
    this.#session = session;
    this.#options = options;
    this.#backoff = options.backoff ?? new Backoff();
    this.#failed.promise.catch(() => {});
    this.#watch();
  }

  /** Rejects with the failure that ended the chat for good; never resolves. */
  get failed(): Promise<never> {
    return this.#failed.promise;
  }

  /** The session, or undefined while disconnected. */
  get session(): ChatSession | undefined {
    return this.#online ? this.#session : undefined;
  }

  /** The latest session, also while disconnected (its member list, as last known). */
  get lastSession(): ChatSession {
    return this.#session;
  }

  /** While disconnected: when the next attempt is, as words. */
  get retryText(): string {
    const ms = Math.max(0, this.#retryAt - Date.now());
    return ms > 0 ? `reconnecting in ${seconds(ms)}` : "reconnecting";
  }

  /**
   * Whether `error`, from a send, means the connection was lost and will be
   * retried (the line was not sent), rather than a failure to report.
   */
  lost(error: unknown): boolean {
    return this.#options.reconnect && !this.#stopped && isTransient(error);
  }

  #fail(error: Error): void {
    this.#stop();
    this.#failed.reject(error);
  }

  /** Leaves the room if connected, stops reconnecting, and closes the connection. */
  async close(): Promise<void> {
    const online = this.#online && !this.#stopped;
    this.#stop();
    if (online) await this.#session.leave().catch(() => {});
    this.#client.close();
  }

  #stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async #watch(): Promise<void> {
    while (!this.#stopped) {
      const client = this.#client;
      await client.closed;
      if (this.#stopped) return;
      const reason = client.failure ?? new OvtpError("network", "The connection was closed");
      if (!isTransient(reason)) return this.#fail(reason);
      if (!this.#options.reconnect) {
        return this.#fail(new OvtpError("network", "The server closed the connection"));
      }
      this.#online = false;
      this.#options.onOffline?.();
      if (!await this.#rejoin()) return;
    }
  }

  /** Tries until the room is joined again (true), stopped or failed for good (false). */
  async #rejoin(): Promise<boolean> {
    let why = "disconnected";
    while (!this.#stopped) {
      const delay = this.#backoff.next();
      this.#retryAt = Date.now() + delay;
      this.#options.status(`${why}: reconnecting in ${seconds(delay)}…`);
      await this.#sleep(delay);
      let client: OvtpClient | undefined;
      try {
        if (this.#stopped) return false;
        client = await this.#options.connect();
        if (this.#stopped) throw new OvtpError("interrupted", "Stopped");
        const session = await this.#options.join(client);
        if (this.#stopped) throw new OvtpError("interrupted", "Stopped");
        this.#client = client;
        this.#session = session;
        this.#online = true;
        this.#backoff.reset();
        this.#options.onRejoin?.(session);
        return true;
      } catch (error) {
        client?.close();
        if (this.#stopped) return false;
        if (!isTransient(error)) {
          this.#fail(error as Error);
          return false;
        }
        why = `cannot reconnect (${(error as Error).message})`;
      }
    }
    return false;
  }

  /** Waits `ms`, or less if stopped meanwhile. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** Whether connecting again may cure `error`: the network, not trust, keys or a refusal. */
function isTransient(error: unknown): boolean {
  return error instanceof OvtpError && error.kind === "network";
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
