/**
 * The client's side of a pairing connection: a handshake that asks for
 * pairing (whatever the server's key: the code authenticates it, so
 * known_hosts is not consulted for an unknown host), then SPAKE2 with the
 * invite's code. The server's key is returned only once the server proved
 * that it knows the code and said that it authorized this client; the
 * caller records it then, so that nothing is written on a failure.
 *
 * @module
 */

import { concat, utf8 } from "../bytes.ts";
import { type ByteStream, SecureChannel } from "../channel/channel.ts";
import { OvtpError } from "../errors.ts";
import type { Identity, PublicKey } from "../identity/keys.ts";
import { decodeJson, MessageType } from "../channel/messages.ts";
import { codeScalar, type PairCode } from "./code.ts";
import { CONFIRMATION_LENGTH, confirmationMatches, SHARE_LENGTH, Spake2 } from "./spake2.ts";
import {
  MAX_PAIR_NAME,
  PAIR_INTENT,
  pairContext,
  pairErrorOf,
  PairMessageType,
  readPairMessage,
  sendPairMessage,
} from "./wire.ts";

/** Time allowed for the handshake and the exchange when {@linkcode PairOptions} leave it out. */
export const DEFAULT_PAIR_TIMEOUT_MS = 30_000;

/**
 * Options of {@linkcode pair}.
 *
 * @example Pair under a chosen name, within 5 seconds
 * ```ts
 * import {
 *   generateIdentity,
 *   InviteStore,
 *   Keystore,
 *   pair,
 *   PairingResponder,
 *   type PairOptions,
 *   samePublicKey,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const keystore = new Keystore(await Deno.makeTempDir());
 * const serverIdentity = await generateIdentity();
 * const invites = new InviteStore(keystore);
 * const server = serve({
 *   identity: serverIdentity,
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve(undefined), // Nobody yet: pairing needs no grant.
 *   handler: () => ({}),
 *   pairing: new PairingResponder({ invites }),
 * });
 * const { code } = await invites.create({ name: "alice" }); // Told to alice by phone.
 *
 * const options: PairOptions = {
 *   stream: await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
 *   identity: await generateIdentity(),
 *   code,
 *   name: "alice@laptop", // The invite's own name ("alice") wins.
 *   timeoutMs: 5000,
 * };
 * const result = await pair(options);
 * assert.ok(samePublicKey(result.serverKey, serverIdentity.publicKey)); // Proven by the code.
 * assert.equal((await keystore.readAuthorizedKeys()).entries[0].name, "alice");
 * await server.close();
 * ```
 */
export interface PairOptions {
  /** The stream to the server (a TCP connection the caller opened). */
  stream: ByteStream;
  /** This client's identity. */
  identity: Identity;
  /** The invite's code. */
  code: PairCode;
  /** The name this client asks to be known by (the invite's own name wins). @default the server's choice */
  name?: string;
  /**
   * Called with the server's key after the handshake, before pairing: throw
   * to stop (a host known with another key). @default accept
   */
  verifyHost?: (key: PublicKey) => Promise<void> | void;
  /** Time allowed for the handshake and the exchange. @default 30000 */
  timeoutMs?: number;
}

/**
 * What a successful pairing gives the client: record `serverKey` in
 * known_hosts (Keystore.addKnownHost) to connect later without a prompt.
 *
 * @example Record the server's key once paired
 * ```ts
 * import {
 *   generateIdentity,
 *   InviteStore,
 *   Keystore,
 *   pair,
 *   PairingResponder,
 *   type PairResult,
 *   samePublicKey,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const keystore = new Keystore(await Deno.makeTempDir());
 * const serverIdentity = await generateIdentity();
 * const invites = new InviteStore(keystore);
 * const server = serve({
 *   identity: serverIdentity,
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve(undefined), // Nobody yet: pairing needs no grant.
 *   handler: () => ({}),
 *   pairing: new PairingResponder({ invites }),
 * });
 * const { code } = await invites.create({ name: "alice" }); // Told to alice by phone.
 *
 * const result: PairResult = await pair({
 *   stream: await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
 *   identity: await generateIdentity(),
 *   code,
 * });
 * assert.ok(samePublicKey(result.serverKey, serverIdentity.publicKey)); // Proven by the code.
 * assert.equal((await keystore.readAuthorizedKeys()).entries[0].name, "alice");
 * await keystore.addKnownHost(`127.0.0.1:${server.addr.port}`, result.serverKey);
 * assert.deepEqual([result.name, result.added], ["alice", true]);
 * await server.close();
 * ```
 */
export interface PairResult {
  /** The server's key, authenticated by the code. */
  serverKey: PublicKey;
  /** The name the server knows this client by. */
  name: string;
  /** Whether the key was added (false: it was already authorized). */
  added: boolean;
}

/**
 * Pairs with the server at the other end of `options.stream` by an
 * invite's code: SPAKE2 (RFC 9382) bound to the connection's handshake
 * hash and both keys. Resolves once the server proved the code and
 * authorized this client; throws an OvtpError (kind `trust` for a wrong,
 * unknown or expired code) otherwise.
 *
 * @param options The stream, this client's identity and the code.
 * @returns The server's key and the name the server gave this client.
 *
 * @example Pair with a server on this machine
 * ```ts
 * import {
 *   generateIdentity,
 *   InviteStore,
 *   Keystore,
 *   pair,
 *   PairingResponder,
 *   samePublicKey,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const keystore = new Keystore(await Deno.makeTempDir());
 * const serverIdentity = await generateIdentity();
 * const invites = new InviteStore(keystore);
 * const server = serve({
 *   identity: serverIdentity,
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve(undefined), // Nobody yet: pairing needs no grant.
 *   handler: () => ({}),
 *   pairing: new PairingResponder({ invites }),
 * });
 * const { code } = await invites.create({ name: "alice" }); // Told to alice by phone.
 *
 * const result = await pair({
 *   stream: await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
 *   identity: await generateIdentity(),
 *   code,
 * });
 * assert.ok(samePublicKey(result.serverKey, serverIdentity.publicKey)); // Proven by the code.
 * assert.equal((await keystore.readAuthorizedKeys()).entries[0].name, "alice");
 * await server.close();
 * ```
 */
export async function pair(options: PairOptions): Promise<PairResult> {
  const nameBytes = utf8(options.name ?? "");
  if (nameBytes.length > MAX_PAIR_NAME) {
    throw new OvtpError("usage", `A name is at most ${MAX_PAIR_NAME} bytes`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_PAIR_TIMEOUT_MS;
  const channel = await SecureChannel.initiate(options.stream, {
    identity: options.identity,
    verifyPeer: options.verifyHost,
    handshakeTimeoutMs: timeoutMs,
    intent: PAIR_INTENT,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    channel.close();
  }, timeoutMs);
  try {
    return await exchange(channel, options, nameBytes);
  } catch (error) {
    if (timedOut) throw new OvtpError("network", `Pairing timed out after ${timeoutMs} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
    channel.close();
  }
}

async function exchange(
  channel: SecureChannel,
  options: PairOptions,
  nameBytes: Uint8Array,
): Promise<PairResult> {
  const { code, identity } = options;
  const spake = new Spake2("A", codeScalar(code));
  const nameplate = new Uint8Array(2);
  new DataView(nameplate.buffer).setUint16(0, code.nameplate);
  await sendPairMessage(channel, {
    type: PairMessageType.Start,
    body: concat(nameplate, spake.share),
  });
  const reply = await expect(channel, PairMessageType.Reply);
  if (reply.length !== SHARE_LENGTH + CONFIRMATION_LENGTH) {
    throw new OvtpError("protocol", `A pairing reply of ${reply.length} bytes`);
  }
  const context = pairContext(identity.publicKey, channel.peer, channel.handshakeHash);
  const keys = spake.finish(reply.subarray(0, SHARE_LENGTH), context);
  if (!confirmationMatches(keys.cB, reply.subarray(SHARE_LENGTH))) {
    throw new OvtpError(
      "trust",
      "Pairing failed: the code is wrong, or someone between you and the server is not the " +
        "server; nothing was written",
      { hint: "check the code with the server's owner; each wrong try uses one of the invite's 3" },
    );
  }
  await sendPairMessage(channel, {
    type: PairMessageType.Confirm,
    body: concat(keys.cA, nameBytes),
  });
  const done = decodeJson(await expect(channel, PairMessageType.Done));
  if (typeof done.name !== "string" || typeof done.added !== "boolean") {
    throw new OvtpError("protocol", "A malformed pairing result");
  }
  return { serverKey: channel.peer, name: done.name, added: done.added };
}

/** Reads the next message: the expected type's body, or the server's refusal as an error. */
async function expect(channel: SecureChannel, type: number): Promise<Uint8Array> {
  const message = await readPairMessage(channel);
  if (message.type === MessageType.Error) throw pairErrorOf(message);
  if (message.type !== type) {
    throw new OvtpError("protocol", `Unexpected message type ${message.type} while pairing`);
  }
  return message.body;
}
