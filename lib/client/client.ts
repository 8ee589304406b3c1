/**
 * The ovtp client: connects, runs the handshake, checks the server's key,
 * and sends requests that may run concurrently on one connection, each
 * answered by the response carrying its id.
 *
 * @module
 */

import { formatHostPort } from "../io/files.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "./defaults.ts";
import { fromUtf8, utf8 } from "../bytes.ts";
import { type ByteStream, SecureChannel } from "../channel/channel.ts";
import { Connection, DEFAULT_MAX_MESSAGE_SIZE } from "../channel/connection.ts";
import { OvtpError } from "../errors.ts";
import type { Identity, PublicKey } from "../identity/keys.ts";
import { decodeJson, decodeResponse, type Message, MessageType } from "../channel/messages.ts";
import type { MessageLink } from "./message_link.ts";
import {
  type FetchedFile,
  type FetchedFolder,
  type FetchOptions,
  type FileSource,
  type FolderFetchOptions,
  type ListEntry,
  type SendFileOptions,
  type SentFile,
  TransferClient,
} from "../services/transfer/client.ts";
import { CALL_MESSAGE_TYPE, encodeCall } from "../services/function_call.ts";
import { PING_MESSAGE_TYPE } from "../services/ping.ts";
import { KeepAlive, keepAliveInterval } from "./keep_alive.ts";

/**
 * A response to a request, as {@linkcode OvtpClient.request} and
 * {@linkcode OvtpClient.call} resolve. A refusal (no permission, rate
 * limit, unknown function) is a response too, with its own status.
 *
 * @example Turning a status other than `ok` into an error
 * ```ts
 * import { type Response, responseText } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function textOf(response: Response): string {
 *   const text = responseText(response);
 *   if (response.status !== "ok") throw new Error(`Request failed (${response.status}): ${text}`);
 *   return text;
 * }
 *
 * const body = new TextEncoder().encode("Too many requests: retry after 3 s");
 * assert.throws(
 *   () => textOf({ status: "too-many-requests", body, requestId: 4 }),
 *   /Request failed \(too-many-requests\)/,
 * );
 * assert.equal(textOf({ status: "ok", body: new TextEncoder().encode("42"), requestId: 5 }), "42");
 * ```
 */
export interface Response {
  /** The server's status: `ok`, `error`, or another. */
  readonly status: string;
  /** The response bytes. */
  readonly body: Uint8Array;
  /** The request id, echoed by the server. */
  readonly requestId: number;
}

/**
 * Options of {@linkcode OvtpClient.connect}.
 *
 * @example Pinning the server's key
 * ```ts
 * import {
 *   type ConnectOptions,
 *   generateIdentity,
 *   OvtpClient,
 *   type PublicKey,
 *   samePublicKey,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const serverIdentity = await generateIdentity();
 * const server = serve({
 *   identity: serverIdentity,
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 * });
 *
 * const identity = await generateIdentity();
 * const pinned = (expected: PublicKey): ConnectOptions => ({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity,
 *   timeoutMs: 2000,
 *   verifyHost: (key) => {
 *     if (!samePublicKey(key, expected)) throw new Error("Not the server I know");
 *   },
 * });
 * const client = await OvtpClient.connect(pinned(serverIdentity.publicKey));
 * client.close();
 * const impostor = await generateIdentity();
 * await assert.rejects(OvtpClient.connect(pinned(impostor.publicKey)), /Not the server I know/);
 * await server.close();
 * ```
 */
export interface ConnectOptions {
  /** The server's host name or address. */
  hostname: string;
  /** The server's port. */
  port: number;
  /** The client's identity. */
  identity: Identity;
  /**
   * Checks the server's key before the client reveals its own; throw to
   * refuse it. See {@linkcode knownHostsVerifier}.
   */
  verifyHost?: (key: PublicKey) => Promise<void> | void;
  /** Time allowed to connect and complete the handshake. @default 10000 */
  timeoutMs?: number;
  /** The largest response accepted. @default 16 MiB */
  maxMessageSize?: number;
  /** An already open stream to use instead of a TCP connection. */
  stream?: ByteStream;
}

/**
 * A connection to an ovtp server: requests, named function calls, file
 * uploads and downloads, and (through {@linkcode ChatSession}) chat rooms,
 * all concurrently on one connection.
 *
 * @example Requests and a function call on one connection
 * ```ts
 * import {
 *   generateIdentity,
 *   OvtpClient,
 *   requestText,
 *   responseText,
 *   samePublicKey,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const serverIdentity = await generateIdentity();
 * const server = serve({
 *   identity: serverIdentity,
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: (request) => ({ response: requestText(request).toUpperCase() }),
 *   functions: { greet: ({ params }) => ({ response: `hello ${params.who}` }) },
 * });
 *
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * assert.ok(samePublicKey(client.serverKey, serverIdentity.publicKey));
 * // Requests run concurrently; each response finds its request.
 * const [a, b] = await Promise.all([client.request("a"), client.request("b")]);
 * assert.deepEqual([responseText(a), responseText(b)], ["A", "B"]);
 * assert.equal(responseText(await client.call("greet", { who: "bob" })), "hello bob");
 *
 * client.close();
 * await assert.rejects(client.request("late"), /closed/);
 * await server.close();
 * ```
 */
export class OvtpClient {
  #connection: Connection;
  #pending = new Map<number, { resolve: (r: Response) => void; reject: (e: Error) => void }>();
  #subscriptions = new Map<
    number,
    {
      onMessage: (m: Message) => void | Promise<void>;
      onError: (e: Error) => void;
      /** Resumes reading paused by onMessage (the delivery stopped). */
      resume?: () => void;
    }
  >();
  #nextId = 1;
  #failure: Error | undefined;
  /** From Welcome: how often a quiet connection must ping; undefined: never. */
  #keepAliveMs: number | undefined;
  #keepAlive: KeepAlive | undefined;
  // The client side of each service with its own message types (chat
  // attaches the same way, through `link`, in services/chat/).
  #transfers = new TransferClient(this.link);
  /** The server's public key, authenticated by the handshake. */
  readonly serverKey: PublicKey;
  /** Settles when the connection ends; {@linkcode OvtpClient.failure} then says why. */
  readonly closed: Promise<void>;

  private constructor(channel: SecureChannel, maxMessageSize: number, welcome: {
    resolve: () => void;
    reject: (e: Error) => void;
  }) {
    this.serverKey = channel.peer;
    let welcomed = false;
    this.#connection = new Connection(channel, {
      maxMessageSize,
      onMessage: (message) => {
        if (!welcomed && message.type === MessageType.Welcome) {
          welcomed = true;
          try {
            this.#keepAliveMs = keepAliveInterval(decodeJson(message.body));
          } catch {
            // A body that is not a JSON object announces nothing.
          }
          return welcome.resolve();
        }
        // Anything else before Welcome (an Error: not authorized) fails it.
        return this.#onMessage(message);
      },
    });
    this.closed = this.#connection.run().then(
      () => this.#fail(new OvtpError("network", "The server closed the connection")),
      (error) => this.#fail(error),
    ).then(() => {
      if (!welcomed) welcome.reject(this.#failure!);
    });
  }

  /** Connects and completes the handshake. */
  static async connect(options: ConnectOptions): Promise<OvtpClient> {
    const where = formatHostPort(options.hostname, options.port);
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const stream = options.stream ?? await dial(options.hostname, options.port, timeoutMs);
    const channel = await SecureChannel.initiate(stream, {
      identity: options.identity,
      verifyPeer: options.verifyHost,
      handshakeTimeoutMs: timeoutMs,
    }).catch((error) => {
      throw error instanceof OvtpError && error.kind === "network"
        ? new OvtpError("network", `Cannot connect to ${where}: ${lowerFirst(error.message)}`)
        : error;
    });
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const client = new OvtpClient(
      channel,
      options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      { resolve, reject },
    );
    const timer = setTimeout(
      () => client.#fail(new OvtpError("network", `No welcome from ${where} in time`)),
      timeoutMs,
    );
    try {
      await promise;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  /** Sends a request and resolves with its response. */
  request(body: string | Uint8Array): Promise<Response> {
    return this.#ask(MessageType.Request, typeof body === "string" ? utf8(body) : body);
  }

  /**
   * Calls a named function of the server with string parameters and an
   * optional message; resolves with its response (status `unknown-function`
   * when the server has no such function).
   */
  call(
    name: string,
    params: Record<string, string> = {},
    message: string | Uint8Array = "",
  ): Promise<Response> {
    const bytes = typeof message === "string" ? utf8(message) : message;
    return this.#ask(CALL_MESSAGE_TYPE, encodeCall({ function: name, params, message: bytes }));
  }

  /**
   * Asks the server for its clock (docs/protocol.md section 7.3b): a cheap
   * check that it is alive and answering, and of how far its clock is off.
   * A refusal (rate limit, shutdown) rejects with a `remote` OvtpError.
   */
  async ping(): Promise<Date> {
    const response = await this.#ask(PING_MESSAGE_TYPE, new Uint8Array(0));
    const text = fromUtf8(response.body);
    if (response.status !== "ok") throw new OvtpError("remote", text);
    if (!/^\d{1,16}$/.test(text)) {
      throw new OvtpError("protocol", "The server answered a ping with something not a time");
    }
    return new Date(Number(text));
  }

  /**
   * How often {@linkcode keepAlive} would ping, from the idle timeout the
   * server announced; undefined when it announced none.
   */
  get keepAliveIntervalMs(): number | undefined {
    return this.#keepAliveMs;
  }

  /**
   * Keeps this connection open while it is quiet, and ends it as lost (a
   * `network` failure) when the server stops answering: see keep_alive.ts.
   * Only with a server that announces its idle timeout in Welcome; with
   * others it does nothing. {@linkcode ChatSession.join} turns it on.
   */
  keepAlive(): void {
    if (this.#keepAliveMs === undefined || this.#keepAlive || this.#failure) return;
    this.#keepAlive = new KeepAlive(this.#keepAliveMs, {
      lastSendAt: () => this.#connection.lastSendAt,
      waitingSince: () => this.#connection.channel.waitingSince,
      writingSince: () => this.#connection.writingSince,
      ping: () => this.ping(),
      fail: (error) => this.#fail(error, true),
    });
    this.closed.then(() => this.#keepAlive?.stop());
  }

  /** Downloads a file from the server's served folder (resuming a partial one). */
  getFile(remotePath: string, dest: string, options: FetchOptions = {}): Promise<FetchedFile> {
    return this.#transfers.getFile(remotePath, dest, options);
  }

  /**
   * Pulls the folder `remotePath` into `dest` (new, or left by an earlier
   * pull of it): each file is downloaded and verified as by
   * {@linkcode getFile}; files already here are checked by hash, not fetched.
   */
  getFolder(
    remotePath: string,
    dest: string,
    options: FolderFetchOptions = {},
  ): Promise<FetchedFolder> {
    return this.#transfers.getFolder(remotePath, dest, options);
  }

  /**
   * Downloads `remotePath` into `sink` from the start (no partial file, no
   * resume), checking its SHA-256 at the end.
   */
  streamFile(
    remotePath: string,
    sink: { write(bytes: Uint8Array): Promise<void> },
    options: Pick<FetchOptions, "onProgress"> = {},
  ): Promise<Omit<FetchedFile, "path">> {
    return this.#transfers.streamFile(remotePath, sink, options);
  }

  /** Lists a folder of the server's served folder. */
  listFiles(remotePath = ""): Promise<ListEntry[]> {
    return this.#transfers.listFiles(remotePath);
  }

  #ask(type: number, bytes: Uint8Array): Promise<Response> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#allocateId();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#connection.send({ type, id, body: bytes }).catch((error) => {
        this.#pending.delete(id);
        reject(error);
      });
    });
  }

  /**
   * Sends a file (see {@linkcode pathSource}, {@linkcode streamSource} and
   * {@linkcode directorySources}) and resolves once the server has verified
   * its SHA-256 and stored it. Transfers may run alongside requests.
   */
  sendFile(source: FileSource, options: SendFileOptions = {}): Promise<SentFile> {
    return this.#transfers.sendFile(source, options);
  }

  /** @internal The raw message link, for protocol extensions inside this library (chat). */
  get link(): MessageLink {
    return {
      nextId: () => this.#allocateId(),
      send: (message) =>
        this.#failure ? Promise.reject(this.#failure) : this.#connection.send(message),
      subscribe: (id, onMessage, onError) => {
        if (this.#failure) {
          onError(this.#failure);
          return () => {};
        }
        const subscription = { onMessage, onError, resume: undefined as (() => void) | undefined };
        this.#subscriptions.set(id, subscription);
        return () => {
          if (this.#subscriptions.get(id) === subscription) this.#subscriptions.delete(id);
          subscription.resume?.();
        };
      },
    };
  }

  #allocateId(): number {
    const id = this.#nextId++;
    if (this.#nextId > 0xffffffff) this.#nextId = 1;
    return id;
  }

  /**
   * Why the connection ended (undefined while it is open): a server that
   * went away is a `network` OvtpError, one that stopped accepting the key a
   * `trust` one, so a caller can tell whether connecting again may help.
   */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.#fail(new OvtpError("network", "The connection was closed"), true);
  }

  #onMessage(message: Message): void | Promise<void> {
    const subscription = this.#subscriptions.get(message.id);
    if (subscription && message.id !== 0) {
      const paused = subscription.onMessage(message);
      if (!paused) return;
      // Reading waits for the subscriber, or for its unsubscribing.
      return new Promise<void>((resolve) => {
        subscription.resume = resolve;
        paused.then(resolve, resolve);
      });
    }
    if (message.type === MessageType.Response) {
      const pending = this.#pending.get(message.id);
      if (!pending) {
        this.#fail(new OvtpError("protocol", `Response to unknown request ${message.id}`));
        return;
      }
      this.#pending.delete(message.id);
      try {
        const { status, response } = decodeResponse(message.body);
        pending.resolve({ status, body: response, requestId: message.id });
      } catch (error) {
        const failure = new OvtpError("protocol", (error as Error).message);
        pending.reject(failure);
        this.#fail(failure);
      }
      return;
    }
    if (message.type === MessageType.Error) {
      const info = decodeJson(message.body);
      const kind = info.code === "not-authorized" || info.code === "key-expired"
        ? "trust"
        : "remote";
      this.#fail(
        new OvtpError(kind, String(info.message ?? "The server refused the connection"), {
          hint: typeof info.hint === "string" ? info.hint : undefined,
        }),
      );
      return;
    }
    this.#fail(new OvtpError("protocol", `Unexpected message type ${message.type}`));
  }

  // `byUs`: close() was called, so open subscriptions (a chat session, say)
  // were not left waiting by the server.
  #fail(error: Error, byUs = false): void {
    if (!this.#failure) {
      this.#failure = !byUs && error instanceof OvtpError && error.kind === "network" &&
          (this.#pending.size > 0 || this.#subscriptions.size > 0)
        ? new OvtpError("network", "The server closed the connection before answering")
        : error;
    }
    for (const pending of this.#pending.values()) pending.reject(this.#failure);
    this.#pending.clear();
    for (const subscription of this.#subscriptions.values()) subscription.onError(this.#failure);
    this.#subscriptions.clear();
    this.#connection.close(this.#failure);
  }
}

/**
 * Decodes a response body as UTF-8 text, replacing invalid sequences.
 *
 * @example Text, and bytes that are not UTF-8
 * ```ts
 * import { type Response, responseText } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const response = (body: Uint8Array): Response => ({ status: "ok", body, requestId: 1 });
 * assert.equal(responseText(response(new TextEncoder().encode("héllo"))), "héllo");
 * assert.equal(responseText(response(new Uint8Array([0x68, 0x69, 0xff]))), "hi\ufffd");
 * ```
 */
export function responseText(response: Response): string {
  try {
    return fromUtf8(response.body);
  } catch {
    return new TextDecoder().decode(response.body);
  }
}

/** Opens a TCP connection, with errors that say what failed (refused, timed out, unknown name). */
export async function dial(hostname: string, port: number, timeoutMs: number): Promise<Deno.Conn> {
  const where = formatHostPort(hostname, port);
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const conn = await Deno.connect({ hostname, port, signal } as Deno.ConnectOptions);
    conn.setNoDelay(true);
    return conn;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) {
      throw new OvtpError("network", `Cannot connect to ${where}: connection refused`, {
        hint: "is `ovtp listen` running there, on that port?",
      });
    }
    if (signal.aborted || error instanceof Deno.errors.TimedOut) {
      throw new OvtpError("network", `Cannot connect to ${where}: timed out after ${timeoutMs} ms`);
    }
    const message = (error as Error).message;
    if (/lookup|resolve|name|dns/i.test(message)) {
      throw new OvtpError("network", `Cannot resolve host "${hostname}"`);
    }
    throw new OvtpError("network", `Cannot connect to ${where}: ${message}`);
  }
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
