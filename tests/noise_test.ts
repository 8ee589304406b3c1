import assert from "node:assert/strict";
import { type CipherName, DecryptError } from "../lib/channel/noise/aead.ts";
import type { CipherState } from "../lib/channel/noise/cipher_state.ts";
import {
  type HandshakeResult,
  HandshakeState,
  type KeyPair,
  keyPairFromPrivate,
  protocolName,
} from "../lib/channel/noise/handshake_state.ts";
import { type HandshakePattern, XX, XX_HFS } from "../lib/channel/noise/patterns.ts";
import { hex, ignoredForMissingVectors, loadJsonVectors } from "./_vectors.ts";
import { testEachBackend } from "./_backends.ts";

const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------
// Known-answer vectors (cacophony and snow)
// ---------------------------------------------------------------------------

interface NoiseVector {
  protocol_name: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral: string;
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
}

// XX is what ovtp builds on. The other interactive patterns without
// pre-messages are defined here from the Noise specification (section 7.5)
// so that the same token loop is also checked on `se`, on `s` in the first
// message and on a pattern without static keys.
const PATTERNS: Record<string, HandshakePattern> = {
  XX,
  NN: { name: "NN", hybrid: false, messages: [["e"], ["e", "ee"]] },
  NX: { name: "NX", hybrid: false, messages: [["e"], ["e", "ee", "s", "es"]] },
  XN: { name: "XN", hybrid: false, messages: [["e"], ["e", "ee"], ["s", "se"]] },
  IX: { name: "IX", hybrid: false, messages: [["e", "s"], ["e", "ee", "se", "s", "es"]] },
};
const NAME = /^Noise_(XX|NN|NX|XN|IX)_25519_(AESGCM|ChaChaPoly)_SHA256$/;

const VECTOR_FILES = [
  { label: "cacophony", path: "noise/cacophony-25519-aesgcm-chachapoly-sha256.json", expected: 10 },
  {
    label: "snow",
    path: "noise/snow-25519-aesgcm-chachapoly-sha256-NN-XX-IK-XK-KK.json",
    expected: 4,
  },
];

async function keyPairOrDefault(privateHex: string | undefined): Promise<KeyPair> {
  // Patterns without a static key still need one in the options; it is never used.
  return await keyPairFromPrivate(hex(privateHex ?? "01".repeat(32)));
}

async function runVector(vector: NoiseVector): Promise<void> {
  const [, patternName, cipher] = NAME.exec(vector.protocol_name)!;
  const pattern = PATTERNS[patternName];
  assert.equal(protocolName(pattern, cipher as CipherName), vector.protocol_name);
  const initiatorStatic = await keyPairOrDefault(vector.init_static);
  const responderStatic = await keyPairOrDefault(vector.resp_static);
  const initiator = await HandshakeState.create({
    pattern,
    initiator: true,
    cipher: cipher as CipherName,
    staticKey: initiatorStatic,
    prologue: hex(vector.init_prologue),
    ephemeralKey: await keyPairFromPrivate(hex(vector.init_ephemeral)),
  });
  const responder = await HandshakeState.create({
    pattern,
    initiator: false,
    cipher: cipher as CipherName,
    staticKey: responderStatic,
    prologue: hex(vector.resp_prologue),
    ephemeralKey: await keyPairFromPrivate(hex(vector.resp_ephemeral)),
  });

  const handshakeLength = pattern.messages.length;
  assert.ok(
    vector.messages.length > handshakeLength,
    "the vector has transport messages after the handshake",
  );
  for (let i = 0; i < handshakeLength; i++) {
    const { payload, ciphertext } = vector.messages[i];
    const [writer, reader] = i % 2 === 0 ? [initiator, responder] : [responder, initiator];
    const written = await writer.writeMessage(hex(payload));
    assert.deepEqual(written, hex(ciphertext), `handshake message ${i}`);
    assert.deepEqual(await reader.readMessage(written), hex(payload), `payload ${i}`);
  }
  assert.ok(initiator.isComplete && responder.isComplete);

  const i = await initiator.split();
  const r = await responder.split();
  assert.deepEqual(i.handshakeHash, r.handshakeHash);
  if (vector.handshake_hash !== undefined) {
    assert.deepEqual(i.handshakeHash, hex(vector.handshake_hash), "handshake_hash");
  }
  if (vector.init_static !== undefined && pattern.messages.some((m) => m.includes("s"))) {
    assert.deepEqual(r.remoteStaticKey, initiatorStatic.publicKey);
  }
  if (vector.resp_static !== undefined) {
    assert.deepEqual(i.remoteStaticKey, responderStatic.publicKey);
  }

  // After the handshake the messages keep alternating: an even index is sent
  // by the initiator, an odd one by the responder.
  for (let n = handshakeLength; n < vector.messages.length; n++) {
    const { payload, ciphertext } = vector.messages[n];
    const [send, receive] = n % 2 === 0 ? [i.send, r.receive] : [r.send, i.receive];
    const sealed = send.encryptWithAd(EMPTY, hex(payload));
    assert.deepEqual(sealed, hex(ciphertext), `transport message ${n}`);
    assert.deepEqual(receive.decryptWithAd(EMPTY, sealed), hex(payload), `transport payload ${n}`);
  }
}

for (const file of VECTOR_FILES) {
  const loaded = loadJsonVectors<{ vectors: NoiseVector[] }>(file.path);
  if (loaded.skipReason !== undefined) {
    ignoredForMissingVectors(`Noise ${file.label} vectors`, loaded.skipReason);
    continue;
  }
  const vectors = loaded.data.vectors.filter((v) => NAME.test(v.protocol_name));

  Deno.test(`Noise ${file.label} vectors include every supported XX/NN/NX/XN/IX cipher`, () => {
    // A filtered or renamed file must not let the tests below pass by running nothing.
    assert.equal(vectors.length, file.expected);
    for (const cipher of ["AESGCM", "ChaChaPoly"]) {
      assert.ok(vectors.some((v) => v.protocol_name === `Noise_XX_25519_${cipher}_SHA256`));
    }
  });

  for (const vector of vectors) {
    testEachBackend(
      `HandshakeState matches the ${file.label} vector ${vector.protocol_name} byte for byte, handshake and transport`,
      () => runVector(vector),
    );
  }
}

// ---------------------------------------------------------------------------
// XXhfs between two HandshakeStates
// ---------------------------------------------------------------------------

// Fixed X25519 keys (the cacophony XX vector's) so that tampering with an
// ephemeral key always has the same effect; the ML-KEM parts stay random.
const INIT_STATIC = "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
const INIT_EPHEMERAL = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
const RESP_STATIC = "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
const RESP_EPHEMERAL = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";

// Message layout of XXhfs with empty payloads, in bytes.
const E = 32;
const E1 = 1184; // message 1 has no key yet: the KEM public key is sent in clear, without a tag
const EKEM1 = 1088 + 16; // KEM ciphertext and tag
const S = 32 + 16; // static key and tag
const TAG = 16; // the (empty) payload's tag

async function hfsPair(
  cipher: CipherName = "ChaChaPoly",
): Promise<{ initiator: HandshakeState; responder: HandshakeState; initiatorStatic: KeyPair }> {
  const initiatorStatic = await keyPairFromPrivate(hex(INIT_STATIC));
  const initiator = await HandshakeState.create({
    pattern: XX_HFS,
    initiator: true,
    cipher,
    staticKey: initiatorStatic,
    prologue: new TextEncoder().encode("ovtp tests"),
    ephemeralKey: await keyPairFromPrivate(hex(INIT_EPHEMERAL)),
  });
  const responder = await HandshakeState.create({
    pattern: XX_HFS,
    initiator: false,
    cipher,
    staticKey: await keyPairFromPrivate(hex(RESP_STATIC)),
    prologue: new TextEncoder().encode("ovtp tests"),
    ephemeralKey: await keyPairFromPrivate(hex(RESP_EPHEMERAL)),
  });
  return { initiator, responder, initiatorStatic };
}

function flipped(message: Uint8Array, position: number): Uint8Array {
  const out = message.slice();
  out[position] ^= 0x01;
  return out;
}

async function assertFailedState(state: HandshakeState): Promise<void> {
  const failed = { name: "HandshakeError", message: "The handshake has failed" };
  await assert.rejects(state.writeMessage(EMPTY), failed);
  await assert.rejects(state.readMessage(new Uint8Array(64)), failed);
  assert.throws(() => state.split(), {
    name: "HandshakeError",
    message: "Cannot split: the handshake is not complete",
  });
}

async function assertRejectsDecrypt(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DecryptError, `expected DecryptError, got ${error}`);
    assert.equal(error.message, "Decryption failed: message authentication failed");
    return true;
  });
}

function assertTransportWorks(a: HandshakeResult, b: HandshakeResult): void {
  for (const [from, to] of [[a.send, b.receive], [b.send, a.receive]] as CipherState[][]) {
    for (const text of ["first", "", "third"]) {
      const plaintext = new TextEncoder().encode(text);
      const sealed = from.encryptWithAd(EMPTY, plaintext);
      assert.equal(sealed.length, plaintext.length + TAG);
      assert.deepEqual(to.decryptWithAd(EMPTY, sealed), plaintext);
    }
  }
}

for (const cipher of ["ChaChaPoly", "AESGCM"] as const) {
  Deno.test(`XXhfs (${cipher}) completes with messages of 1216, 1200 and 64 bytes and equal hashes`, async () => {
    const { initiator, responder, initiatorStatic } = await hfsPair(cipher);
    const m1 = await initiator.writeMessage(EMPTY);
    assert.equal(m1.length, 1216);
    assert.deepEqual(await responder.readMessage(m1), EMPTY);
    const m2 = await responder.writeMessage(EMPTY);
    assert.equal(m2.length, 1200);
    assert.deepEqual(await initiator.readMessage(m2), EMPTY);
    const m3 = await initiator.writeMessage(EMPTY);
    assert.equal(m3.length, 64);
    assert.deepEqual(await responder.readMessage(m3), EMPTY);

    const i = await initiator.split();
    const r = await responder.split();
    assert.equal(i.handshakeHash.length, 32);
    assert.deepEqual(i.handshakeHash, r.handshakeHash);
    assert.deepEqual(r.remoteStaticKey, initiatorStatic.publicKey);
    assert.deepEqual(i.remoteStaticKey, (await keyPairFromPrivate(hex(RESP_STATIC))).publicKey);
    assertTransportWorks(i, r);
  });
}

Deno.test("XXhfs carries non-empty payloads in every message", async () => {
  const { initiator, responder } = await hfsPair();
  const payloads = ["one", "two", "three"].map((t) => new TextEncoder().encode(t));
  const m1 = await initiator.writeMessage(payloads[0]);
  assert.equal(m1.length, 1216 + 3);
  assert.deepEqual(await responder.readMessage(m1), payloads[0]);
  const m2 = await responder.writeMessage(payloads[1]);
  assert.equal(m2.length, 1200 + 3);
  assert.deepEqual(await initiator.readMessage(m2), payloads[1]);
  const m3 = await initiator.writeMessage(payloads[2]);
  assert.equal(m3.length, 64 + 5);
  assert.deepEqual(await responder.readMessage(m3), payloads[2]);
  assertTransportWorks(await initiator.split(), await responder.split());
});

Deno.test("XXhfs handshakes with different prologues fail on the initiator's read of message 2", async () => {
  const { initiator } = await hfsPair();
  const responder = await HandshakeState.create({
    pattern: XX_HFS,
    initiator: false,
    cipher: "ChaChaPoly",
    staticKey: await keyPairFromPrivate(hex(RESP_STATIC)),
    prologue: new TextEncoder().encode("other prologue"),
  });
  await responder.readMessage(await initiator.writeMessage(EMPTY));
  await assertRejectsDecrypt(initiator.readMessage(await responder.writeMessage(EMPTY)));
  await assertFailedState(initiator);
});

// Message 1 is e ‖ e1 ‖ payload, all in clear: the responder cannot notice a
// change, but its transcript hash then differs from the initiator's, so the
// initiator's first decryption in message 2 fails.
const MESSAGE_1_FLIPS = [
  { where: "e", position: 0 },
  { where: "e (last byte)", position: E - 1 },
  // The last 32 bytes of an ML-KEM-768 encapsulation key are the seed rho:
  // any value is a valid key, so the responder's encapsulation succeeds.
  { where: "e1 (seed rho)", position: E + E1 - 1 },
];
for (const { where, position } of MESSAGE_1_FLIPS) {
  Deno.test(`XXhfs message 1 with a flipped byte in ${where} makes the initiator's read of message 2 throw DecryptError`, async () => {
    const { initiator, responder } = await hfsPair();
    const m1 = flipped(await initiator.writeMessage(EMPTY), position);
    assert.deepEqual(await responder.readMessage(m1), EMPTY);
    const m2 = await responder.writeMessage(EMPTY);
    await assertRejectsDecrypt(initiator.readMessage(m2));
    await assertFailedState(initiator);
  });
}

Deno.test("XXhfs message 1 with a flipped byte in the e1 coefficients makes the initiator's read of message 2 throw DecryptError", async () => {
  const { initiator, responder } = await hfsPair();
  const m1 = await initiator.writeMessage(EMPTY);
  // Two 12-bit coefficients per 3 bytes. Flipping bit 0 of the first byte of a
  // group keeps the first coefficient below q = 3329 unless it is 3328.
  let position = E;
  while ((m1[position] | ((m1[position + 1] & 0x0f) << 8)) === 3328) position += 3;
  assert.deepEqual(await responder.readMessage(flipped(m1, position)), EMPTY);
  await assertRejectsDecrypt(initiator.readMessage(await responder.writeMessage(EMPTY)));
  await assertFailedState(initiator);
});

Deno.test("XXhfs message 1 with an out-of-range e1 coefficient makes the responder's write of message 2 throw OperationError", async () => {
  const { initiator, responder } = await hfsPair();
  const m1 = (await initiator.writeMessage(EMPTY)).slice();
  m1.fill(0xff, E, E + 3); // coefficients 4095 ≥ q: not a valid encapsulation key (FIPS 203 7.2)
  assert.deepEqual(await responder.readMessage(m1), EMPTY);
  await assert.rejects(responder.writeMessage(EMPTY), {
    name: "OperationError",
    message: "Encapsulation failed",
  });
  await assertFailedState(responder);
});

Deno.test("XXhfs message 1 with a low-order e makes the responder's write of message 2 throw OperationError", async () => {
  const { initiator, responder } = await hfsPair();
  const m1 = (await initiator.writeMessage(EMPTY)).slice();
  m1.fill(0, 0, E); // the all-zero point: X25519 gives an all-zero shared secret
  assert.deepEqual(await responder.readMessage(m1), EMPTY);
  await assert.rejects(responder.writeMessage(EMPTY), {
    name: "OperationError",
    message: "X25519 produced the all-zero value (a low-order public key)",
  });
  await assertFailedState(responder);
});

const MESSAGE_2_FLIPS = [
  { where: "e", position: 0 },
  { where: "ekem1 ciphertext", position: E + 500 },
  { where: "ekem1 tag", position: E + EKEM1 - 1 },
  { where: "s", position: E + EKEM1 + 3 },
  { where: "s tag", position: E + EKEM1 + S - 1 },
  { where: "payload tag", position: E + EKEM1 + S + TAG - 1 },
];
for (const { where, position } of MESSAGE_2_FLIPS) {
  Deno.test(`XXhfs message 2 with a flipped byte in ${where} is refused by the initiator with DecryptError`, async () => {
    const { initiator, responder } = await hfsPair();
    await responder.readMessage(await initiator.writeMessage(EMPTY));
    const m2 = await responder.writeMessage(EMPTY);
    assert.equal(m2.length, E + EKEM1 + S + TAG);
    await assertRejectsDecrypt(initiator.readMessage(flipped(m2, position)));
    await assertFailedState(initiator);
  });
}

const MESSAGE_3_FLIPS = [
  { where: "s", position: 0 },
  { where: "s tag", position: S - 1 },
  { where: "payload tag", position: S + TAG - 1 },
];
for (const { where, position } of MESSAGE_3_FLIPS) {
  Deno.test(`XXhfs message 3 with a flipped byte in ${where} is refused by the responder with DecryptError`, async () => {
    const { initiator, responder } = await hfsPair();
    await responder.readMessage(await initiator.writeMessage(EMPTY));
    await initiator.readMessage(await responder.writeMessage(EMPTY));
    const m3 = await initiator.writeMessage(EMPTY);
    await assertRejectsDecrypt(responder.readMessage(flipped(m3, position)));
    await assertFailedState(responder);
  });
}

Deno.test("XXhfs truncated messages are refused with HandshakeError naming the missing part", async () => {
  const cases = [
    { message: 1, length: 0, part: "ephemeral key" },
    { message: 1, length: E - 1, part: "ephemeral key" },
    { message: 1, length: E + E1 - 1, part: "KEM public key" },
    { message: 2, length: E - 1, part: "ephemeral key" },
    { message: 2, length: E + EKEM1 - 1, part: "KEM ciphertext" },
    { message: 2, length: E + EKEM1 + S - 1, part: "static key" },
    { message: 3, length: S - 1, part: "static key" },
  ];
  for (const { message, length, part } of cases) {
    const { initiator, responder } = await hfsPair();
    let m = await initiator.writeMessage(EMPTY);
    let reader = responder;
    if (message >= 2) {
      await responder.readMessage(m);
      m = await responder.writeMessage(EMPTY);
      reader = initiator;
    }
    if (message === 3) {
      await initiator.readMessage(m);
      m = await initiator.writeMessage(EMPTY);
      reader = responder;
    }
    await assert.rejects(reader.readMessage(m.subarray(0, length)), {
      name: "HandshakeError",
      message: `Handshake message too short for the ${part}`,
    }, `message ${message} cut to ${length} bytes`);
    await assertFailedState(reader);
  }
});

Deno.test("XXhfs message 2 cut inside the payload tag is refused with DecryptError", async () => {
  const { initiator, responder } = await hfsPair();
  await responder.readMessage(await initiator.writeMessage(EMPTY));
  const m2 = await responder.writeMessage(EMPTY);
  await assertRejectsDecrypt(initiator.readMessage(m2.subarray(0, m2.length - 1)));
  await assertFailedState(initiator);
});

Deno.test("XXhfs message 3 with a byte appended is refused with DecryptError", async () => {
  const { initiator, responder } = await hfsPair();
  await responder.readMessage(await initiator.writeMessage(EMPTY));
  await initiator.readMessage(await responder.writeMessage(EMPTY));
  const m3 = await initiator.writeMessage(EMPTY);
  const longer = new Uint8Array(m3.length + 1);
  longer.set(m3);
  await assertRejectsDecrypt(responder.readMessage(longer));
  await assertFailedState(responder);
});

Deno.test("HandshakeState refuses out-of-turn writes and reads and stays usable", async () => {
  const { initiator, responder } = await hfsPair();
  await assert.rejects(responder.writeMessage(EMPTY), {
    name: "HandshakeError",
    message: "Cannot write: it is the peer's turn",
  });
  await assert.rejects(initiator.readMessage(new Uint8Array(1216)), {
    name: "HandshakeError",
    message: "Cannot read: it is our turn",
  });
  const m1 = await initiator.writeMessage(EMPTY);
  await assert.rejects(initiator.writeMessage(EMPTY), {
    name: "HandshakeError",
    message: "Cannot write: it is the peer's turn",
  });
  await responder.readMessage(m1);
  await assert.rejects(responder.readMessage(m1), {
    name: "HandshakeError",
    message: "Cannot read: it is our turn",
  });
  // The refused calls changed nothing: the handshake still completes.
  await initiator.readMessage(await responder.writeMessage(EMPTY));
  await responder.readMessage(await initiator.writeMessage(EMPTY));
  assertTransportWorks(await initiator.split(), await responder.split());
});

Deno.test("HandshakeState refuses messages after completion and split before completion", async () => {
  const { initiator, responder } = await hfsPair();
  assert.throws(() => initiator.split(), {
    name: "HandshakeError",
    message: "Cannot split: the handshake is not complete",
  });
  await responder.readMessage(await initiator.writeMessage(EMPTY));
  await initiator.readMessage(await responder.writeMessage(EMPTY));
  await responder.readMessage(await initiator.writeMessage(EMPTY));
  for (const state of [initiator, responder]) {
    await assert.rejects(state.writeMessage(EMPTY), {
      name: "HandshakeError",
      message: "The handshake is already complete",
    });
    await assert.rejects(state.readMessage(new Uint8Array(64)), {
      name: "HandshakeError",
      message: "The handshake is already complete",
    });
  }
});

Deno.test("HandshakeState refuses to read or write a message above 65535 bytes", async () => {
  const { initiator, responder } = await hfsPair();
  await assert.rejects(responder.readMessage(new Uint8Array(65536)), {
    name: "HandshakeError",
    message: "Handshake message exceeds the Noise limit",
  });
  await assertFailedState(responder);
  // 1216 bytes of tokens + 64320 of payload = 65536.
  await assert.rejects(initiator.writeMessage(new Uint8Array(65536 - 1216)), {
    name: "HandshakeError",
    message: "Cannot write handshake message: 65536 bytes exceeds the Noise limit",
  });
  await assertFailedState(initiator);
});

Deno.test("HandshakeState writes a message of exactly 65535 bytes", async () => {
  const { initiator, responder } = await hfsPair();
  const payload = new Uint8Array(65535 - 1216).fill(7);
  const m1 = await initiator.writeMessage(payload);
  assert.equal(m1.length, 65535);
  assert.deepEqual(await responder.readMessage(m1), payload);
});

Deno.test("XXhfs handshakes with fresh ephemeral keys give different hashes and keys each time", async () => {
  const run = async () => {
    const a = await HandshakeState.create({
      pattern: XX_HFS,
      initiator: true,
      cipher: "ChaChaPoly",
      staticKey: await keyPairFromPrivate(hex(INIT_STATIC)),
    });
    const b = await HandshakeState.create({
      pattern: XX_HFS,
      initiator: false,
      cipher: "ChaChaPoly",
      staticKey: await keyPairFromPrivate(hex(RESP_STATIC)),
    });
    await b.readMessage(await a.writeMessage(EMPTY));
    await a.readMessage(await b.writeMessage(EMPTY));
    await b.readMessage(await a.writeMessage(EMPTY));
    return [await a.split(), await b.split()];
  };
  const [a1] = await run();
  const [a2, b2] = await run();
  assert.notDeepEqual(a1.handshakeHash, a2.handshakeHash);
  // A record sealed in one session does not open in another.
  const sealed = a1.send.encryptWithAd(EMPTY, new Uint8Array([1, 2, 3]));
  assert.throws(() => b2.receive.decryptWithAd(EMPTY, sealed), {
    name: "DecryptError",
    message: "Decryption failed: message authentication failed",
  });
});
