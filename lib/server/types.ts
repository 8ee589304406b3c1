/**
 * What a server program gives {@linkcode serve} and what its handlers see:
 * requests, calls, replies, grants, authorizers and the server's options.
 * Kept apart from the listener and the per-connection session so that both
 * (and the services) can use these types without importing each other.
 *
 * @module
 */

import type { ChatRelay } from "../services/chat/relay.ts";
import type { Identity, PublicKey } from "../identity/keys.ts";
import type { KeyOptions, Rate } from "../trust/key_options.ts";
import type { Logger } from "../logger.ts";
import type { PairingResponder } from "../pair/responder.ts";
import type { Peer } from "../identity/peer.ts";
import type { Limiter } from "./rate_limiter.ts";
import type { Inbox } from "../services/transfer/inbox.ts";
import type { ServedFolder } from "../services/transfer/served_folder.ts";

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
 * A file received and stored, as reported to the server's program through
 * {@linkcode ServeOptions.onFile}.
 *
 * @example Acting on each file received
 * ```ts
 * import {
 *   generateIdentity,
 *   Inbox,
 *   OvtpClient,
 *   type ReceivedFile,
 *   serve,
 *   streamSource,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const arrived = Promise.withResolvers<ReceivedFile>();
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   inbox: new Inbox(dir),
 *   // Called once the file is in place (the sender may already have its answer).
 *   onFile: (file) => arrived.resolve(file),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * const data = new TextEncoder().encode("hello");
 * const sent = await client.sendFile(streamSource(ReadableStream.from([data]), "hello.txt"));
 *
 * const file = await arrived.promise;
 * assert.equal(file.peer.name, "alice");
 * assert.equal(file.name, "hello.txt");
 * assert.equal(file.path, "alice/hello.txt");
 * assert.equal(file.sha256, sent.sha256);
 * assert.equal(await Deno.readTextFile(file.absolutePath), "hello");
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface ReceivedFile {
  /** Who sent it. */
  readonly peer: Peer;
  /** The name the sender gave. */
  readonly name: string;
  /** Where it was stored, relative to the inbox. */
  readonly path: string;
  /** Its absolute path. */
  readonly absolutePath: string;
  /** Its size in bytes. */
  readonly size: number;
  /** Its SHA-256 (hex), verified. */
  readonly sha256: string;
  /** Whether it was renamed to avoid overwriting a file. */
  readonly renamed: boolean;
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
  /**
   * Close a connection that sent nothing this long; 0 disables. A request
   * being answered or a download being sent holds it open, unless the
   * client leaves a write untaken as long. @default 300000
   */
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
