/**
 * The handshake: the only bytes a stranger can make a server process, and
 * the only ones that decide whose key the channel is bound to. A message
 * that was changed in any way, or an identity proof that does not sign this
 * session's handshake hash, must end the handshake with the library's
 * error (OvtpError from the channel; HandshakeError or DecryptError from the
 * Noise layer), and the unchanged message must always succeed.
 *
 * Public-key crypto makes each case cost milliseconds, so the scripted side
 * of every case replays fixed ephemeral and KEM keys (its first message is
 * then the same bytes every time) and the keys are made once.
 */

import fc from "fast-check";
import { concat, fromHex, utf8 } from "../../lib/bytes.ts";
import { type ByteStream, PROLOGUE, SecureChannel } from "../../lib/channel/channel.ts";
import { OvtpError } from "../../lib/errors.ts";
import { encodeFrame, FRAME_HEADER_LENGTH } from "../../lib/channel/framing.ts";
import { generateIdentity, type Identity } from "../../lib/identity/keys.ts";
import { DecryptError } from "../../lib/channel/noise/aead.ts";
import {
  HandshakeError,
  HandshakeState,
  type KeyPair,
} from "../../lib/channel/noise/handshake_state.ts";
import { XX_HFS } from "../../lib/channel/noise/patterns.ts";
import {
  ed25519Sign,
  generateMlKem768,
  generateX25519,
  type MlKemKeyPair,
} from "../../lib/crypto/mod.ts";
import { type FuzzTarget, fuzzTarget } from "../_target.ts";
import { applyMutations, mutations } from "../_mutate.ts";

/** Cases for `deno task test`: each does several public-key operations. */
const TEST_RUNS = 40;
/** Below the per-case limit, so that a stuck handshake reports as a timeout. */
const HANDSHAKE_TIMEOUT_MS = 3_000;

// ---------------------------------------------------------------------------
// Fixed keys and a valid transcript, made once
// ---------------------------------------------------------------------------

interface Fixture {
  alice: Identity;
  bob: Identity;
  /** The initiator's ephemeral and KEM keys, so that its message 1 is fixed. */
  initiatorEphemeral: KeyPair;
  initiatorKem: MlKemKeyPair;
  responderEphemeral: KeyPair;
  /** The fixed message 1. */
  message1: Uint8Array;
  /** A message 2 answering it, and its payload. */
  message2: Uint8Array;
  payload2: Uint8Array;
  /** A valid proof by Bob, but of another session's handshake hash. */
  staleProof: Uint8Array;
}

let fixture: Promise<Fixture> | undefined;

function setUp(): Promise<Fixture> {
  fixture ??= (async () => {
    const [alice, bob, initiatorEphemeral, initiatorKem, responderEphemeral] = await Promise.all([
      generateIdentity(),
      generateIdentity(),
      generateX25519(),
      generateMlKem768(),
      generateX25519(),
    ]);
    const f = {
      alice,
      bob,
      initiatorEphemeral,
      initiatorKem,
      responderEphemeral,
    } as Fixture;
    const initiator = await initiatorState(f);
    f.message1 = await initiator.writeMessage(new Uint8Array(0));
    const responder = await responderState(f);
    await responder.readMessage(f.message1);
    f.payload2 = await proof(bob, responder.handshakeHash);
    f.message2 = await responder.writeMessage(f.payload2);
    f.staleProof = await proof(bob, new Uint8Array(32).fill(7));
    return f;
  })();
  return fixture;
}

function initiatorState(f: Fixture): Promise<HandshakeState> {
  return HandshakeState.create({
    pattern: XX_HFS,
    initiator: true,
    cipher: "ChaChaPoly",
    prologue: PROLOGUE,
    staticKey: { privateKey: f.alice.x25519Private, publicKey: f.alice.publicKey.x25519 },
    ephemeralKey: f.initiatorEphemeral,
    kemKeyPair: f.initiatorKem,
  });
}

function responderState(f: Fixture): Promise<HandshakeState> {
  return HandshakeState.create({
    pattern: XX_HFS,
    initiator: false,
    cipher: "ChaChaPoly",
    prologue: PROLOGUE,
    staticKey: { privateKey: f.bob.x25519Private, publicKey: f.bob.publicKey.x25519 },
    ephemeralKey: f.responderEphemeral,
  });
}

/** The identity proof as lib/channel/channel.ts makes it (docs/protocol.md section 4). */
async function proof(identity: Identity, h: Uint8Array): Promise<Uint8Array> {
  const signature = await ed25519Sign(
    identity.ed25519Private,
    concat(utf8("ovtp/1 identity proof"), h),
  );
  return concat(identity.publicKey.ed25519, signature);
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/**
 * Runs `step` of the Noise layer: its result, or undefined if it threw one of
 * the errors that layer uses for bad input. OperationError is WebCrypto's
 * refusal of a peer's key (a low-order X25519 point, an ML-KEM key out of
 * range), which the channel maps to OvtpError "protocol"; anything else is
 * a crash.
 */
async function noiseStep<T>(step: () => Promise<T>): Promise<T | undefined> {
  try {
    return await step();
  } catch (error) {
    if (
      error instanceof HandshakeError || error instanceof DecryptError ||
      (error instanceof DOMException && error.name === "OperationError")
    ) {
      return undefined;
    }
    throw error;
  }
}

/** The outcome of a real channel's handshake: the channel, or its OvtpError. */
async function settle(
  handshake: Promise<SecureChannel>,
): Promise<{ channel?: SecureChannel; error?: OvtpError }> {
  try {
    return { channel: await handshake };
  } catch (error) {
    if (!(error instanceof OvtpError)) throw error;
    check(!/timed out/.test(error.message), `The handshake hung: ${error.message}`);
    return { error };
  }
}

/**
 * A scripted peer's end of a connection to a real channel: frames it writes
 * reach the channel, and it reads the channel's frames. Closing either end
 * ends both directions, as closing a socket does.
 */
function connection(): {
  channelSide: ByteStream;
  write(message: Uint8Array): Promise<void>;
  read(): Promise<Uint8Array | null>;
  close(): void;
} {
  const toChannel = pipe();
  const fromChannel = pipe();
  const writer = toChannel.writable.getWriter();
  // The channel writes each handshake message as one whole frame, so a plain
  // reader will do (a FrameReader's 128 KiB buffer costs more than a DH here).
  const reader = fromChannel.readable.getReader();
  const close = () => {
    toChannel.terminate();
    fromChannel.terminate();
  };
  return {
    channelSide: { readable: toChannel.readable, writable: fromChannel.writable, close },
    write: (message) => writer.write(encodeFrame(message)).catch(() => {}),
    read: () =>
      reader.read().then(({ value }) => value?.subarray(FRAME_HEADER_LENGTH) ?? null, () => null),
    close,
  };
}

/** One direction; terminate() works while both ends are locked, as a socket's close does. */
function pipe(): TransformStream<Uint8Array, Uint8Array> & { terminate(): void } {
  let controller!: TransformStreamDefaultController<Uint8Array>;
  // Room for every handshake message, so that no write waits for a reader.
  const stream = new TransformStream<Uint8Array, Uint8Array>(
    {
      start(c) {
        controller = c;
      },
    },
    undefined,
    { highWaterMark: 16 },
  );
  return Object.assign(stream, {
    terminate() {
      try {
        controller.terminate();
      } catch {
        // Already terminated.
      }
    },
  });
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

/**
 * X25519 public keys of small order, some in non-canonical encodings: as a
 * peer's ephemeral key they would make a DH output known to anyone, and
 * WebCrypto refuses them. Random mutations would never hit one.
 */
const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map(fromHex);

/**
 * Damage to a fixed valid message (whose first 32 bytes are the sender's
 * ephemeral key): mutations, or that key replaced by a small-order point.
 * One case in eight leaves the message intact.
 */
const damage = fc.option(
  fc.oneof(
    { weight: 6, arbitrary: mutations.map((list) => ({ kind: "mutate" as const, list })) },
    {
      weight: 1,
      arbitrary: fc.nat(LOW_ORDER_POINTS.length - 1)
        .map((point) => ({ kind: "low-order" as const, point })),
    },
  ),
  { freq: 8 },
);
type Damage = typeof damage extends fc.Arbitrary<infer T> ? T : never;

function damaged(message: Uint8Array, d: Damage): Uint8Array {
  if (d === null) return message;
  if (d.kind === "mutate") return applyMutations(message, d.list);
  const out = message.slice();
  out.set(LOW_ORDER_POINTS[d.point], 0);
  return out;
}

// Message 1 as a real server reads it. Noise cannot authenticate message 1
// (it is e and e1 in the clear), so a changed one may well be accepted: the
// property is that the server never crashes on it (a bad length is a
// FramingError, a bad key WebCrypto's refusal, both OvtpError), and that its
// answer to a changed message 1 is refused by the initiator who sent the
// original, since the two transcripts differ.
const message1 = fuzzTarget(
  "handshake/message1-server",
  fc.asyncProperty(damage, async (d) => {
    const f = await setUp();
    const sent = damaged(f.message1, d);
    const link = connection();
    const server = settle(SecureChannel.respond(link.channelSide, {
      identity: f.bob,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    }));
    await link.write(sent);
    const initiator = await initiatorState(f);
    await initiator.writeMessage(new Uint8Array(0));
    const answer = await link.read();
    const read = answer && await noiseStep(() => initiator.readMessage(answer));
    const same = equalBytes(sent, f.message1);
    check(
      !read === !same,
      same ? "The genuine exchange failed" : "A changed message 1 went unnoticed",
    );
    if (read) {
      await link.write(await initiator.writeMessage(await proof(f.alice, initiator.handshakeHash)));
    }
    link.close();
    const result = await server;
    if (same) check(result.channel !== undefined, `The server refused: ${result.error?.message}`);
    else check(result.channel === undefined, "The server completed a handshake it never finished");
    result.channel?.close();
  }),
  { testRuns: TEST_RUNS },
);

// Message 2 as the Noise initiator reads it: every byte is either
// authenticated or feeds a key, so the state accepts it exactly when it is
// the message sent, and then yields the payload sent and the responder's key.
const message2 = fuzzTarget(
  "handshake/message2-noise",
  fc.asyncProperty(damage, async (d) => {
    const f = await setUp();
    const received = damaged(f.message2, d);
    const initiator = await initiatorState(f);
    await initiator.writeMessage(new Uint8Array(0));
    const payload = await noiseStep(() => initiator.readMessage(received));
    if (!equalBytes(received, f.message2)) {
      check(payload === undefined, "A changed message 2 was accepted");
      // A failed state stays failed: the genuine message cannot be slipped in after.
      check(
        await noiseStep(() => initiator.readMessage(f.message2)) === undefined,
        "The handshake went on after a refused message",
      );
      return;
    }
    check(payload !== undefined && equalBytes(payload, f.payload2), "The genuine message 2 failed");
    check(equalBytes(initiator.remoteStaticKey!, f.bob.publicKey.x25519), "Wrong responder key");
  }),
  { testRuns: TEST_RUNS },
);

/** What the scripted peer does to the message the real channel reads. */
const attack = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
  // Damage on the wire: after encryption.
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("message" as const), list: mutations }) },
  // A peer that holds the static key but forges the proof: valid Noise,
  // damaged or replayed proof inside.
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("proof" as const), list: mutations }) },
  { weight: 1, arbitrary: fc.constant({ kind: "stale" as const }) },
);
type Attack = typeof attack extends fc.Arbitrary<infer T> ? T : never;

/** The proof the scripted peer sends in place of `genuine`. */
function forged(attack: Attack, f: Fixture, genuine: Uint8Array): Uint8Array {
  if (attack.kind === "stale") return f.staleProof;
  return attack.kind === "proof" ? applyMutations(genuine, attack.list) : genuine;
}

// Message 2 as a real client reads it, from a scripted server: accepted,
// with the server's full key as the peer, exactly when the message and the
// identity proof in it are the genuine ones; otherwise OvtpError "protocol".
async function message2Client(attack: Attack): Promise<void> {
  const f = await setUp();
  const link = connection();
  const client = settle(SecureChannel.initiate(link.channelSide, {
    identity: f.alice,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  }));
  const responder = await responderState(f);
  await responder.readMessage((await link.read())!);
  const genuineProof = await proof(f.bob, responder.handshakeHash);
  const payload = forged(attack, f, genuineProof);
  const written = await responder.writeMessage(payload);
  const sent = attack.kind === "message" ? applyMutations(written, attack.list) : written;
  await link.write(sent);
  const genuine = equalBytes(payload, genuineProof) && equalBytes(written, sent);
  const result = await client;
  link.close();
  if (genuine) {
    check(result.channel !== undefined, `The client refused: ${result.error?.message}`);
    check(
      equalBytes(result.channel.peer.ed25519, f.bob.publicKey.ed25519) &&
        equalBytes(result.channel.peer.x25519, f.bob.publicKey.x25519),
      "The client bound the channel to the wrong key",
    );
    result.channel.close();
  } else {
    check(result.error?.kind === "protocol", `Expected a protocol error: ${result.error}`);
  }
}

// Message 3 as a real server reads it, from a scripted client: the same
// property from the other side, where the proof is the client's.
async function message3Server(attack: Attack): Promise<void> {
  const f = await setUp();
  const link = connection();
  const server = settle(SecureChannel.respond(link.channelSide, {
    identity: f.bob,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  }));
  const initiator = await initiatorState(f);
  await link.write(await initiator.writeMessage(new Uint8Array(0)));
  const answer = await link.read();
  check(answer !== null, "The server did not answer message 1");
  await initiator.readMessage(answer);
  const genuineProof = await proof(f.alice, initiator.handshakeHash);
  const payload = forged(attack, f, genuineProof);
  const written = await initiator.writeMessage(payload);
  const sent = attack.kind === "message" ? applyMutations(written, attack.list) : written;
  await link.write(sent);
  const genuine = equalBytes(payload, genuineProof) && equalBytes(written, sent);
  const result = await server;
  link.close();
  if (genuine) {
    check(result.channel !== undefined, `The server refused: ${result.error?.message}`);
    check(
      equalBytes(result.channel.peer.ed25519, f.alice.publicKey.ed25519),
      "The server bound the channel to the wrong key",
    );
    result.channel.close();
  } else {
    check(result.error?.kind === "protocol", `Expected a protocol error: ${result.error}`);
  }
}

// Both proofs in one target: each case costs a full handshake's worth of
// public-key operations (about 3 ms), and two targets would double the time
// of a 100,000-case run for little more coverage.
const identityProofs = fuzzTarget(
  "handshake/identity-proofs",
  fc.asyncProperty(
    fc.boolean(),
    attack,
    (client, attack) => client ? message2Client(attack) : message3Server(attack),
  ),
  { testRuns: TEST_RUNS },
);

export const targets: FuzzTarget[] = [message1, message2, identityProofs];
