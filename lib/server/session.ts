/**
 * One client connection on the server: the handshake, the admission (known
 * key, not expired), then a session that checks each message's permission
 * and rate in one place and hands it to the service that registered its
 * type (services/registry.ts lists the services). It knows nothing of TCP:
 * it runs over any open byte stream.
 *
 * @module
 */

import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_QUEUED_BYTES } from "./defaults.ts";
import { type ByteStream, SecureChannel } from "../channel/channel.ts";
import { Connection, DEFAULT_MAX_MESSAGE_SIZE } from "../channel/connection.ts";
import { OvtpError } from "../errors.ts";
import { refusal } from "../trust/key_options.ts";
import { fingerprint, formatPublicKey } from "../identity/keys.ts";
import { LiveGrant } from "./live_grant.ts";
import type { Logger } from "../logger.ts";
import { encodeJson, type Message, MessageType } from "../channel/messages.ts";
import { answerIntent } from "../pair/responder.ts";
import type { Peer } from "../identity/peer.ts";
import type { Limiter } from "./rate_limiter.ts";
import type { Grant, ServeOptions } from "./types.ts";
import * as registry from "../services/registry.ts";
import type {
  Check,
  Refusal,
  Service,
  ServiceConnection,
  SessionApi,
} from "../services/service.ts";
import { VERSION } from "../version.ts";
import { WORK_OVERHEAD, WorkGate } from "./_work_gate.ts";

/**
 * Requests and calls one connection may have running at once; past it (or
 * past the queued-bytes limit in their bodies) the server reads nothing
 * more from that connection until some have been answered.
 */
export const MAX_REQUESTS_IN_FLIGHT = 1024;

/** Every service a server runs: whatever the registry exports. */
export const SERVICES: readonly Service[] = Object.values(registry);

/** Which service handles each message type a client may send. */
export const SERVICE_BY_TYPE: ReadonlyMap<number, Service> = byType(SERVICES);

/** The table; two services claiming one type is a bug, caught at load. */
export function byType(services: readonly Service[]): Map<number, Service> {
  const table = new Map<number, Service>();
  for (const service of services) {
    for (const type of service.types) {
      const taken = table.get(type);
      if (taken) throw new Error(`Message type ${type} is both ${taken.name} and ${service.name}`);
      table.set(type, service);
    }
  }
  return table;
}

/** Shared state of one server, used by its connections. */
export interface ServerContext {
  /** The server's options. */
  options: ServeOptions;
  /** Where events go. */
  logger: Logger;
  /** Where rate-limit tokens are taken. */
  limiter: Limiter;
  /** Whether the server is shutting down. */
  closing: boolean;
  /** Handshakes in progress, which a listener may limit. */
  handshaking: number;
}

/** A connection as the server tracks it, for limits and graceful shutdown. */
export interface LiveConnection {
  /** The byte stream. */
  stream: ByteStream;
  /** Work in flight: requests being answered, transfers in progress. */
  busy: number;
  /** When the last message came (Date.now()), or the connection opened. */
  lastActive: number;
  /** Closes the connection (when idle at shutdown). */
  idle(): void;
}

/** Runs one connection to its end. */
export async function runConnection(
  context: ServerContext,
  live: LiveConnection,
  remote: string,
): Promise<void> {
  const { options, logger } = context;
  let channel: SecureChannel;
  context.handshaking++;
  try {
    channel = await SecureChannel.respond(live.stream, {
      identity: options.identity,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
    });
  } catch (error) {
    logger.warn(`handshake failed: ${(error as Error).message}`, { remote });
    return;
  } finally {
    context.handshaking--;
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
  await new ServerSession(context, live, remote, channel, fp).run(grant);
}

/** One admitted (or being refused) client and its services. */
class ServerSession {
  #context: ServerContext;
  #live: LiveConnection;
  #remote: string;
  #channel: SecureChannel;
  #fp: string;
  #connection: Connection;
  #queued = 0;
  #maxQueued: number;
  #requests: WorkGate;
  // Handlers see it abort when the connection ends, for whatever reason.
  #ended = new AbortController();
  #authorization?: LiveGrant;
  #peer?: Peer;
  // Opened on first use: an idle connection holds no service's state.
  #services = new Map<Service, ServiceConnection | undefined>();
  #session?: SessionApi;

  constructor(
    context: ServerContext,
    live: LiveConnection,
    remote: string,
    channel: SecureChannel,
    fp: string,
  ) {
    const { options } = context;
    this.#context = context;
    this.#live = live;
    this.#remote = remote;
    this.#channel = channel;
    this.#fp = fp;
    this.#maxQueued = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.#requests = new WorkGate(MAX_REQUESTS_IN_FLIGHT, this.#maxQueued);
    this.#connection = new Connection(channel, {
      onMessage: (message) => this.#dispatch(message),
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      // A client waiting for a slow answer, or reading a long download, is not idle.
      working: () => live.busy > 0,
    });
  }

  /** Admits the client under `grant` (or refuses it), then serves it to the end. */
  async run(grant: Grant | undefined): Promise<void> {
    const peer = this.#peer = await this.#admit(grant);
    if (!peer) return;
    const { logger } = this.#context;
    const remote = this.#remote;
    this.#authorization = this.#watch(grant!);
    this.#session = this.#api(peer);
    try {
      await this.#send({
        type: MessageType.Welcome,
        id: 0,
        // idle_timeout (seconds, 0: none) also says that Ping is answered:
        // a client keeping a quiet connection open pings within it.
        body: encodeJson({
          protocol: 1,
          software: `ovtp/${VERSION}`,
          idle_timeout: idleSeconds(this.#context.options.idleTimeoutMs),
        }),
      });
      await this.#connection.run();
      logger.info("client disconnected", { remote, name: peer.name });
    } catch (error) {
      logger.warn(`connection closed: ${(error as Error).message}`, { remote, name: peer.name });
    } finally {
      this.#ended.abort();
      this.#authorization.stop();
      for (const opened of this.#services.values()) await opened?.close?.();
    }
  }

  /** The client as services see it, once admitted; undefined when refused. */
  async #admit(grant: Grant | undefined): Promise<Peer | undefined> {
    const { logger } = this.#context;
    const [remote, fp, key] = [this.#remote, this.#fp, this.#channel.peer];
    if (grant === undefined) {
      logger.warn("refused client: not authorized", { remote, fingerprint: fp });
      await this.#refuseConnection(
        "not-authorized",
        `Not authorized: this server does not accept your key ${fp}`,
        `ask the server's owner to run: ovtp add-key '${formatPublicKey(key)}'`,
      );
      return undefined;
    }
    const expires = grant.options?.expires;
    if (expires && expires.getTime() <= Date.now()) {
      logger.warn("refused client: key expired", { remote, name: grant.name, fingerprint: fp });
      await this.#refuseConnection(
        "key-expired",
        `Not authorized: your key ${fp} expired on ${expires.toISOString()}`,
        `ask the server's owner to renew it: ovtp keys set ${fp} --expires DATE|never`,
      );
      return undefined;
    }
    logger.info("client connected", { remote, name: grant.name, fingerprint: fp });
    return { name: grant.name, fingerprint: fp, key };
  }

  // Authorization holds for the connection's whole life: see live_grant.ts.
  #watch(grant: Grant): LiveGrant {
    const { options, logger } = this.#context;
    const [remote, fp, name] = [this.#remote, this.#fp, grant.name];
    return new LiveGrant(grant, {
      authorize: options.authorize,
      key: this.#channel.peer,
      fingerprint: fp,
      intervalMs: options.recheckIntervalMs,
      onEnd: (end) => {
        this.#ended.abort();
        logger.warn(end.log, { remote, name, fingerprint: fp });
        this.#refuseConnection(end.code, end.message);
      },
      onError: (error) =>
        logger.warn(`cannot check authorization: ${error.message}`, { remote, name }),
    });
  }

  /** `service`'s side of this connection, opened now if this is its first message. */
  #opened(service: Service): ServiceConnection | undefined {
    if (!this.#services.has(service)) this.#services.set(service, service.open(this.#session!));
    return this.#services.get(service);
  }

  #api(peer: Peer): SessionApi {
    return {
      options: this.#context.options,
      peer,
      remote: this.#remote,
      logger: this.#context.logger,
      signal: this.#ended.signal,
      send: (message) => this.#send(message),
      working: (work) => this.#working(work),
    };
  }

  // Everything sent to this client goes through here, so that a client that
  // stops reading cannot make the server buffer without bound. Each message
  // is charged its body and a fixed overhead, so that empty ones are not free.
  #send(message: Message): Promise<void> {
    const cost = message.body.length + WORK_OVERHEAD;
    this.#queued += cost;
    if (this.#queued > this.#maxQueued) {
      this.#context.logger.warn("dropping a client that does not read what it is sent", {
        remote: this.#remote,
        fingerprint: this.#fp,
      });
      this.#connection.close(new OvtpError("network", "The client does not read"));
      return Promise.reject(new OvtpError("network", "The client does not read"));
    }
    return this.#connection.send(message).finally(() => this.#queued -= cost);
  }

  /** Ends the connection with an Error (docs/protocol.md section 7.2). */
  async #refuseConnection(code: string, message: string, hint?: string): Promise<void> {
    await this.#send({ type: MessageType.Error, id: 0, body: encodeJson({ code, message, hint }) })
      .catch(() => {});
    this.#connection.close();
  }

  // Tracks work for graceful shutdown.
  async #working<T>(work: () => Promise<T>): Promise<T> {
    this.#live.busy++;
    try {
      return await work();
    } finally {
      this.#live.busy--;
    }
  }

  // Concurrent services do not hold up reading (until the request limits
  // are reached: WorkGate); the others are awaited, in order.
  #dispatch(message: Message): void | Promise<void> {
    this.#live.lastActive = Date.now();
    // Nothing more is served once the key is removed or expired: the
    // connection is being closed with the reason.
    if (this.#authorization!.current()) return;
    if (message.id === 0) return this.#protocolError(message, "request id 0 is reserved");
    const service = SERVICE_BY_TYPE.get(message.type);
    if (!service) return this.#protocolError(message);
    if (!service.concurrent) return this.#serve(service, message);
    const work = this.#working(() => this.#serve(service, message));
    return this.#requests.run(message.body.length, work);
  }

  async #serve(service: Service, message: Message): Promise<void> {
    const connection = this.#opened(service);
    const check = service.check(message);
    const refused = check && await this.#gate(service, connection, check);
    if (refused) return await this.#send(service.refuse(message, refused));
    await connection?.handle(message, check);
  }

  /**
   * The one place where a message is refused before its service sees it:
   * the service is off, the key's `allow` lacks it, the server is shutting
   * down, or the key's rate limit is reached.
   */
  async #gate(
    service: Service,
    connection: ServiceConnection | undefined,
    check: Check,
  ): Promise<Refusal | undefined> {
    if (check.refused) return check.refused;
    if (check.permission !== undefined) {
      if (!connection) return { code: "unsupported", message: service.unsupported ?? "" };
      const detail = typeof check.detail === "function" ? check.detail() : check.detail;
      const denied = refusal(this.#authorization!.options, check.permission, detail);
      if (denied) {
        this.#context.logger.warn(`refused ${check.permission}: not permitted`, {
          name: this.#peer?.name,
          fingerprint: this.#fp,
        });
        return { code: "forbidden", message: denied };
      }
    }
    return await this.#limited();
  }

  /** Why this key may not make one more request now: shutdown, or its rate limit. */
  async #limited(): Promise<Refusal | undefined> {
    const context = this.#context;
    if (context.closing) return { code: "unavailable", message: "The server is shutting down" };
    const rate = this.#authorization!.options.rate ?? context.options.rate;
    if (!rate) return undefined;
    const decision = await context.limiter.take(this.#fp, rate);
    if (decision.allowed) return undefined;
    context.logger.warn("refused request: rate limit", {
      name: this.#peer?.name,
      fingerprint: this.#fp,
    });
    const seconds = Math.ceil(decision.retryAfterMs / 1000);
    return { code: "too-many-requests", message: `Too many requests: retry after ${seconds} s` };
  }

  #protocolError(message: Message, why = `unexpected message type ${message.type}`): void {
    this.#context.logger.warn(`protocol error: ${why}`, { remote: this.#remote });
    this.#connection.close(new OvtpError("protocol", "Unexpected message"));
  }
}

// The idle timeout as Welcome announces it: whole seconds, rounded down so
// that a client pinging within it is in time, but at least 1; 0 for none.
function idleSeconds(idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS): number {
  return idleTimeoutMs > 0 ? Math.max(1, Math.floor(idleTimeoutMs / 1000)) : 0;
}
