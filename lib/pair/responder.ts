/**
 * The server's side of a pairing connection (docs/protocol.md section 20):
 * a client whose key need not be authorized proves that it knows an
 * invite's code, and learns that the server knows it too, by SPAKE2 bound
 * to this connection's handshake hash and both identity keys. Only then is
 * its key added to authorized_keys.
 *
 * This is all an unauthorized key can do: one attempt per connection, in
 * records of at most 1 KiB, within a time limit, and a few attempts per
 * address and minute; then the connection is closed.
 *
 * @module
 */

import { concat, constantTimeEqual, fromUtf8 } from "../bytes.ts";
import type { SecureChannel } from "../channel/channel.ts";
import { encodeJson } from "../channel/messages.ts";
import { OvtpError } from "../errors.ts";
import { fingerprint, type PublicKey } from "../identity/keys.ts";
import type { Rate } from "../trust/key_options.ts";
import type { Logger } from "../logger.ts";
import { RateLimiter } from "../server/rate_limiter.ts";
import { InviteRefused, type InviteStore } from "./invites.ts";
import { CONFIRMATION_LENGTH, confirmationMatches, SHARE_LENGTH } from "./spake2_scalars.ts";
import {
  MAX_PAIR_NAME,
  PAIR_INTENT,
  pairContext,
  PairMessageType,
  readPairMessage,
  sendPairError,
  sendPairMessage,
} from "./wire.ts";

/** Attempts allowed from one address by default: 10 a minute. */
export const DEFAULT_PAIR_RATE: Rate = { count: 10, perMs: 60_000 };
/** Time allowed for the exchange after the handshake. */
export const DEFAULT_PAIR_TIMEOUT_MS = 30_000;
/** Addresses remembered by the rate limit before it starts afresh (a bound on memory). */
const MAX_TRACKED_ADDRESSES = 4096;

/**
 * Options of {@linkcode PairingResponder}.
 *
 * @example Fewer attempts per address, less time per attempt
 * ```ts
 * import { InviteStore, Keystore, type PairingOptions, PairingResponder } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const options: PairingOptions = {
 *   invites: new InviteStore(new Keystore(await Deno.makeTempDir())),
 *   rate: { count: 3, perMs: 60_000 },
 *   timeoutMs: 10_000,
 * };
 * assert.ok(new PairingResponder(options)); // Give it to serve() as `pairing`.
 * ```
 */
export interface PairingOptions {
  /** The pending invites, and where a paired key is authorized. */
  invites: InviteStore;
  /** Attempts allowed per client address. @default 10 a minute */
  rate?: Rate;
  /** Time allowed for the exchange after the handshake. @default 30000 */
  timeoutMs?: number;
}

/** Where one attempt comes from, for the rate limit and the log. */
interface Attempt {
  channel: SecureChannel;
  serverKey: PublicKey;
  remote: string;
  logger: Logger;
  fields: Record<string, string>;
}

/**
 * Answers pairing connections for one server: give it to
 * {@linkcode serve} as `pairing`.
 *
 * @example A server that takes invites
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
export class PairingResponder {
  readonly #options: PairingOptions;
  #limiter = new RateLimiter();
  #tracked = new Set<string>();

  /** Creates the responder; its rate limit is shared by every connection. */
  constructor(options: PairingOptions) {
    this.#options = options;
  }

  /** @internal Runs the exchange on `channel` and closes it; never throws (the server calls it). */
  async answer(
    channel: SecureChannel,
    serverKey: PublicKey,
    where: { remote: string; logger: Logger },
  ): Promise<void> {
    const { remote, logger } = where;
    const fields = { remote, fingerprint: await fingerprint(channel.peer) };
    const timer = setTimeout(() => channel.close(), this.#timeoutMs);
    try {
      await this.#exchange({ channel, serverKey, remote, logger, fields });
    } catch (error) {
      logger.warn(`pairing failed: ${(error as Error).message}`, fields);
    } finally {
      clearTimeout(timer);
      channel.close();
    }
  }

  get #timeoutMs(): number {
    return this.#options.timeoutMs ?? DEFAULT_PAIR_TIMEOUT_MS;
  }

  async #exchange(attempt: Attempt): Promise<void> {
    const { channel, logger, fields } = attempt;
    const start = await readPairMessage(channel);
    if (start.type !== PairMessageType.Start || start.body.length !== 2 + SHARE_LENGTH) {
      throw new OvtpError("protocol", "Expected a pairing start of 67 bytes");
    }
    const nameplate = new DataView(start.body.buffer, start.body.byteOffset).getUint16(0);
    const retryAfterMs = this.#limited(attempt.remote);
    if (retryAfterMs !== undefined) {
      logger.warn("pairing refused: too many attempts from this address", fields);
      const seconds = Math.ceil(retryAfterMs / 1000);
      return await sendPairError(
        channel,
        "pair-rate",
        `Too many pairing attempts from your address: retry after ${seconds} s`,
      );
    }
    let charged;
    try {
      charged = await this.#options.invites.charge(nameplate);
    } catch (error) {
      if (!(error instanceof InviteRefused)) throw error;
      logger.warn(`pairing refused: ${error.message}`, fields);
      return await sendPairError(channel, error.code, error.message);
    }
    const { invite, w } = charged;
    // The curve arithmetic loads with the first pairing, not with listen.
    const { Spake2, Spake2Error } = await import("./spake2.ts");
    const spake = new Spake2("B", w);
    const context = pairContext(channel.peer, attempt.serverKey, channel.handshakeHash);
    let keys;
    try {
      keys = spake.finish(start.body.subarray(2), context);
    } catch (error) {
      if (!(error instanceof Spake2Error)) throw error;
      await this.#options.invites.fail(invite);
      throw new OvtpError("protocol", error.message);
    }
    await sendPairMessage(channel, {
      type: PairMessageType.Reply,
      body: concat(spake.share, keys.cB),
    });
    const confirm = await readPairMessage(channel).catch(() => undefined);
    const body = confirm?.body ?? new Uint8Array(0);
    const proven = confirm?.type === PairMessageType.Confirm &&
      body.length >= CONFIRMATION_LENGTH &&
      body.length <= CONFIRMATION_LENGTH + MAX_PAIR_NAME &&
      confirmationMatches(keys.cA, body.subarray(0, CONFIRMATION_LENGTH));
    if (!proven) {
      const left = await this.#options.invites.fail(invite);
      logger.warn(
        `pairing failed: wrong code for invite ${invite.nameplate} ` +
          `(${left > 0 ? `${left} ${left === 1 ? "try" : "tries"} left` : "revoked"})`,
        fields,
      );
      if (confirm) await sendPairError(channel, "pair-failed", "Wrong code").catch(() => {});
      return;
    }
    await this.#redeem(attempt, invite, body.subarray(CONFIRMATION_LENGTH));
  }

  /** Adds the proven key to authorized_keys and tells the client. */
  async #redeem(
    attempt: Attempt,
    invite: Parameters<InviteStore["redeem"]>[0],
    nameBytes: Uint8Array,
  ): Promise<void> {
    const { channel, logger, fields } = attempt;
    let result;
    try {
      result = await this.#options.invites.redeem(invite, channel.peer, fromUtf8(nameBytes));
    } catch (error) {
      const message = error instanceof TypeError
        ? "The name asked for is not UTF-8"
        : (error as Error).message;
      logger.warn(`pairing failed: ${message}`, fields);
      return await sendPairError(channel, "pair-failed", message);
    }
    await sendPairMessage(channel, {
      type: PairMessageType.Done,
      body: encodeJson({ name: result.name, added: result.added }),
    });
    logger.info(
      result.added
        ? `paired: authorized "${result.name}" by invite ${invite.nameplate}`
        : `paired: invite ${invite.nameplate} used by "${result.name}", already authorized`,
      { ...fields, name: result.name },
    );
  }

  /** Takes one attempt from the address's budget: undefined, or the wait. */
  #limited(remote: string): number | undefined {
    const address = remote.slice(0, remote.lastIndexOf(":"));
    if (!this.#tracked.has(address) && this.#tracked.size >= MAX_TRACKED_ADDRESSES) {
      this.#limiter = new RateLimiter();
      this.#tracked.clear();
    }
    this.#tracked.add(address);
    const decision = this.#limiter.take(address, this.#options.rate ?? DEFAULT_PAIR_RATE);
    return decision.allowed ? undefined : decision.retryAfterMs;
  }
}

/**
 * Answers a connection that asked for something other than a session (a
 * non-empty intent): pairing, when the server has a responder; anything
 * else is refused and closed.
 */
export async function answerIntent(
  channel: SecureChannel,
  responder: PairingResponder | undefined,
  where: { serverKey: PublicKey; remote: string; logger: Logger },
): Promise<void> {
  const pairing = constantTimeEqual(channel.intent, PAIR_INTENT);
  if (pairing && responder) return await responder.answer(channel, where.serverKey, where);
  where.logger.warn(
    pairing ? "pairing refused: this server takes no invites" : "refused an unknown intent",
    { remote: where.remote },
  );
  if (pairing) {
    await sendPairError(channel, "pair-unsupported", "This server does not accept pairing")
      .catch(() => {});
  }
  channel.close();
}
