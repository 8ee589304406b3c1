/**
 * The ovtp server: accepts connections, runs the handshake, checks the
 * client against an authorizer, and answers requests through a handler.
 * One client's failure closes only its own connection.
 *
 * @module
 */

import { fromUtf8, utf8 } from "./bytes.ts";
import { type ByteStream, SecureChannel } from "./channel.ts";
import { Connection, DEFAULT_MAX_MESSAGE_SIZE } from "./connection.ts";
import { OvtpError } from "./errors.ts";
import { fingerprint, formatPublicKey, type Identity, type PublicKey } from "./keys.ts";
import { type Logger, SILENT_LOGGER } from "./logger.ts";
import { encodeJson, encodeResponse, type Message, MessageType } from "./messages.ts";
import type { Peer } from "./peer.ts";
import { ChatMessageType } from "./chat/chat_messages.ts";
import type { ChatRelay } from "./chat/relay.ts";
import { FileMessageType } from "./transfer/file_messages.ts";
import type { Inbox } from "./transfer/inbox.ts";
import { FileReceiver, type ReceivedFile } from "./transfer/receiver.ts";
import { VERSION } from "./version.ts";

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

/** What a handler answers. */
export interface Reply {
  /** A short status: `ok` (the default), `error`, or another. */
  status?: string;
  /** The response text or bytes. @default empty */
  response?: string | Uint8Array;
}

/** Answers one request; may run concurrently with others. */
export type RequestHandler = (request: Request) => Reply | Promise<Reply>;

/**
 * Decides whether a client may connect: returns its name, or undefined to
 * refuse it.
 */
export type Authorizer = (key: PublicKey) => Promise<string | undefined>;

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** The server's identity. */
  identity: Identity;
  /** Who may connect. */
  authorize: Authorizer;
  /** Answers requests. */
  handler: RequestHandler;
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
  /** The largest request accepted. @default 16 MiB */
  maxMessageSize?: number;
  /** Open connections allowed at once. @default 1024 */
  maxConnections?: number;
  /** Where received files go; without it, file offers are refused. */
  inbox?: Inbox;
  /** Called for each file once it is verified and in the inbox. */
  onFile?: (file: ReceivedFile) => void | Promise<void>;
  /** The chat relay; without it, chat joins are refused. */
  chat?: ChatRelay;
}

/** A running server. */
export interface OvtpServer {
  /** The address it listens on (with the real port when 0 was asked). */
  readonly addr: { hostname: string; port: number };
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

/** Starts a server; resolves once it is listening. */
export function serve(options: ServeOptions): OvtpServer {
  const listener = Deno.listen({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? DEFAULT_PORT,
  });
  const connections = new Set<ByteStream>();
  const logger = options.logger ?? SILENT_LOGGER;
  const maxConnections = options.maxConnections ?? 1024;
  let closing = false;

  const acceptLoop = (async () => {
    while (!closing) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closing || error instanceof Deno.errors.BadResource) break;
        // Out of file descriptors, or a connection reset before accept:
        // log, pause briefly, and keep serving.
        logger.warn(`accept failed: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      conn.setNoDelay(true);
      const remote = formatAddr(conn.remoteAddr as Deno.NetAddr);
      if (connections.size >= maxConnections) {
        logger.warn("refused connection: too many open connections", { remote });
        conn.close();
        continue;
      }
      connections.add(conn);
      handleConnection(conn, remote, options, logger)
        .catch((error) => {
          // One client's failure must never stop the server.
          logger.warn(`connection failed: ${(error as Error).message}`, { remote });
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        })
        .finally(() => connections.delete(conn));
    }
  })();

  const addr = listener.addr as Deno.NetAddr;
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    async close() {
      closing = true;
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await acceptLoop;
    },
  };
}

async function handleConnection(
  stream: ByteStream,
  remote: string,
  options: ServeOptions,
  logger: Logger,
): Promise<void> {
  let channel: SecureChannel;
  try {
    channel = await SecureChannel.respond(stream, {
      identity: options.identity,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
    });
  } catch (error) {
    logger.warn(`handshake failed: ${(error as Error).message}`, { remote });
    return;
  }
  const fp = await fingerprint(channel.peer);
  let name: string | undefined;
  try {
    name = await options.authorize(channel.peer);
  } catch (error) {
    logger.warn(`cannot check authorization: ${(error as Error).message}`, { remote });
    channel.close();
    return;
  }
  const connection = new Connection(channel, {
    onMessage: (message) => onMessage(message),
    maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
  });
  if (name === undefined) {
    logger.warn("refused client: not authorized", { remote, fingerprint: fp });
    await connection.send({
      type: MessageType.Error,
      id: 0,
      body: encodeJson({
        code: "not-authorized",
        message: `Not authorized: this server does not accept your key ${fp}`,
        hint: `ask the server's owner to run: ovtp add-key '${formatPublicKey(channel.peer)}'`,
      }),
    }).catch(() => {});
    connection.close();
    return;
  }
  const peer: Peer = { name, fingerprint: fp, key: channel.peer };
  logger.info("client connected", { remote, name, fingerprint: fp });

  const files = options.inbox
    ? new FileReceiver(
      options.inbox,
      peer,
      (message) => connection.send(message),
      options.onFile ?? (() => {}),
    )
    : undefined;

  const chat = options.chat?.connect(peer, (message) => connection.send(message));

  // Requests run concurrently and do not hold up reading; file messages are
  // awaited, so that a slow disk slows the sender down instead of filling
  // memory.
  function onMessage(message: Message): void | Promise<void> {
    if (message.type === MessageType.Request && message.id !== 0) {
      answer(message);
      return;
    }
    if (isFileMessage(message.type) && message.id !== 0) {
      if (files) return files.handle(message);
      if (message.type === FileMessageType.Offer) {
        return connection.send({
          type: FileMessageType.Result,
          id: message.id,
          body: encodeJson({
            status: "error",
            code: "unsupported",
            message: "This server does not accept files",
          }),
        });
      }
      return;
    }
    if (isChatMessage(message.type) && message.id !== 0) {
      if (chat) return chat.handle(message);
      if (message.type === ChatMessageType.Join) {
        return connection.send({
          type: ChatMessageType.Refused,
          id: message.id,
          body: encodeJson({ code: "unsupported", message: "This server does not relay chat" }),
        });
      }
      return;
    }
    logger.warn(`protocol error: unexpected message type ${message.type}`, { remote, name });
    connection.close(new OvtpError("protocol", "Unexpected message"));
  }

  async function answer(message: Message): Promise<void> {
    let reply: Reply;
    try {
      reply = await options.handler({ requestId: message.id, body: message.body, peer });
    } catch (error) {
      logger.warn(`handler failed: ${(error as Error).message}`, { remote, name });
      reply = { status: "error", response: "The server failed to handle the request" };
    }
    const response = typeof reply.response === "string"
      ? utf8(reply.response)
      : reply.response ?? new Uint8Array(0);
    await connection.send({
      type: MessageType.Response,
      id: message.id,
      body: encodeResponse({ status: reply.status ?? "ok", response }),
    }).catch(() => {});
  }

  try {
    await connection.send({
      type: MessageType.Welcome,
      id: 0,
      body: encodeJson({ protocol: 1, software: `ovtp/${VERSION}` }),
    });
    await connection.run();
    logger.info("client disconnected", { remote, name });
  } catch (error) {
    logger.warn(`connection closed: ${(error as Error).message}`, { remote, name });
  } finally {
    await files?.close();
    await chat?.close();
  }
}

function isChatMessage(type: number): boolean {
  return type >= ChatMessageType.Join && type <= ChatMessageType.Leave;
}

function isFileMessage(type: number): boolean {
  return type >= FileMessageType.Offer && type <= FileMessageType.Abort;
}

function formatAddr(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Decodes a request body as UTF-8 text, replacing invalid sequences. */
export function requestText(request: Request): string {
  try {
    return fromUtf8(request.body);
  } catch {
    return new TextDecoder().decode(request.body);
  }
}
