import assert from "node:assert/strict";
import { concat, utf8 } from "../lib/bytes.ts";
import { ed25519Sign } from "../lib/crypto/mod.ts";
import {
  type EnvelopeFailure,
  openEnvelope,
  parseEnvelope,
  ReplayGuard,
  sealEnvelope,
} from "../lib/envelope/envelope.ts";
import { generateIdentity, type Identity, publicKeyBytes } from "../lib/identity/keys.ts";

const ROOM = "room:ops";
const people = await Promise.all(Array.from({ length: 50 }, () => generateIdentity()));
const [alice, bob, carol] = people;
const outsider = await generateIdentity();
const body = utf8("the launch code is 0000");

// Offsets in an envelope for two recipients (docs/protocol.md, envelope layout).
const SENDER = 4;
const TIMESTAMP = SENDER + 64;
const CONTEXT = TIMESTAMP + 8 + 16 + 2;
const STANZAS = CONTEXT + ROOM.length + 2;
const WRAPPED = STANZAS + 64; // first recipient's wrapped key

async function sealed(recipients = [bob, carol], options = {}) {
  return await sealEnvelope(alice, recipients.map((p) => p.publicKey), body, {
    context: ROOM,
    ...options,
  });
}

async function assertRefused(
  envelope: Uint8Array,
  reader: Identity,
  reason: EnvelopeFailure,
  options: Partial<Parameters<typeof openEnvelope>[2]> = {},
) {
  await assert.rejects(openEnvelope(envelope, reader, { context: ROOM, ...options }), (error) => {
    assert.equal((error as { reason?: string }).reason, reason, String(error));
    return true;
  });
}

function flip(envelope: Uint8Array, at: number): Uint8Array {
  const copy = envelope.slice();
  copy[at] ^= 0x01;
  return copy;
}

/** What a relay that owns `forger` could do: rewrite the sender and sign again. */
async function resign(envelope: Uint8Array, forger: Identity, edit = (b: Uint8Array) => b) {
  const copy = edit(envelope.slice(0, envelope.length - 64));
  copy.set(publicKeyBytes(forger.publicKey), SENDER);
  const signature = await ed25519Sign(
    forger.ed25519Private,
    concat(utf8("ovtp envelope v1 signature\0"), copy),
  );
  return concat(copy, signature);
}

Deno.test("an envelope for one, two and fifty recipients opens for each of them", async () => {
  for (const count of [1, 2, 50]) {
    const recipients = people.slice(0, count);
    const envelope = await sealed(recipients);
    for (const reader of recipients) {
      const opened = await openEnvelope(envelope, reader, { context: ROOM });
      assert.deepEqual(opened.body, body);
      assert.deepEqual(opened.sender, alice.publicKey);
      assert.equal(opened.context, ROOM);
      assert.equal(opened.recipients.length, count);
      assert.match(opened.messageId, /^[0-9a-f]{32}$/);
    }
  }
});

Deno.test("parseEnvelope() reads the routing data without any key", async () => {
  const envelope = await sealed();
  const header = parseEnvelope(envelope);
  assert.deepEqual(header.sender, alice.publicKey);
  assert.equal(header.context, ROOM);
  assert.deepEqual(header.recipients, [bob.publicKey.x25519, carol.publicKey.x25519]);
  assert.equal(header.bodyLength, body.length + 16);
});

Deno.test("a non-recipient cannot open an envelope", async () => {
  await assertRefused(await sealed(), outsider, "not-recipient");
});

Deno.test("a flipped byte anywhere signed is refused as a bad signature", async () => {
  const envelope = await sealed();
  const places: [string, number][] = [
    ["sender", SENDER + 40],
    ["timestamp", TIMESTAMP + 7],
    ["room", CONTEXT + 5],
    ["recipient key", STANZAS + 3],
    ["wrapped key", WRAPPED + 10],
    ["body", envelope.length - 64 - 5],
    ["signature", envelope.length - 1],
  ];
  for (const [what, at] of places) {
    await assert.rejects(
      openEnvelope(flip(envelope, at), bob, { context: ROOM }),
      (e) => (e as { reason?: string }).reason === "signature",
      what,
    );
  }
});

Deno.test("an envelope is refused in another room", async () => {
  await assertRefused(await sealed(), bob, "context", { context: "room:dev" });
});

Deno.test("an envelope that is too old or dated ahead is refused", async () => {
  const day = 24 * 3600_000;
  await assertRefused(await sealed([bob], { timestamp: Date.now() - 31 * day }), bob, "expired");
  await assertRefused(await sealed([bob], { timestamp: Date.now() + day }), bob, "future");
});

Deno.test("a replayed message id is refused", async () => {
  const envelope = await sealed();
  const replay = new ReplayGuard();
  await openEnvelope(envelope, bob, { context: ROOM, replay });
  await assertRefused(envelope, bob, "replay", { replay });
});

Deno.test("a relay that re-signs a message as itself cannot make it open", async () => {
  const forged = await resign(await sealed(), outsider);
  // The signature is now valid for the forger, but the wrapped key was bound
  // to the real sender.
  await assertRefused(forged, bob, "wrapped-key");
});

Deno.test("a relay that drops a recipient is caught by the signature", async () => {
  const envelope = await sealed();
  const dropped = concat(
    envelope.subarray(0, STANZAS - 2),
    new Uint8Array([0, 1]),
    envelope.subarray(STANZAS + 112),
  );
  await assertRefused(dropped, bob, "signature");
});

Deno.test("a truncated or garbled envelope is malformed", async () => {
  const envelope = await sealed();
  await assertRefused(envelope.subarray(0, envelope.length - 1), bob, "malformed");
  await assertRefused(envelope.subarray(0, 50), bob, "malformed");
  await assertRefused(concat(envelope, new Uint8Array([0])), bob, "malformed");
  await assertRefused(utf8("OVE2 not an envelope"), bob, "malformed");
});

Deno.test("an opened envelope's recipients are what was verified, even if its bytes change after", async () => {
  const envelope = await sealed([bob, carol]);
  const opened = await openEnvelope(envelope, carol, { context: ROOM });
  // The buffer reused by its owner once openEnvelope() returned.
  envelope.fill(0xaa);
  assert.deepEqual(opened.recipients, [bob.publicKey.x25519, carol.publicKey.x25519]);
  assert.equal(opened.recipients, opened.recipients, "built once");
});

Deno.test("a recipient is found in place whatever its position, and a near-miss key is not one", async () => {
  const envelope = await sealed(people.slice(0, 50));
  for (const reader of [people[0], people[25], people[49]]) {
    assert.deepEqual((await openEnvelope(envelope, reader, { context: ROOM })).body, body);
  }
  // Carol's identity with Bob's key but for its last byte: not a recipient.
  const nearKey = bob.publicKey.x25519.slice();
  nearKey[31] ^= 1;
  const impostor = { ...carol, publicKey: { ...carol.publicKey, x25519: nearKey } };
  await assertRefused(await sealed([bob]), impostor, "not-recipient");
});
