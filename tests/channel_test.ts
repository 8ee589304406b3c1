import assert from "node:assert/strict";
import {
  type ByteStream,
  type ChannelOptions,
  MAX_BULK_PLAINTEXT,
  MAX_RECORD_PLAINTEXT,
  PROLOGUE,
  PROTOCOL_NAME,
  SecureChannel,
} from "../lib/channel/channel.ts";
import { OvtpError } from "../lib/errors.ts";
import { encodeFrame, FrameReader } from "../lib/channel/framing.ts";
import { generateIdentity, type Identity, type PublicKey } from "../lib/identity/keys.ts";
import { CHACHA_POLY, DecryptError } from "../lib/channel/noise/aead.ts";
import { HandshakeState, protocolName } from "../lib/channel/noise/handshake_state.ts";
import { XX_HFS } from "../lib/channel/noise/patterns.ts";

// ---------------------------------------------------------------------------
// An in-memory duplex: two TransformStreams, with an optional relay that can
// change, drop, repeat or reorder what passes. The channel writes one frame
// per write, so each chunk a relay sees is one whole frame.
// ---------------------------------------------------------------------------

/** Sees the n-th chunk sent in one direction and returns what to pass on. */
type Relay = (chunk: Uint8Array, index: number) => Uint8Array[];

interface Pipe {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Every chunk written, before the relay. */
  sent: Uint8Array[];
  terminate(): void;
}

function pipe(relay?: Relay): Pipe {
  let controller!: TransformStreamDefaultController<Uint8Array>;
  const sent: Uint8Array[] = [];
  const stream = new TransformStream<Uint8Array, Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      transform(chunk, c) {
        sent.push(chunk);
        for (const out of relay ? relay(chunk, sent.length - 1) : [chunk]) c.enqueue(out);
      },
    },
    undefined,
    // Room for many records, so a sender need not wait for the reader.
    { highWaterMark: 1024 },
  );
  return {
    readable: stream.readable,
    writable: stream.writable,
    sent,
    terminate() {
      try {
        controller.terminate();
      } catch {
        // Already terminated.
      }
    },
  };
}

interface Duplex {
  client: ByteStream;
  server: ByteStream;
  /** Client → server chunks: 0 is message 1, 1 is message 3, then records. */
  toServer: Pipe;
  /** Server → client chunks: 0 is message 2, then records. */
  toClient: Pipe;
}

/** Closing either end ends both directions, as closing a TCP socket does. */
function duplex(relays: { toServer?: Relay; toClient?: Relay } = {}): Duplex {
  const toServer = pipe(relays.toServer);
  const toClient = pipe(relays.toClient);
  const close = () => {
    toServer.terminate();
    toClient.terminate();
  };
  return {
    client: { readable: toClient.readable, writable: toServer.writable, close },
    server: { readable: toServer.readable, writable: toClient.writable, close },
    toServer,
    toClient,
  };
}

function flipByte(frame: Uint8Array, position: number): Uint8Array {
  const out = frame.slice();
  out[position] ^= 0x01;
  return out;
}

/** Flips one byte of the chunk at `target` (a position in the frame, 2 = first body byte). */
function flipAt(target: number, position: number): Relay {
  return (chunk, index) => [index === target ? flipByte(chunk, position) : chunk];
}

const [ALICE, BOB] = await Promise.all([generateIdentity(), generateIdentity()]);

async function connect(
  d: Duplex,
  client: Partial<ChannelOptions> = {},
  server: Partial<ChannelOptions> = {},
): Promise<[SecureChannel, SecureChannel]> {
  return await Promise.all([
    SecureChannel.initiate(d.client, { identity: ALICE, ...client }),
    SecureChannel.respond(d.server, { identity: BOB, ...server }),
  ]);
}

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function assertSameKey(actual: PublicKey, expected: PublicKey): void {
  assert.deepEqual(actual.x25519, expected.x25519);
  assert.deepEqual(actual.ed25519, expected.ed25519);
}

async function rejectsOvtp(
  promise: Promise<unknown>,
  kind: OvtpError["kind"],
  message: string,
): Promise<OvtpError> {
  let caught: OvtpError | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof OvtpError, `expected OvtpError, got ${error}`);
    assert.equal(error.kind, kind);
    assert.equal(error.message, message);
    caught = error;
    return true;
  });
  return caught!;
}

/** The rejection of a settled handshake, for rejectsOvtp(). */
function rejection(result: PromiseSettledResult<unknown>): Promise<never> {
  return Promise.reject((result as PromiseRejectedResult).reason);
}

const TAMPERED = "a message failed authentication (corrupted or tampered with in transit)";
const PEER_CLOSED = "The peer closed the connection during the handshake";

// ---------------------------------------------------------------------------
// Handshake and records
// ---------------------------------------------------------------------------

Deno.test("SecureChannel uses Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256", () => {
  assert.equal(protocolName(XX_HFS, "ChaChaPoly"), PROTOCOL_NAME);
  assert.equal(PROTOCOL_NAME, "Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256");
  assert.equal(MAX_RECORD_PLAINTEXT, 65535 - 16);
});

Deno.test("SecureChannel handshake succeeds and each side sees the other's public key", async () => {
  const d = duplex();
  const [client, server] = await connect(d);
  assertSameKey(client.peer, BOB.publicKey);
  assertSameKey(server.peer, ALICE.publicKey);
  assert.equal(client.handshakeHash.length, 32);
  assert.deepEqual(client.handshakeHash, server.handshakeHash);
  // Message sizes on the wire: XXhfs plus the 96-byte identity proofs, framed.
  assert.deepEqual(d.toServer.sent.map((c) => c.length), [2 + 1216, 2 + 64 + 96]);
  assert.deepEqual(d.toClient.sent.map((c) => c.length), [2 + 1200 + 96]);
  client.close();
});

Deno.test("SecureChannel carries records both ways, in order, up to MAX_RECORD_PLAINTEXT", async () => {
  const [client, server] = await connect(duplex());
  const big = Uint8Array.from({ length: MAX_RECORD_PLAINTEXT }, (_, i) => i & 0xff);
  const records = [text("hello"), new Uint8Array(0), big, text("last")];
  for (const record of records) await client.send(record);
  for (const record of records) assert.deepEqual(await server.receive(), record);
  for (const record of records.reverse()) await server.send(record);
  for (const record of records) assert.deepEqual(await client.receive(), record);
  client.close();
});

Deno.test("SecureChannel records are encrypted on the wire", async () => {
  const d = duplex();
  const [client, server] = await connect(d);
  const secret = text("attack at dawn, attack at dawn");
  await client.send(secret);
  assert.deepEqual(await server.receive(), secret);
  const wire = d.toServer.sent[2];
  assert.equal(wire.length, 2 + secret.length + 16);
  const wireText = new TextDecoder("latin1").decode(wire);
  assert.ok(!wireText.includes("attack"));
  client.close();
});

Deno.test("SecureChannel.send() refuses a record above MAX_RECORD_PLAINTEXT with RangeError", async () => {
  const [client, server] = await connect(duplex());
  await assert.rejects(client.send(new Uint8Array(MAX_RECORD_PLAINTEXT + 1)), {
    name: "RangeError",
    message: `A record holds at most ${MAX_RECORD_PLAINTEXT} bytes`,
  });
  // Nothing was consumed: the next record still arrives.
  await client.send(text("ok"));
  assert.deepEqual(await server.receive(), text("ok"));
  client.close();
});

Deno.test("SecureChannel.receive() returns null once the peer closes", async () => {
  const [client, server] = await connect(duplex());
  await client.send(text("bye"));
  client.close();
  assert.deepEqual(await server.receive(), text("bye"));
  assert.equal(await server.receive(), null);
});

Deno.test("SecureChannel.send() after the peer closed rejects with a network OvtpError", async () => {
  const [client, server] = await connect(duplex());
  server.close();
  await rejectsOvtp(client.send(text("late")), "network", "Cannot send: the connection was closed");
});

Deno.test("SecureChannel handshakes with fresh keys give different hashes", async () => {
  const [a] = await connect(duplex());
  const [b] = await connect(duplex());
  assert.notDeepEqual(a.handshakeHash, b.handshakeHash);
  a.close();
  b.close();
});

Deno.test("SecureChannel carries bulk records after the record that announces them, both ways", async () => {
  const d = duplex();
  const [client, server] = await connect(d);
  const small = Uint8Array.from({ length: 70_000 }, (_, i) => i & 0xff);
  const large = Uint8Array.from({ length: MAX_BULK_PLAINTEXT }, (_, i) => (i >> 8) & 0xff);
  await client.send(text("two follow"), [small, large]);
  await client.send(text("after"));
  assert.deepEqual(await server.receive(), text("two follow"));
  assert.deepEqual(await server.receiveBulk(small.length), small);
  assert.deepEqual(await server.receiveBulk(large.length), large);
  assert.deepEqual(await server.receive(), text("after"));
  // On the wire, one write each: the record's frame with the first bulk
  // record's ciphertext and tag (no frame header of its own), the next bulk
  // record, then the next record.
  assert.deepEqual(d.toServer.sent.slice(2).map((c) => c.length), [
    2 + 10 + 16 + small.length + 16,
    large.length + 16,
    2 + 5 + 16,
  ]);
  await server.send(text("one"), [small]);
  assert.deepEqual(await client.receive(), text("one"));
  assert.deepEqual(await client.receiveBulk(small.length), small);
  client.close();
});

Deno.test("SecureChannel.send() refuses a bulk record above MAX_BULK_PLAINTEXT with RangeError", async () => {
  const [client, server] = await connect(duplex());
  await assert.rejects(client.send(text("x"), [new Uint8Array(MAX_BULK_PLAINTEXT + 1)]), {
    name: "RangeError",
    message: `A bulk record holds at most ${MAX_BULK_PLAINTEXT} bytes`,
  });
  await client.send(text("ok"));
  assert.deepEqual(await server.receive(), text("ok"));
  client.close();
});

// ---------------------------------------------------------------------------
// Tampering with records
// ---------------------------------------------------------------------------

// The third write carries the record (2 + 12 + 16 bytes), then the bulk
// record's ciphertext and tag.
for (const [where, position] of [["ciphertext", 30], ["tag", 30 + 100_000 + 15]] as const) {
  Deno.test(`SecureChannel.receiveBulk() rejects a bulk record with a flipped ${where} byte`, async () => {
    const [client, server] = await connect(duplex({ toServer: flipAt(2, position) }));
    await client.send(text("bulk follows"), [new Uint8Array(100_000)]);
    assert.deepEqual(await server.receive(), text("bulk follows"));
    const error = await rejectsOvtp(
      server.receiveBulk(100_000),
      "protocol",
      `Cannot receive: ${TAMPERED}`,
    );
    assert.ok(error.cause instanceof DecryptError);
    client.close();
  });
}

Deno.test("SecureChannel.receiveBulk() rejects a stream that ends inside a bulk record", async () => {
  // The third write: the record (2 + 12 + 16 bytes), then the bulk record.
  const d = duplex({ toServer: (chunk, i) => i === 2 ? [chunk.subarray(0, 30 + 15)] : [chunk] });
  const [client, server] = await connect(d);
  await client.send(text("bulk follows"), [new Uint8Array(1000)]);
  client.close();
  assert.deepEqual(await server.receive(), text("bulk follows"));
  await rejectsOvtp(
    server.receiveBulk(1000),
    "protocol",
    "Cannot receive: The stream ended inside a bulk record of 1016 bytes",
  );
});

for (const [where, position] of [["first ciphertext byte", 2], ["tag", -1]] as const) {
  Deno.test(`SecureChannel.receive() rejects a record with a flipped ${where} as a protocol error`, async () => {
    const d = duplex({
      toServer: (
        chunk,
        i,
      ) => [i === 2 ? flipByte(chunk, position < 0 ? chunk.length - 1 : position) : chunk],
    });
    const [client, server] = await connect(d);
    await client.send(text("pay 10 euros"));
    const error = await rejectsOvtp(server.receive(), "protocol", `Cannot receive: ${TAMPERED}`);
    assert.ok(error.cause instanceof DecryptError);
    client.close();
  });
}

Deno.test("SecureChannel.receive() rejects a tampered record from the server as a protocol error", async () => {
  const [client, server] = await connect(duplex({ toClient: flipAt(2, 5) }));
  await server.send(text("first"));
  await server.send(text("second"));
  assert.deepEqual(await client.receive(), text("first"));
  await rejectsOvtp(client.receive(), "protocol", `Cannot receive: ${TAMPERED}`);
  client.close();
});

Deno.test("SecureChannel.receive() rejects a replayed record", async () => {
  const [client, server] = await connect(duplex({
    toServer: (chunk, i) => i === 2 ? [chunk, chunk] : [chunk],
  }));
  await client.send(text("transfer 10"));
  assert.deepEqual(await server.receive(), text("transfer 10"));
  await rejectsOvtp(server.receive(), "protocol", `Cannot receive: ${TAMPERED}`);
  client.close();
});

Deno.test("SecureChannel.receive() rejects reordered records", async () => {
  let held: Uint8Array | undefined;
  const [client, server] = await connect(duplex({
    toServer: (chunk, i) => {
      if (i === 2) {
        held = chunk;
        return [];
      }
      return i === 3 ? [chunk, held!] : [chunk];
    },
  }));
  await client.send(text("one"));
  await client.send(text("two"));
  await rejectsOvtp(server.receive(), "protocol", `Cannot receive: ${TAMPERED}`);
  client.close();
});

Deno.test("SecureChannel.receive() rejects the record after a dropped one", async () => {
  const [client, server] = await connect(duplex({
    toServer: (chunk, i) => i === 2 ? [] : [chunk],
  }));
  await client.send(text("one"));
  await client.send(text("two"));
  await rejectsOvtp(server.receive(), "protocol", `Cannot receive: ${TAMPERED}`);
  client.close();
});

Deno.test("SecureChannel.receive() rejects a record shorter than a tag as a protocol error", async () => {
  const [client, server] = await connect(duplex({
    toServer: (chunk, i) => i === 2 ? [encodeFrame(new Uint8Array(3))] : [chunk],
  }));
  await client.send(text("one"));
  await rejectsOvtp(
    server.receive(),
    "protocol",
    "Cannot receive: Frame length 3 is outside the allowed 16..65535",
  );
  client.close();
});

Deno.test("SecureChannel.receive() rejects a stream cut inside a record as a protocol error", async () => {
  const d = duplex({ toServer: (chunk, i) => [i === 2 ? chunk.subarray(0, 10) : chunk] });
  const [client, server] = await connect(d);
  await client.send(text("a record of some length"));
  client.close();
  await rejectsOvtp(
    server.receive(),
    "protocol",
    "Cannot receive: The stream ended inside a frame of 39 bytes",
  );
});

// ---------------------------------------------------------------------------
// Tampering with the handshake
// ---------------------------------------------------------------------------

Deno.test("SecureChannel handshake with a flipped byte in message 2 fails on both sides", async () => {
  const d = duplex({ toClient: flipAt(0, 2 + 500) });
  const [client, server] = await Promise.allSettled([
    SecureChannel.initiate(d.client, { identity: ALICE }),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  await rejectsOvtp(rejection(client), "protocol", `Handshake failed: ${TAMPERED}`);
  await rejectsOvtp(rejection(server), "network", PEER_CLOSED);
  // The initiator stopped before sending message 3.
  assert.equal(d.toServer.sent.length, 1);
});

Deno.test("SecureChannel handshake with a flipped byte in message 1 fails on the initiator", async () => {
  const d = duplex({ toServer: flipAt(0, 2 + 3) });
  const [client, server] = await Promise.allSettled([
    SecureChannel.initiate(d.client, { identity: ALICE }),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  await rejectsOvtp(rejection(client), "protocol", `Handshake failed: ${TAMPERED}`);
  await rejectsOvtp(rejection(server), "network", PEER_CLOSED);
});

Deno.test("SecureChannel handshake with a flipped byte in message 3 fails on the responder", async () => {
  const d = duplex({ toServer: flipAt(1, 2 + 10) });
  const [client, server] = await Promise.allSettled([
    SecureChannel.initiate(d.client, { identity: ALICE }),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  await rejectsOvtp(rejection(server), "protocol", `Handshake failed: ${TAMPERED}`);
  // The initiator finished its part; it learns of the failure as a closed stream.
  assert.equal(client.status, "fulfilled");
  assert.equal(await client.value.receive(), null);
});

Deno.test("SecureChannel responder refuses a first message with an intent over 64 bytes", async () => {
  const d = duplex({
    toServer: (chunk, i) => {
      if (i !== 0) return [chunk];
      const longer = new Uint8Array(chunk.length - 2 + 65);
      longer.set(chunk.subarray(2));
      return [encodeFrame(longer)];
    },
  });
  const [client, server] = await Promise.allSettled([
    SecureChannel.initiate(d.client, { identity: ALICE }),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  await rejectsOvtp(
    rejection(server),
    "protocol",
    "Handshake failed: Frame length 1281 is outside the allowed 1216..1280",
  );
  await rejectsOvtp(rejection(client), "network", PEER_CLOSED);
});

Deno.test("SecureChannel carries the initiator's intent to the responder, bound to the session", async () => {
  const intent = new TextEncoder().encode("pair");
  const d = duplex();
  const [client, server] = await Promise.all([
    SecureChannel.initiate(d.client, { identity: ALICE, intent }),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  assert.deepEqual(server.intent, intent);
  assert.deepEqual(client.intent, intent);
  assert.deepEqual(client.handshakeHash, server.handshakeHash);
  client.close();
  // An intent changed on the way fails the handshake: it is hashed.
  const tampered = duplex({ toServer: flipAt(0, 2 + 1216) });
  const results = await Promise.allSettled([
    SecureChannel.initiate(tampered.client, { identity: ALICE, intent }),
    SecureChannel.respond(tampered.server, { identity: BOB }),
  ]);
  assert.equal(results[0].status, "rejected");
});

// ---------------------------------------------------------------------------
// verifyPeer and timeouts
// ---------------------------------------------------------------------------

Deno.test("SecureChannel calls verifyPeer with the peer's key on both sides", async () => {
  const seen: { side: string; key: PublicKey }[] = [];
  const [client] = await connect(
    duplex(),
    { verifyPeer: (key) => void seen.push({ side: "client", key }) },
    { verifyPeer: (key) => void seen.push({ side: "server", key }) },
  );
  assert.deepEqual(seen.map((s) => s.side).sort(), ["client", "server"]);
  assertSameKey(seen.find((s) => s.side === "client")!.key, BOB.publicKey);
  assertSameKey(seen.find((s) => s.side === "server")!.key, ALICE.publicKey);
  client.close();
});

Deno.test("SecureChannel verifyPeer throwing aborts the initiator before it sends its identity", async () => {
  const d = duplex();
  const refusal = new OvtpError("trust", "The host key is not the one in known_hosts");
  const [client, server] = await Promise.allSettled([
    SecureChannel.initiate(d.client, {
      identity: ALICE,
      verifyPeer: () => {
        throw refusal;
      },
    }),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  // The verifier's own error comes out unchanged.
  await assert.rejects(rejection(client), (error) => error === refusal);
  await rejectsOvtp(rejection(server), "network", PEER_CLOSED);
  // Message 3, which carries the initiator's static key and proof, was never written.
  assert.equal(d.toServer.sent.length, 1);
});

Deno.test("SecureChannel verifyPeer rejecting asynchronously aborts the initiator too", async () => {
  const d = duplex();
  const [client] = await Promise.allSettled([
    SecureChannel.initiate(d.client, {
      identity: ALICE,
      verifyPeer: () => Promise.reject(new OvtpError("trust", "Unknown host")),
    }),
    SecureChannel.respond(d.server, { identity: BOB }).catch(() => {}),
  ]);
  await rejectsOvtp(rejection(client), "trust", "Unknown host");
});

Deno.test("SecureChannel verifyPeer throwing on the responder aborts it and closes the stream", async () => {
  const d = duplex();
  const [client, server] = await Promise.allSettled([
    SecureChannel.initiate(d.client, { identity: ALICE }),
    SecureChannel.respond(d.server, {
      identity: BOB,
      verifyPeer: () => {
        throw new OvtpError("trust", "Not in authorized_keys");
      },
    }),
  ]);
  await rejectsOvtp(rejection(server), "trust", "Not in authorized_keys");
  assert.equal(client.status, "fulfilled");
  assert.equal(await client.value.receive(), null);
});

Deno.test("SecureChannel responder times out when the peer sends nothing", async () => {
  const d = duplex();
  await rejectsOvtp(
    SecureChannel.respond(d.server, { identity: BOB, handshakeTimeoutMs: 100 }),
    "network",
    "The handshake timed out after 100 ms",
  );
});

Deno.test("SecureChannel initiator times out when the peer never answers", async () => {
  const d = duplex();
  await rejectsOvtp(
    SecureChannel.initiate(d.client, { identity: ALICE, handshakeTimeoutMs: 100 }),
    "network",
    "The handshake timed out after 100 ms",
  );
  assert.equal(d.toServer.sent.length, 1);
});

Deno.test("SecureChannel reports a peer that closes after message 1 as a network error", async () => {
  const d = duplex();
  const peer = (async () => {
    assert.equal((await new FrameReader(d.server.readable).read())?.length, 1216);
    d.server.close();
  })();
  await rejectsOvtp(SecureChannel.initiate(d.client, { identity: ALICE }), "network", PEER_CLOSED);
  await peer;
});

Deno.test("SecureChannel reports a stream closed before message 1 as a network error", async () => {
  const d = duplex();
  d.server.close();
  await rejectsOvtp(
    SecureChannel.initiate(d.client, { identity: ALICE }),
    "network",
    "Handshake failed: the connection was closed",
  );
});

// ---------------------------------------------------------------------------
// A hand-driven peer: checks the identity proof's wire format and refusals
// ---------------------------------------------------------------------------

const PROOF_CONTEXT = text("ovtp/1 identity proof");

async function ed25519Sign(seed: Uint8Array, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const pkcs8 = new Uint8Array([
    ...[
      0x30,
      0x2e,
      0x02,
      0x01,
      0x00,
      0x30,
      0x05,
      0x06,
      0x03,
      0x2b,
      0x65,
      0x70,
      0x04,
      0x22,
      0x04,
      0x20,
    ],
    ...seed,
  ]);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, data));
}

/** The proof: Ed25519 public key ‖ signature over context ‖ handshake hash. */
async function proof(identity: Identity, h: Uint8Array): Promise<Uint8Array> {
  const signature = await ed25519Sign(
    identity.ed25519Private,
    new Uint8Array([...PROOF_CONTEXT, ...h]),
  );
  return new Uint8Array([...identity.publicKey.ed25519, ...signature]);
}

/**
 * Runs the initiator's side by hand against a real responder; `makeProof`
 * gets the handshake hash before message 3 and returns message 3's payload.
 * Returns the completed state and the stream's reader, to go on by hand.
 */
async function handDrivenInitiator(
  stream: ByteStream,
  identity: Identity,
  makeProof: (h: Uint8Array) => Promise<Uint8Array>,
): Promise<{ state: HandshakeState; reader: FrameReader }> {
  const reader = new FrameReader(stream.readable);
  const writer = stream.writable.getWriter();
  const state = await HandshakeState.create({
    pattern: XX_HFS,
    initiator: true,
    cipher: "ChaChaPoly",
    prologue: PROLOGUE,
    staticKey: { privateKey: identity.x25519Private, publicKey: identity.publicKey.x25519 },
  });
  await writer.write(encodeFrame(await state.writeMessage(new Uint8Array(0))));
  const h = state.handshakeHash;
  const payload = await state.readMessage((await reader.read())!);
  // The responder's proof signs the hash as it was before message 2.
  assert.equal(payload.length, 96);
  assert.deepEqual(payload.subarray(0, 32), BOB.publicKey.ed25519);
  assert.deepEqual(payload, await proof(BOB, h));
  await writer.write(encodeFrame(await state.writeMessage(await makeProof(state.handshakeHash))));
  return { state, reader };
}

Deno.test("SecureChannel responder accepts a hand-made identity proof over the hash before message 3", async () => {
  const d = duplex();
  const [, server] = await Promise.all([
    handDrivenInitiator(d.client, ALICE, (h) => proof(ALICE, h)),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  assertSameKey(server.peer, ALICE.publicKey);
  server.close();
});

Deno.test("SecureChannel spends nonce 0 of each direction on the bulk key, the keystream of 32 zero bytes", async () => {
  const d = duplex();
  const [{ state, reader }, server] = await Promise.all([
    handDrivenInitiator(d.client, ALICE, (h) => proof(ALICE, h)),
    SecureChannel.respond(d.server, { identity: BOB }),
  ]);
  const bulk = Uint8Array.from({ length: 100_000 }, (_, i) => i % 251);
  await server.send(text("first"), [bulk]);
  const record = (await reader.read())!;
  const empty = new Uint8Array(0);
  // Not at nonce 0: that one went to the bulk key ...
  assert.throws(() => state.split().receive.decryptWithAd(empty, record), DecryptError);
  // ... which is ENCRYPT(k2, 0, empty, zeros(32)) cut to 32 bytes (docs/protocol.md 5.1).
  const { receive } = state.split();
  const bulkKey = receive.encryptWithAd(empty, new Uint8Array(32)).slice(0, 32);
  assert.deepEqual(receive.decryptWithAd(empty, record), text("first"));
  const sealed = await reader.readExact(bulk.length + 16);
  assert.deepEqual(CHACHA_POLY.open(bulkKey, 0, empty, sealed), bulk);
  server.close();
});

for (
  const [label, makeProof, message] of [
    [
      "a signature over another hash",
      (h: Uint8Array) => proof(ALICE, h.map((b) => b ^ 0xff)),
      "The peer's identity proof has a bad signature",
    ],
    [
      "someone else's Ed25519 key",
      async (h: Uint8Array) => {
        const p = await proof(ALICE, h);
        p.set(BOB.publicKey.ed25519, 0);
        return p;
      },
      "The peer's identity proof has a bad signature",
    ],
    [
      "a flipped signature byte",
      async (h: Uint8Array) => {
        const p = await proof(ALICE, h);
        p[95] ^= 1;
        return p;
      },
      "The peer's identity proof has a bad signature",
    ],
    [
      "no proof",
      () => Promise.resolve(new Uint8Array(0)),
      "Identity proof of 0 bytes, expected 96",
    ],
    [
      "a proof with a byte too many",
      async (h: Uint8Array) => new Uint8Array([...(await proof(ALICE, h)), 0]),
      "Identity proof of 97 bytes, expected 96",
    ],
  ] as const
) {
  Deno.test(`SecureChannel responder refuses an identity proof with ${label}`, async () => {
    const d = duplex();
    const [, server] = await Promise.allSettled([
      handDrivenInitiator(d.client, ALICE, makeProof),
      SecureChannel.respond(d.server, {
        identity: BOB,
        verifyPeer: () => assert.fail("verifyPeer called"),
      }),
    ]);
    await rejectsOvtp(rejection(server), "protocol", `Handshake failed: ${message}`);
  });
}

Deno.test("SecureChannel initiator refuses a responder using another prologue", async () => {
  const d = duplex();
  const responder = (async () => {
    const reader = new FrameReader(d.server.readable);
    const writer = d.server.writable.getWriter();
    const state = await HandshakeState.create({
      pattern: XX_HFS,
      initiator: false,
      cipher: "ChaChaPoly",
      prologue: text("ovtp/2"),
      staticKey: { privateKey: BOB.x25519Private, publicKey: BOB.publicKey.x25519 },
    });
    await state.readMessage((await reader.read())!);
    const h = state.handshakeHash;
    await writer.write(encodeFrame(await state.writeMessage(await proof(BOB, h))));
  })();
  await rejectsOvtp(
    SecureChannel.initiate(d.client, { identity: ALICE }),
    "protocol",
    `Handshake failed: ${TAMPERED}`,
  );
  await responder;
});

Deno.test("SecureChannel uses a stream's own read() and write() and never makes its streams", async () => {
  // A Deno.Conn whose readable and writable must not be touched: making
  // them costs an idle connection about 13 KiB more.
  const untouchable = (conn: Deno.Conn): ByteStream => ({
    get readable(): ReadableStream<Uint8Array> {
      throw new Error("readable was used");
    },
    get writable(): WritableStream<Uint8Array> {
      throw new Error("writable was used");
    },
    read: (p) => conn.read(p),
    write: (p) => conn.write(p),
    close: () => conn.close(),
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
    listener.accept(),
  ]);
  listener.close();
  const [a, b] = await Promise.all([
    SecureChannel.initiate(untouchable(client), { identity: await generateIdentity() }),
    SecureChannel.respond(untouchable(server), { identity: await generateIdentity() }),
  ]);
  const big = new Uint8Array(MAX_BULK_PLAINTEXT).map((_, i) => i & 0xff);
  const sent = a.send(new Uint8Array([1, 2, 3]), [big]);
  assert.deepEqual(await b.receive(), new Uint8Array([1, 2, 3]));
  assert.deepEqual(await b.receiveBulk(big.length), big);
  await sent;
  a.close();
  assert.equal(await b.receive(), null);
  b.close();
});
