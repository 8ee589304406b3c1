/**
 * The ovtp server: accepts connections within its limits (in total, per
 * address, handshakes in progress), hands each to the per-connection logic
 * in server_connection.ts, and stops gracefully. One client's failure
 * closes only its own connection.
 *
 * @module
 */

import type { ByteStream } from "./channel.ts";
import type { ChatRelay } from "./chat/relay.ts";
import type { Identity, PublicKey } from "./keys.ts";
import type { KeyOptions, Rate } from "./key_options.ts";
import { type Logger, SILENT_LOGGER } from "./logger.ts";
import type { Peer } from "./peer.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { handleConnection, type LiveConnection } from "./server_connection.ts";
import type { Inbox } from "./transfer/inbox.ts";
import type { ServedFolder } from "./transfer/served_folder.ts";
import type { ReceivedFile } from "./transfer/receiver.ts";

/** The port `ovtp listen` uses when none is given. */
export const DEFAULT_PORT = 4747;

/** A request as the handler sees it. */
export interface Request {
  /** The id the client chose; echoed in the response. */
  readonly requestId: number;
  /** The message bytes. */
  readonly body: Uint8Array;
  /** The authenticated sender. */
  readonly peer: Peer;
}

/** A named function call as its handler sees it. */
export interface FunctionCall extends Request {
  /** The function's name. */
  readonly name: string;
  /** The parameters. */
  readonly params: Record<string, string>;
}

/** What a handler answers. */
export interface Reply {
  /** A short status: `ok` (the default), `error`, or another. */
  status?: string;
  /** The response text or bytes. @default empty */
  response?: string | Uint8Array;
}

/** Answers one request; may run concurrently with others. */
export type RequestHandler = (request: Request) => Reply | Promise<Reply>;

/** Answers one call of a named function. */
export type FunctionHandler = (call: FunctionCall) => Reply | Promise<Reply>;

/** What an authorizer grants a key: its name and its options (permissions, expiry, rate). */
export interface Grant {
  /** The name the server knows the client by. */
  name: string;
  /** Permissions, expiry and rate limit. @default everything, forever, the server's rate */
  options?: KeyOptions;
}

/** Decides whether a client may connect: a grant, or undefined to refuse it. */
export type Authorizer = (key: PublicKey) => Promise<Grant | undefined>;

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** The server's identity. */
  identity: Identity;
  /** Who may connect. */
  authorize: Authorizer;
  /** Answers plain requests. */
  handler: RequestHandler;
  /** Named functions. @default none */
  functions?: Record<string, FunctionHandler>;
  /** The address to listen on. @default "0.0.0.0" */
  hostname?: string;
  /** The port; 0 picks a free one. @default 4747 */
  port?: number;
  /** Where events go. @default silent */
  logger?: Logger;
  /** Time allowed for a handshake. @default 10000 */
  handshakeTimeoutMs?: number;
  /** Close a connection idle this long; 0 disables. @default 300000 */
  idleTimeoutMs?: number;
  /** The largest message accepted. @default 16 MiB */
  maxMessageSize?: number;
  /** Open connections allowed at once. @default 1024 */
  maxConnections?: number;
  /** Open connections allowed from one address. @default 64 */
  maxPerAddress?: number;
  /** Handshakes allowed in progress at once. @default 128 */
  maxHandshakes?: number;
  /** Bytes queued for one client before it is dropped as not reading. @default 32 MiB */
  maxQueuedBytes?: number;
  /** The default per-key rate limit (a key's own `rate` option wins). @default none */
  rate?: Rate;
  /** Where received files go; without it, file offers are refused. */
  inbox?: Inbox;
  /** Called for each file once it is verified and in the inbox. */
  onFile?: (file: ReceivedFile) => void | Promise<void>;
  /** A read-only folder clients may download from. */
  served?: ServedFolder;
  /** The chat relay; without it, chat joins are refused. */
  chat?: ChatRelay;
}

/** A running server. */
export interface OvtpServer {
  /** The address it listens on (with the real port when 0 was asked). */
  readonly addr: { hostname: string; port: number };
  /**
   * Stops accepting, lets work in flight (requests, transfers) finish for up
   * to `graceMs`, then closes every connection. Interrupted uploads keep
   * their data, to be resumed.
   */
  close(graceMs?: number): Promise<void>;
}

/** Shared state of one server, used by its connections. */
export interface ServerContext {
  options: ServeOptions;
  logger: Logger;
  limiter: RateLimiter;
  /** Whether the server is shutting down. */
  closing: boolean;
}

/** Starts a server; it is listening when this returns. */
export function serve(options: ServeOptions): OvtpServer {
  const listener = Deno.listen({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? DEFAULT_PORT,
  });
  const context: ServerContext = {
    options,
    logger: options.logger ?? SILENT_LOGGER,
    limiter: new RateLimiter(),
    closing: false,
  };
  const { logger } = context;
  const connections = new Set<LiveConnection>();
  const perAddress = new Map<string, number>();
  const maxConnections = options.maxConnections ?? 1024;
  const maxPerAddress = options.maxPerAddress ?? 64;
  const maxHandshakes = options.maxHandshakes ?? 128;
  const handshaking = { count: 0 };

  const acceptLoop = (async () => {
    while (!context.closing) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (context.closing || error instanceof Deno.errors.BadResource) break;
        // Out of file descriptors, or a connection reset before accept:
        // log, pause briefly, and keep serving.
        logger.warn(`accept failed: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      conn.setNoDelay(true);
      const address = (conn.remoteAddr as Deno.NetAddr).hostname;
      const remote = formatAddr(conn.remoteAddr as Deno.NetAddr);
      const fromAddress = perAddress.get(address) ?? 0;
      const refusal = connections.size >= maxConnections
        ? "too many open connections"
        : fromAddress >= maxPerAddress
        ? "too many connections from this address"
        : handshaking.count >= maxHandshakes
        ? "too many handshakes in progress"
        : undefined;
      if (refusal) {
        logger.warn(`refused connection: ${refusal}`, { remote });
        closeQuietly(conn);
        continue;
      }
      perAddress.set(address, fromAddress + 1);
      const live: LiveConnection = { stream: conn, busy: 0, idle: () => closeQuietly(conn) };
      connections.add(live);
      handleConnection(context, live, remote, handshaking)
        .catch((error) => {
          // One client's failure must never stop the server.
          logger.warn(`connection failed: ${(error as Error).message}`, { remote });
          closeQuietly(conn);
        })
        .finally(() => {
          connections.delete(live);
          const left = (perAddress.get(address) ?? 1) - 1;
          if (left > 0) perAddress.set(address, left);
          else perAddress.delete(address);
        });
    }
  })();

  const addr = listener.addr as Deno.NetAddr;
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    async close(graceMs = 0) {
      context.closing = true;
      listener.close();
      await acceptLoop;
      // Idle connections go now; busy ones as soon as their work is done.
      const deadline = Date.now() + graceMs;
      while (connections.size > 0 && Date.now() < deadline) {
        for (const live of connections) if (live.busy === 0) live.idle();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (const live of connections) closeQuietly(live.stream);
      // Closed streams end their connections promptly; do not wait forever
      // for one stuck in a handler.
      const last = Date.now() + 2000;
      while (connections.size > 0 && Date.now() < last) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

function closeQuietly(stream: ByteStream): void {
  try {
    stream.close();
  } catch {
    // Already closed.
  }
}

/** `host:port`, with brackets for IPv6. */
export function formatAddr(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Decodes a request body as UTF-8 text, replacing invalid sequences. */
export function requestText(request: Request): string {
  return new TextDecoder().decode(request.body);
}
