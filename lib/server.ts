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
import { TrimScheduler } from "./_malloc_trim.ts";
import type { PairingResponder } from "./pair/responder.ts";
import type { Peer } from "./peer.ts";
import { type Limiter, RateLimiter } from "./rate_limiter.ts";
import { handleConnection, type LiveConnection } from "./server_connection.ts";
import type { Inbox } from "./transfer/inbox.ts";
import type { ServedFolder } from "./transfer/served_folder.ts";
import type { ReceivedFile } from "./transfer/receiver.ts";

/**
 * The port `ovtp listen` uses when none is given, and the port
 * {@linkcode serve} listens on by default.
 *
 * @example The port to dial when the user names none
 * ```ts
 * import { DEFAULT_PORT } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [hostname, port = String(DEFAULT_PORT)] = "example.org".split(":");
 * assert.equal(hostname, "example.org");
 * assert.equal(Number(port), 4747);
 * ```
 */
export const DEFAULT_PORT = 4747;

/**
 * A request as the handler sees it.
 *
 * @example A handler that answers with the sender's name
 * ```ts
 * import { fingerprint, generateIdentity, type Request, requestText } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function greet(request: Request) {
 *   return { response: `hello ${request.peer.name}, you said "${requestText(request)}"` };
 * }
 *
 * // Handlers are plain functions: test one without a server.
 * const { publicKey } = await generateIdentity();
 * const request: Request = {
 *   requestId: 1,
 *   body: new TextEncoder().encode("hi"),
 *   peer: { name: "alice", fingerprint: await fingerprint(publicKey), key: publicKey },
 * };
 * assert.equal(greet(request).response, 'hello alice, you said "hi"');
 * ```
 */
export interface Request {
  /** The id the client chose; echoed in the response. */
  readonly requestId: number;
  /** The message bytes. */
  readonly body: Uint8Array;
  /** The authenticated sender. */
  readonly peer: Peer;
  /**
   * Aborted when the request's connection ends: closed by either side, or
   * by the server when the key is removed, expires or loses a permission.
   * Work not yet started for it should not start. @default never aborted
   */
  readonly signal?: AbortSignal;
}

/**
 * A named function call as its handler sees it: a {@linkcode Request} with
 * the function's name and parameters.
 *
 * @example Reading the parameters of a call
 * ```ts
 * import { type FunctionCall, type FunctionHandler, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const repeat: FunctionHandler = (call: FunctionCall) => {
 *   const times = Number(call.params.times ?? "1");
 *   if (!Number.isInteger(times) || times < 0) {
 *     return { status: "error", response: `Invalid times "${call.params.times}"` };
 *   }
 *   return { response: new TextDecoder().decode(call.body).repeat(times) };
 * };
 *
 * const { publicKey } = await generateIdentity();
 * const call: FunctionCall = {
 *   requestId: 7,
 *   name: "repeat",
 *   params: { times: "3" },
 *   body: new TextEncoder().encode("ab"),
 *   peer: { name: "alice", fingerprint: "SHA256:test", key: publicKey },
 * };
 * assert.deepEqual(await repeat(call), { response: "ababab" });
 * assert.equal((await repeat({ ...call, params: { times: "x" } })).status, "error");
 * ```
 */
export interface FunctionCall extends Request {
  /** The function's name. */
  readonly name: string;
  /** The parameters. */
  readonly params: Record<string, string>;
}

/**
 * What a handler answers. The client receives it as a
 * {@linkcode Response}: text is sent as UTF-8, a missing status as `ok`.
 *
 * @example Answering an empty message with an error
 * ```ts
 * import type { Reply, Request } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function size(request: Pick<Request, "body">): Reply {
 *   if (request.body.length === 0) return { status: "error", response: "Empty message" };
 *   return { response: String(request.body.length) };
 * }
 *
 * assert.deepEqual(size({ body: new Uint8Array(0) }), {
 *   status: "error",
 *   response: "Empty message",
 * });
 * assert.deepEqual(size({ body: new Uint8Array(3) }), { response: "3" });
 * ```
 */
export interface Reply {
  /** A short status: `ok` (the default), `error`, or another. */
  status?: string;
  /** The response text or bytes. @default empty */
  response?: string | Uint8Array;
}

/**
 * Answers one request; may run concurrently with others. A handler that
 * throws is answered `error`, and the connection stays open.
 *
 * @example A handler that counts requests per sender
 * ```ts
 * import {
 *   generateIdentity,
 *   OvtpClient,
 *   type RequestHandler,
 *   responseText,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const counts = new Map<string, number>();
 * const handler: RequestHandler = (request) => {
 *   const count = (counts.get(request.peer.fingerprint) ?? 0) + 1;
 *   counts.set(request.peer.fingerprint, count);
 *   return { response: `request ${count} from ${request.peer.name}` };
 * };
 *
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler,
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * await client.request("one");
 * assert.equal(responseText(await client.request("two")), "request 2 from alice");
 * client.close();
 * await server.close();
 * ```
 */
export type RequestHandler = (request: Request) => Reply | Promise<Reply>;

/**
 * Answers one call of a named function (see {@linkcode ServeOptions.functions}
 * and {@linkcode OvtpClient.call}).
 *
 * @example Adding two numbers
 * ```ts
 * import { type FunctionHandler, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const add: FunctionHandler = ({ params }) => ({
 *   response: String(Number(params.a) + Number(params.b)),
 * });
 * // serve({ ..., functions: { add } }); a client runs `client.call("add", { a: "2", b: "3" })`.
 *
 * const { publicKey } = await generateIdentity();
 * const peer = { name: "alice", fingerprint: "SHA256:test", key: publicKey };
 * const reply = await add({
 *   requestId: 1,
 *   name: "add",
 *   params: { a: "2", b: "3" },
 *   body: new Uint8Array(0),
 *   peer,
 * });
 * assert.equal(reply.response, "5");
 * ```
 */
export type FunctionHandler = (call: FunctionCall) => Reply | Promise<Reply>;

/**
 * What an authorizer grants a key: its name and its options (permissions, expiry, rate).
 *
 * @example Grants by fingerprint, one of them limited
 * ```ts
 * import { type Authorizer, fingerprint, generateIdentity, type Grant } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const backup = await generateIdentity();
 * const grants = new Map<string, Grant>([
 *   [await fingerprint(alice.publicKey), { name: "alice" }],
 *   [await fingerprint(backup.publicKey), {
 *     name: "backup",
 *     // Only uploads, 10 per minute, until the end of 2030.
 *     options: {
 *       allow: ["upload"],
 *       rate: { count: 10, perMs: 60_000 },
 *       expires: new Date("2031-01-01T00:00:00Z"),
 *     },
 *   }],
 * ]);
 * const authorize: Authorizer = async (key) => grants.get(await fingerprint(key));
 *
 * assert.deepEqual((await authorize(backup.publicKey))?.options?.allow, ["upload"]);
 * assert.equal((await authorize(alice.publicKey))?.options, undefined);
 * ```
 */
export interface Grant {
  /** The name the server knows the client by. */
  name: string;
  /** Permissions, expiry and rate limit. @default everything, forever, the server's rate */
  options?: KeyOptions;
}

/**
 * Decides whether a client may connect: a grant, or undefined to refuse it.
 * It is asked at the handshake and again about every second for each open
 * connection ({@linkcode ServeOptions.recheckIntervalMs}), so keep it
 * cheap: a key it no longer grants, a new name or a narrower `allow` closes
 * the connection. {@linkcode authorizedKeysAuthorizer} builds one from an
 * authorized_keys file.
 *
 * @example Accepting a fixed set of keys
 * ```ts
 * import {
 *   type Authorizer,
 *   generateIdentity,
 *   OvtpClient,
 *   OvtpError,
 *   samePublicKey,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const mallory = await generateIdentity();
 * const authorize: Authorizer = (key) =>
 *   Promise.resolve(samePublicKey(key, alice.publicKey) ? { name: "alice" } : undefined);
 *
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize,
 *   handler: () => ({ response: "welcome" }),
 * });
 * const connect = (identity: typeof alice) =>
 *   OvtpClient.connect({
 *     hostname: "127.0.0.1",
 *     port: server.addr.port,
 *     identity,
 *     verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 *   });
 * const client = await connect(alice);
 * client.close();
 * await assert.rejects(
 *   connect(mallory),
 *   (error) => error instanceof OvtpError && error.kind === "trust",
 * );
 * await server.close();
 * ```
 */
export type Authorizer = (
  key: PublicKey,
  options?: AuthorizeOptions,
) => Promise<Grant | undefined>;

/**
 * How fresh an {@linkcode Authorizer}'s answer must be. A connection being
 * opened asks with none (the answer reflects the file as it is now); an
 * open connection rechecking its grant every second allows an answer a
 * little older, so that thousands of idle connections share one look at
 * the file instead of one each.
 *
 * @example Ask as a recheck does
 * ```ts
 * import { type AuthorizeOptions, authorizedKeysAuthorizer, generateIdentity, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const keystore = new Keystore(await Deno.makeTempDir());
 * const authorize = authorizedKeysAuthorizer(keystore);
 * const recheck: AuthorizeOptions = { maxAgeMs: 250 };
 * assert.equal(await authorize((await generateIdentity()).publicKey, recheck), undefined);
 * ```
 */
export interface AuthorizeOptions {
  /**
   * An answer based on a look at the file at most this old (ms) will do.
   * @default 0
   */
  maxAgeMs?: number;
}

/**
 * Options of {@linkcode serve}.
 *
 * @example A server with named functions and tighter limits
 * ```ts
 * import {
 *   generateIdentity,
 *   OvtpClient,
 *   responseText,
 *   serve,
 *   type ServeOptions,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const options: ServeOptions = {
 *   identity: await generateIdentity(),
 *   authorize: () => Promise.resolve({ name: "anyone" }),
 *   handler: () => ({ status: "error", response: "Only functions here" }),
 *   functions: { uptime: () => ({ response: String(Math.round(performance.now())) }) },
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   maxMessageSize: 64 * 1024,
 *   maxPerAddress: 8,
 *   rate: { count: 100, perMs: 60_000 },
 * };
 * const server = serve(options);
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * assert.match(responseText(await client.call("uptime")), /^\d+$/);
 * assert.equal((await client.call("reboot")).status, "unknown-function");
 * client.close();
 * await server.close();
 * ```
 */
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
  /**
   * Open connections allowed at once. An idle connection costs the server
   * about 33 KiB (bench/idle_connections.ts): 10,000 fit in 400 MB.
   * @default 10000
   */
  maxConnections?: number;
  /** Open connections allowed from one address. @default 64 */
  maxPerAddress?: number;
  /** Handshakes allowed in progress at once. @default 128 */
  maxHandshakes?: number;
  /** Bytes queued for one client before it is dropped as not reading. @default 32 MiB */
  maxQueuedBytes?: number;
  /** The default per-key rate limit (a key's own `rate` option wins). @default none */
  rate?: Rate;
  /**
   * How often each open connection asks `authorize` again, in ms, so that a
   * removed key or changed options reach connections already open (expiry
   * takes effect at its instant regardless). @default 1000
   */
  recheckIntervalMs?: number;
  /** Where received files go; without it, file offers are refused. */
  inbox?: Inbox;
  /** Called for each file once it is verified and in the inbox. */
  onFile?: (file: ReceivedFile) => void | Promise<void>;
  /** A read-only folder clients may download from. */
  served?: ServedFolder;
  /** The chat relay; without it, chat joins are refused. */
  chat?: ChatRelay;
  /** Answers pairing connections (`ovtp pair`); without it, they are refused. */
  pairing?: PairingResponder;
  /** Where rate-limit tokens are taken (shared by a cluster's relays). @default in memory */
  limiter?: Limiter;
}

/**
 * A running server, as {@linkcode serve} returns it.
 *
 * @example Finding the port picked, then stopping
 * ```ts
 * import { generateIdentity, type OvtpServer, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const server: OvtpServer = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0, // Any free port: addr tells which.
 *   authorize: () => Promise.resolve(undefined),
 *   handler: () => ({}),
 * });
 * assert.equal(server.addr.hostname, "127.0.0.1");
 * assert.ok(server.addr.port > 0);
 *
 * await server.close(1000); // Up to a second for work in flight.
 * await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
 * ```
 */
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
  limiter: Limiter;
  /** Whether the server is shutting down. */
  closing: boolean;
}

/**
 * Starts a server; it is listening when this returns.
 *
 * @example An echo server and a client
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
 *   // Anyone may connect: a real server checks authorized_keys (authorizedKeysAuthorizer).
 *   authorize: () => Promise.resolve({ name: "guest" }),
 *   handler: (request) => ({ response: `${request.peer.name}: ${requestText(request)}` }),
 * });
 *
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: (key) => assert.ok(samePublicKey(key, serverIdentity.publicKey)),
 * });
 * const response = await client.request("hello");
 * assert.equal(response.status, "ok");
 * assert.equal(responseText(response), "guest: hello");
 * client.close();
 * await server.close();
 * ```
 */
export function serve(options: ServeOptions): OvtpServer {
  const listener = Deno.listen({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? DEFAULT_PORT,
  });
  const context: ServerContext = {
    options,
    logger: options.logger ?? SILENT_LOGGER,
    limiter: options.limiter ?? new RateLimiter(),
    closing: false,
  };
  const { logger } = context;
  const connections = new Set<LiveConnection>();
  const perAddress = new Map<string, number>();
  const maxConnections = options.maxConnections ?? 10_000;
  const maxPerAddress = options.maxPerAddress ?? 64;
  const maxHandshakes = options.maxHandshakes ?? 128;
  const handshaking = { count: 0 };
  // Closed connections leave their C memory in malloc's free lists: give it
  // back once many have closed (only with --allow-ffi on glibc).
  const trimmer = new TrimScheduler();

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
      const live: LiveConnection = {
        stream: conn,
        busy: 0,
        lastActive: Date.now(),
        idle: () => closeQuietly(conn),
      };
      connections.add(live);
      handleConnection(context, live, remote, handshaking)
        .catch((error) => {
          // One client's failure must never stop the server.
          logger.warn(`connection failed: ${(error as Error).message}`, { remote });
          closeQuietly(conn);
        })
        .finally(() => {
          connections.delete(live);
          trimmer.closed();
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
      trimmer.stop();
      listener.close();
      await acceptLoop;
      // Idle connections go once quiet for a moment (a request already on
      // its way is answered "unavailable", not lost with the connection);
      // busy ones as soon as their work is done.
      const deadline = Date.now() + graceMs;
      while (connections.size > 0 && Date.now() < deadline) {
        const quietSince = Date.now() - QUIET_BEFORE_CLOSE_MS;
        for (const live of connections) {
          if (live.busy === 0 && live.lastActive <= quietSince) live.idle();
        }
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

/**
 * How long a connection must have sent nothing before shutdown closes it:
 * longer than a request takes to cross a link, so that one sent just before
 * the shutdown is answered rather than cut off.
 */
const QUIET_BEFORE_CLOSE_MS = 500;

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

/**
 * Decodes a request body as UTF-8 text, replacing invalid sequences.
 *
 * @example Text, and bytes that are not UTF-8
 * ```ts
 * import { generateIdentity, type Request, requestText } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const peer = { name: "alice", fingerprint: "SHA256:test", key: publicKey };
 * const request = (body: Uint8Array): Request => ({ requestId: 1, body, peer });
 *
 * assert.equal(requestText(request(new TextEncoder().encode("héllo"))), "héllo");
 * assert.equal(requestText(request(new Uint8Array([0x68, 0x69, 0xff]))), "hi\ufffd");
 * ```
 */
export function requestText(request: Request): string {
  return new TextDecoder().decode(request.body);
}
