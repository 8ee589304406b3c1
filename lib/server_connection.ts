/**
 * One client connection on the server: the handshake, the authorization
 * (known key, not expired), then each message dispatched to its service
 * (requests, named functions, uploads, downloads, chat) after the key's
 * permission and rate limit are checked.
 *
 * @module
 */

import { utf8 } from "./bytes.ts";
import { type ByteStream, SecureChannel } from "./channel.ts";
import { ChatMessageType, checkJoin } from "./chat/chat_messages.ts";
import { Connection, DEFAULT_MAX_MESSAGE_SIZE } from "./connection.ts";
import { OvtpError } from "./errors.ts";
import { CALL_MESSAGE_TYPE, decodeCall } from "./function_call.ts";
import { type KeyOptions, refusal } from "./key_options.ts";
import { fingerprint, formatPublicKey } from "./keys.ts";
import { LiveGrant } from "./live_grant.ts";
import { answerIntent } from "./pair/responder.ts";
import { decodeJson, encodeJson, encodeResponse, type Message, MessageType } from "./messages.ts";
import type { Peer } from "./peer.ts";
import type { Reply, ServerContext } from "./server.ts";
import { DownloadMessageType } from "./transfer/download_messages.ts";
import { DownloadProvider } from "./transfer/download_provider.ts";
import { FileMessageType } from "./transfer/file_messages.ts";
import { FileReceiver, type ReceivedFile } from "./transfer/receiver.ts";
import { VERSION } from "./version.ts";
import { WORK_OVERHEAD, WorkGate } from "./_work_gate.ts";

/**
 * Requests and calls one connection may have running at once; past it (or
 * past the queued-bytes limit in their bodies) the server reads nothing
 * more from that connection until some have been answered.
 */
export const MAX_REQUESTS_IN_FLIGHT = 1024;

/** A connection as the server tracks it, for limits and graceful shutdown. */
export interface LiveConnection {
  /** The TCP stream. */
  stream: ByteStream;
  /** Work in flight: requests being answered, transfers in progress. */
  busy: number;
  /** When the last message came (Date.now()), or the connection opened. */
  lastActive: number;
  /** Closes the connection (when idle at shutdown). */
  idle(): void;
}

/** Runs one connection to its end. */
export async function handleConnection(
  context: ServerContext,
  live: LiveConnection,
  remote: string,
  handshaking: { count: number },
): Promise<void> {
  const { options, logger } = context;
  let channel: SecureChannel;
  handshaking.count++;
  try {
    channel = await SecureChannel.respond(live.stream, {
      identity: options.identity,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
    });
  } catch (error) {
    logger.warn(`handshake failed: ${(error as Error).message}`, { remote });
    return;
  } finally {
    handshaking.count--;
  }
  // A connection opened for pairing (docs/protocol.md section 20) does
  // only that, whether or not its key is authorized.
  if (channel.intent.length > 0) {
    const serverKey = options.identity.publicKey;
    return await answerIntent(channel, options.pairing, { serverKey, remote, logger });
  }
  const fp = await fingerprint(channel.peer);
  const grant = await options.authorize(channel.peer).catch((error) => {
    logger.warn(`cannot check authorization: ${(error as Error).message}`, { remote });
    return null;
  });
  if (grant === null) return channel.close();

  let queued = 0;
  const maxQueued = options.maxQueuedBytes ?? 32 * 1024 * 1024;
  const connection = new Connection(channel, {
    onMessage: (message) => dispatch(message),
    maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
  });
  // Everything sent to this client goes through here, so that a client that
  // stops reading cannot make the server buffer without bound. Each message
  // is charged its body and a fixed overhead, so that empty ones are not free.
  const send = (message: Message): Promise<void> => {
    const cost = message.body.length + WORK_OVERHEAD;
    queued += cost;
    if (queued > maxQueued) {
      logger.warn("dropping a client that does not read what it is sent", {
        remote,
        fingerprint: fp,
      });
      connection.close(new OvtpError("network", "The client does not read"));
      return Promise.reject(new OvtpError("network", "The client does not read"));
    }
    return connection.send(message).finally(() => queued -= cost);
  };
  const refuse = async (code: string, message: string, hint?: string) => {
    await send({ type: MessageType.Error, id: 0, body: encodeJson({ code, message, hint }) })
      .catch(() => {});
    connection.close();
  };

  if (grant === undefined) {
    logger.warn("refused client: not authorized", { remote, fingerprint: fp });
    return await refuse(
      "not-authorized",
      `Not authorized: this server does not accept your key ${fp}`,
      `ask the server's owner to run: ovtp add-key '${formatPublicKey(channel.peer)}'`,
    );
  }
  const keyOptions: KeyOptions = grant.options ?? {};
  if (keyOptions.expires && keyOptions.expires.getTime() <= Date.now()) {
    logger.warn("refused client: key expired", { remote, name: grant.name, fingerprint: fp });
    return await refuse(
      "key-expired",
      `Not authorized: your key ${fp} expired on ${keyOptions.expires.toISOString()}`,
      `ask the server's owner to renew it: ovtp keys set ${fp} --expires DATE|never`,
    );
  }
  const peer: Peer = { name: grant.name, fingerprint: fp, key: channel.peer };
  logger.info("client connected", { remote, name: peer.name, fingerprint: fp });

  // The sender already has its answer when the hook runs: a hook that
  // throws is the server program's problem, logged here, not the client's.
  const onFile = async (file: ReceivedFile) => {
    try {
      await options.onFile?.(file);
    } catch (error) {
      logger.warn("onFile hook failed", { path: file.path, error: (error as Error).message });
    }
  };
  const files = options.inbox ? new FileReceiver(options.inbox, peer, send, onFile) : undefined;
  const downloads = options.served ? new DownloadProvider(options.served, send) : undefined;
  const chat = options.chat?.connect(peer, send);
  // Handlers see it abort when the connection ends, for whatever reason.
  const ended = new AbortController();
  // Authorization holds for the connection's whole life: see live_grant.ts.
  const authorization = new LiveGrant(grant, {
    authorize: options.authorize,
    key: channel.peer,
    fingerprint: fp,
    intervalMs: options.recheckIntervalMs,
    onEnd: (end) => {
      ended.abort();
      logger.warn(end.log, { remote, name: peer.name, fingerprint: fp });
      refuse(end.code, end.message);
    },
    onError: (error) =>
      logger.warn(`cannot check authorization: ${error.message}`, { remote, name: peer.name }),
  });

  type Denial = { status: string; message: string };
  /** Why this key may not use `service` (or `service:detail`) at all. */
  const forbidden = (service: string, detail?: string): Denial | undefined => {
    const denied = refusal(authorization.options, service, detail);
    if (!denied) return undefined;
    logger.warn(`refused ${service}: not permitted`, { name: peer.name, fingerprint: fp });
    return { status: "forbidden", message: denied };
  };
  /** Why this key may not make one more request now: shutdown, or its rate limit. */
  const limited = async (): Promise<Denial | undefined> => {
    if (context.closing) return { status: "unavailable", message: "The server is shutting down" };
    const rate = authorization.options.rate ?? options.rate;
    if (!rate) return undefined;
    const decision = await context.limiter.take(fp, rate);
    if (decision.allowed) return undefined;
    logger.warn("refused request: rate limit", { name: peer.name, fingerprint: fp });
    const seconds = Math.ceil(decision.retryAfterMs / 1000);
    return { status: "too-many-requests", message: `Too many requests: retry after ${seconds} s` };
  };
  const check = async (service: string, detail?: string) =>
    forbidden(service, detail) ?? await limited();

  const requests = new WorkGate(MAX_REQUESTS_IN_FLIGHT, maxQueued);
  // Track work for graceful shutdown.
  const working = async <T>(work: () => Promise<T>): Promise<T> => {
    live.busy++;
    try {
      return await work();
    } finally {
      live.busy--;
    }
  };

  // Requests and calls run concurrently and do not hold up reading; file
  // and chat messages are awaited, so that a slow disk or a slow member
  // slows the sender down instead of filling memory.
  function dispatch(message: Message): void | Promise<void> {
    live.lastActive = Date.now();
    // Nothing more is served once the key is removed or expired: the
    // connection is being closed with the reason.
    if (authorization.current()) return;
    if (message.id === 0) return protocolError(message, "request id 0 is reserved");
    switch (message.type) {
      // Reading pauses while too many are running (WorkGate).
      case MessageType.Request:
        return requests.run(message.body.length, working(() => answerRequest(message)));
      case CALL_MESSAGE_TYPE:
        return requests.run(message.body.length, working(() => answerCall(message)));
    }
    if (message.type >= FileMessageType.Offer && message.type <= FileMessageType.Abort) {
      return handleFile(message);
    }
    if (message.type >= DownloadMessageType.Get && message.type <= DownloadMessageType.ListResult) {
      return handleDownload(message);
    }
    if (message.type >= ChatMessageType.Join && message.type <= ChatMessageType.Change) {
      return handleChat(message);
    }
    return protocolError(message);
  }

  function protocolError(message: Message, why = `unexpected message type ${message.type}`): void {
    logger.warn(`protocol error: ${why}`, { remote });
    connection.close(new OvtpError("protocol", "Unexpected message"));
  }

  async function respond(id: number, reply: Reply): Promise<void> {
    const response = typeof reply.response === "string"
      ? utf8(reply.response)
      : reply.response ?? new Uint8Array(0);
    await send({
      type: MessageType.Response,
      id,
      body: encodeResponse({ status: reply.status ?? "ok", response }),
    }).catch(() => {});
  }

  async function safely(run: () => Reply | Promise<Reply>): Promise<Reply> {
    try {
      return await run();
    } catch (error) {
      logger.warn(`handler failed: ${(error as Error).message}`, { remote, name: peer.name });
      return { status: "error", response: "The server failed to handle the request" };
    }
  }

  async function answerRequest(message: Message): Promise<void> {
    const denied = await check("message");
    if (denied) {
      return await respond(message.id, { status: denied.status, response: denied.message });
    }
    const request = { requestId: message.id, body: message.body, peer, signal: ended.signal };
    await respond(message.id, await safely(() => options.handler(request)));
  }

  async function answerCall(message: Message): Promise<void> {
    let call;
    try {
      call = decodeCall(message.body);
    } catch (error) {
      return await respond(message.id, { status: "error", response: (error as Error).message });
    }
    const denied = await check("call", call.function);
    if (denied) {
      return await respond(message.id, { status: denied.status, response: denied.message });
    }
    const functions = options.functions ?? {};
    const handler = Object.hasOwn(functions, call.function) ? functions[call.function] : undefined;
    if (!handler) {
      const known = Object.keys(functions).sort();
      return await respond(message.id, {
        status: "unknown-function",
        response: `Unknown function "${call.function}"; known: ${
          known.length ? known.join(", ") : "none"
        }`,
      });
    }
    const request = {
      requestId: message.id,
      body: call.message,
      peer,
      name: call.function,
      params: call.params,
      signal: ended.signal,
    };
    await respond(message.id, await safely(() => handler(request)));
  }

  async function handleFile(message: Message): Promise<void> {
    if (message.type === FileMessageType.Offer) {
      const denied = files
        ? await check("upload")
        : { status: "unsupported", message: "This server does not accept files" };
      if (denied) {
        return await send({
          type: FileMessageType.Result,
          id: message.id,
          body: encodeJson({ status: "error", code: denied.status, message: denied.message }),
        });
      }
    }
    if (!files) return;
    await working(() => files.handle(message));
  }

  async function handleDownload(message: Message): Promise<void> {
    const isStart = message.type === DownloadMessageType.Get ||
      message.type === DownloadMessageType.List;
    if (!isStart) return protocolError(message);
    const denied = downloads
      ? await check("download")
      : { status: "unsupported", message: "This server serves no files" };
    if (denied) {
      return await send({
        type: DownloadMessageType.Error,
        id: message.id,
        body: encodeJson({ code: denied.status, message: denied.message }),
      });
    }
    // Downloads stream in the background; reading goes on meanwhile.
    working(() => downloads!.handle(message)).catch((error) => {
      logger.warn(`download failed: ${(error as Error).message}`, { remote, name: peer.name });
    });
  }

  async function handleChat(message: Message): Promise<void> {
    let denied;
    if (message.type === ChatMessageType.Join) {
      denied = chat
        ? await check("chat", checkJoin(decodeJson(message.body)).room)
        : { status: "unsupported", message: "This server does not relay chat" };
    } else if (message.type === ChatMessageType.Post || message.type === ChatMessageType.Change) {
      denied = await limited();
    }
    if (denied) {
      return await send({
        type: ChatMessageType.Refused,
        id: message.id,
        body: encodeJson({ code: denied.status, message: denied.message }),
      });
    }
    if (chat) await chat.handle(message);
  }

  try {
    await send({
      type: MessageType.Welcome,
      id: 0,
      body: encodeJson({ protocol: 1, software: `ovtp/${VERSION}` }),
    });
    await connection.run();
    logger.info("client disconnected", { remote, name: peer.name });
  } catch (error) {
    logger.warn(`connection closed: ${(error as Error).message}`, { remote, name: peer.name });
  } finally {
    ended.abort();
    authorization.stop();
    await files?.close();
    await chat?.close();
    downloads?.close();
  }
}
