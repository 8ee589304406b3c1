/**
 * What a service is to the server session (lib/server/session.ts): the message
 * types it handles, what must be allowed before a message reaches it, how a
 * refusal looks on its wire, and the part that lives for one connection.
 * The session owns authorization, rate limits and flow control, so that a
 * service holds only its own protocol.
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import type { Message } from "../channel/messages.ts";
import type { Peer } from "../identity/peer.ts";
import type { ServeOptions } from "../server/types.ts";

/**
 * Why a message is not served: the one shape every refusal has inside the
 * server. Each service writes it in its own wire format (docs/protocol.md),
 * which predates this and stays as it is.
 */
export interface Refusal {
  /** A short code: `forbidden`, `too-many-requests`, `unsupported`, ... */
  code: string;
  /** A sentence for the user. */
  message: string;
}

/** What the session checks before it hands a message to a service. */
export interface Check {
  /**
   * The service name an `allow` option must grant; none: only the rate
   * limit (and shutdown) apply.
   */
  permission?: string;
  /**
   * The detail `allow` may name (`service:detail`). A function is called
   * only once the service is known to be on, so that a malformed start sent
   * to a server without the service is refused as unsupported, as before.
   */
  detail?: string | (() => string);
  /** Refused before any permission is looked at (a malformed start). */
  refused?: Refusal;
  /** What the check decoded, handed on so that it is decoded once. */
  decoded?: unknown;
}

/** The connection as a service sees it. */
export interface SessionApi {
  /** The server's options. */
  readonly options: ServeOptions;
  /** The authenticated client. */
  readonly peer: Peer;
  /** The client's address, for logs. */
  readonly remote: string;
  /** Where events go. */
  readonly logger: Logger;
  /** Aborted when the connection ends, for whatever reason. */
  readonly signal: AbortSignal;
  /** Sends to the client, within the connection's queued-bytes limit. */
  send(message: Message): Promise<void>;
  /** Runs `work` counted as in flight, so that shutdown waits for it. */
  working<T>(work: () => Promise<T>): Promise<T>;
}

/** A service's state for one connection. */
export interface ServiceConnection {
  /**
   * Handles one message that passed its check. A promise pauses reading
   * from the connection until it settles (see {@linkcode Service.concurrent}).
   */
  handle(message: Message, check?: Check): void | Promise<void>;
  /** Releases what the connection held (partial files, room memberships). */
  close?(): void | Promise<void>;
}

/** One service of the server; lib/services/registry.ts lists them all. */
export interface Service {
  /** A name for logs. */
  readonly name: string;
  /** The message types it handles; no two services share one. */
  readonly types: readonly number[];
  /**
   * Whether its messages run side by side without holding up reading, up
   * to the connection's request limits (requests and calls), rather than
   * one at a time so that a slow disk or member slows the sender down.
   */
  readonly concurrent?: boolean;
  /** The refusal's message when the server was not given what it needs. */
  readonly unsupported?: string;
  /** What `message` needs allowed; undefined: nothing, it goes straight on. */
  check(message: Message): Check | undefined;
  /** `refusal` as this service's wire answers `message`. */
  refuse(message: Message, refusal: Refusal): Message;
  /**
   * Its part of one connection, opened at the connection's first message
   * for it (an idle connection holds none); undefined when this server does
   * not offer it.
   */
  open(session: SessionApi): ServiceConnection | undefined;
}
