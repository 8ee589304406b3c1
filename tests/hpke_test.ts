import assert from "node:assert/strict";
import { fromHex, toHex } from "../lib/bytes.ts";
import { deriveKeyPair, setupRecipient, setupSender, setupSenders } from "../lib/crypto/hpke.ts";
import { loadJsonVectors } from "./_vectors.ts";
import { testEachBackend } from "./_backends.ts";

interface HpkeVector {
  mode: number;
  aead_id: number;
  info: string;
  ikmR: string;
  ikmE: string;
  skRm: string;
  pkRm: string;
  skEm: string;
  pkEm: string;
  enc: string;
  encryptions: { aad: string; ct: string; nonce: string; pt: string }[];
}

const file = loadJsonVectors<HpkeVector[]>("hpke/rfc9180-x25519-sha256-base-auth.json");
const vectors: HpkeVector[] = file.data ?? [];

// Only the suite ovtp uses is implemented: base mode, ChaCha20-Poly1305.
const kept = vectors.filter((v) => v.mode === 0 && v.aead_id === 3);

testEachBackend(
  "HPKE reproduces the RFC 9180 base-mode ChaCha20-Poly1305 vector byte for byte",
  () => {
    if (!file.data) throw new Error(file.skipReason);
    assert.equal(kept.length, 1);
    for (const v of kept) {
      const recipient = deriveKeyPair(fromHex(v.ikmR));
      assert.equal(toHex(recipient.privateKey), v.skRm);
      assert.equal(toHex(recipient.publicKey), v.pkRm);
      const ephemeral = deriveKeyPair(fromHex(v.ikmE));
      assert.equal(toHex(ephemeral.publicKey), v.pkEm);
      assert.equal(toHex(ephemeral.privateKey), v.skEm);
      const info = fromHex(v.info);
      const { enc, context: sealer } = setupSender(recipient.publicKey, info, ephemeral.privateKey);
      assert.equal(toHex(enc), v.enc);
      const opener = setupRecipient(enc, recipient, info);
      assert.equal(v.encryptions.length, 257);
      for (const [i, e] of v.encryptions.entries()) {
        const ct = sealer.seal(fromHex(e.aad), fromHex(e.pt));
        assert.equal(toHex(ct), e.ct, `encryption ${i}`);
        assert.equal(toHex(opener.open(fromHex(e.aad), ct)), e.pt, `open ${i}`);
      }
    }
  },
);

testEachBackend(
  "HPKE open refuses a flipped ciphertext, wrong aad, and the wrong recipient",
  () => {
    const alice = deriveKeyPair(new Uint8Array(32).fill(1));
    const eve = deriveKeyPair(new Uint8Array(32).fill(2));
    const info = new TextEncoder().encode("test");
    const { enc, context } = setupSender(alice.publicKey, info);
    const ct = context.seal(new Uint8Array([1]), new TextEncoder().encode("secret"));
    const flipped = ct.slice();
    flipped[0] ^= 1;
    const open = (who: typeof alice, aad: number[], data: Uint8Array) =>
      setupRecipient(enc, who, info).open(new Uint8Array(aad), data);
    assert.equal(new TextDecoder().decode(open(alice, [1], ct)), "secret");
    assert.throws(() => open(alice, [1], flipped), { message: "Decryption failed" });
    assert.throws(() => open(alice, [2], ct), { message: "Decryption failed" });
    assert.throws(() => open(eve, [1], ct), { message: "Decryption failed" });
    // A context that refused a message has not advanced: the real one still opens.
    const opener = setupRecipient(enc, alice, info);
    assert.throws(() => opener.open(new Uint8Array([1]), flipped), {
      message: "Decryption failed",
    });
    assert.equal(new TextDecoder().decode(opener.open(new Uint8Array([1]), ct)), "secret");
  },
);

testEachBackend("HPKE refuses a low-order ephemeral key (an all-zero shared secret)", () => {
  const alice = deriveKeyPair(new Uint8Array(32).fill(1));
  const lowOrder = new Uint8Array(32); // the point 0
  assert.throws(() => setupRecipient(lowOrder, alice, new Uint8Array(0)), /all-zero/);
});

testEachBackend("setupSenders() shares one enc; each recipient opens only its own context", () => {
  const keys = [1, 2, 3].map((n) => deriveKeyPair(new Uint8Array(32).fill(n)));
  const info = new TextEncoder().encode("many");
  const { enc, contexts } = setupSenders(keys.map((k) => k.publicKey), info);
  const sealed = contexts.map((c, i) => c.seal(new Uint8Array([i]), new Uint8Array([42, i])));
  for (const [i, key] of keys.entries()) {
    assert.deepEqual(
      setupRecipient(enc, key, info).open(new Uint8Array([i]), sealed[i]),
      new Uint8Array([42, i]),
    );
    // Another recipient's wrapped key does not open with this key.
    const other = (i + 1) % keys.length;
    assert.throws(
      () => setupRecipient(enc, key, info).open(new Uint8Array([other]), sealed[other]),
      {
        message: "Decryption failed",
      },
    );
  }
  // The same as Encap with that ephemeral key, one recipient at a time (RFC 9180's SetupBaseS).
  const ephemeral = new Uint8Array(32).fill(9);
  const many = setupSenders(keys.map((k) => k.publicKey), info, ephemeral);
  for (const [i, key] of keys.entries()) {
    const one = setupSender(key.publicKey, info, ephemeral);
    assert.deepEqual(one.enc, many.enc);
    assert.deepEqual(one.context.seal(EMPTY, EMPTY), many.contexts[i].seal(EMPTY, EMPTY));
  }
});

const EMPTY = new Uint8Array(0);
