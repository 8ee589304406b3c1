/**
 * Keeping a quiet connection open. A server closes a connection it has
 * heard nothing from for its idle timeout (300 s by default, announced in
 * Welcome: docs/protocol.md section 7.1), so a client that mostly waits for
 * others (a chat member) sends a Ping once it has sent nothing for a third
 * of that (checked every sixth: a quiet stretch never passes half the idle
 * timeout). A Ping not answered within another third, while the client
 * waited for bytes and none came, means the server or the path to it is
 * gone: the connection then ends as lost, rather than after the minutes
 * TCP takes to give up (or never, for a client that only reads). A server
 * still streaming (its answer queued behind a download) or a client that
 * stopped reading itself (its output stalled) is not a lost server.
 *
 * @module
 */

import { OvtpError } from "../errors.ts";

/** What a keep-alive needs of its connection. */
export interface KeepAliveLink {
  /** When something was last sent (ms since the epoch). */
  lastSendAt(): number;
  /**
   * While the client waits for bytes, when the last ones came (or the wait
   * began); undefined while it does not read.
   */
  waitingSince(): number | undefined;
  /** When the write under way started; undefined when none is. */
  writingSince(): number | undefined;
  /** Sends a Ping; settles when it is answered (a refusal is an answer too). */
  ping(): Promise<unknown>;
  /** Ends the connection as lost. */
  fail(error: OvtpError): void;
}

/** A running keep-alive; see the module comment. */
export class KeepAlive {
  #timer: ReturnType<typeof setInterval>;
  #pingSentAt: number | undefined;

  /** Pings over `link` after `intervalMs` without sending; fails it after as long unanswered. */
  constructor(intervalMs: number, link: KeepAliveLink) {
    const timer = setInterval(() => this.#tick(intervalMs, link), intervalMs / 2);
    // A keep-alive alone does not keep the process running.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #tick(intervalMs: number, link: KeepAliveLink): void {
    const now = Date.now();
    if (this.#pingSentAt !== undefined) {
      if (now - this.#pingSentAt < intervalMs) return;
      const waiting = link.waitingSince();
      if (waiting === undefined || now - waiting < intervalMs) return;
      link.fail(
        new OvtpError("network", lostReason(now, this.#pingSentAt, waiting, link.writingSince())),
      );
      return this.stop();
    }
    if (now - link.lastSendAt() < intervalMs) return;
    this.#pingSentAt = now;
    link.ping().catch(() => {}).finally(() => this.#pingSentAt = undefined);
  }

  /** Stops pinging. */
  stop(): void {
    clearInterval(this.#timer);
  }
}

// Why a server whose Ping went unanswered counts as lost. A write stuck
// since before the Ping means the Ping itself waits behind it, the server
// taking nothing: a host gone and a server whose disk stopped taking an
// upload look the same from here.
function lostReason(
  now: number,
  pingSentAt: number,
  waiting: number,
  writing: number | undefined,
): string {
  const seconds = (since: number) => Math.round((now - since) / 1000);
  if (writing !== undefined && writing <= pingSentAt) {
    return `The server stopped reading and answering (nothing for ${seconds(writing)} s): ` +
      "it is gone, or its disk stalled";
  }
  return `The server stopped answering (nothing for ${seconds(Math.max(pingSentAt, waiting))} s)`;
}

/**
 * The keep-alive interval for a server's Welcome body: a third of the idle
 * timeout it announces, at least 1 s; undefined when it announces none
 * (such a server may not answer Ping, and closes no quiet connection).
 */
export function keepAliveInterval(welcome: unknown): number | undefined {
  const seconds = (welcome as { idle_timeout?: unknown } | null)?.idle_timeout;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) return undefined;
  return Math.max(1000, Math.floor((seconds * 1000) / 3));
}
