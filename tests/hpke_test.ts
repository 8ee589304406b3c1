import assert from "node:assert/strict";
import { fromHex, toHex } from "../lib/bytes.ts";
import { deriveKeyPair, setupRecipient, setupSender } from "../lib/hpke.ts";
import { loadJsonVectors } from "./_vectors.ts";

interface HpkeVector {
  mode: number;
  aead_id: number;
  info: string;
  ikmR: string;
  ikmE: string;
  ikmS?: string;
  skRm: string;
  pkRm: string;
  skEm: string;
  pkEm: string;
  pkSm?: string;
  enc: string;
  encryptions: { aad: string; ct: string; nonce: string; pt: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const file = loadJsonVectors<HpkeVector[]>("hpke/rfc9180-x25519-sha256-base-auth.json");
const vectors: HpkeVector[] = file.data ?? [];

Deno.test({
  name: "HPKE reproduces the RFC 9180 vectors (base and auth, three AEADs) byte for byte",
  ignore: !file.data,
  async fn() {
    assert.equal(vectors.length, 6);
    for (const v of vectors) {
      const label = `mode ${v.mode} aead ${v.aead_id}`;
      const recipient = await deriveKeyPair(fromHex(v.ikmR));
      assert.equal(toHex(recipient.privateKey), v.skRm, label);
      assert.equal(toHex(recipient.publicKey), v.pkRm, label);
      const ephemeral = await deriveKeyPair(fromHex(v.ikmE));
      assert.equal(toHex(ephemeral.publicKey), v.pkEm, label);
      const sender = v.ikmS ? await deriveKeyPair(fromHex(v.ikmS)) : undefined;
      if (sender) assert.equal(toHex(sender.publicKey), v.pkSm, label);
      const info = fromHex(v.info);
      const { enc, context: sealer } = setupSender(recipient.publicKey, info, v.aead_id, {
        ephemeral,
        sender,
      });
      assert.equal(toHex(enc), v.enc, label);
      const opener = setupRecipient(enc, recipient, info, v.aead_id, sender?.publicKey);
      for (const [i, e] of v.encryptions.entries()) {
        const ct = await sealer.seal(fromHex(e.aad), fromHex(e.pt));
        assert.equal(toHex(ct), e.ct, `${label} encryption ${i}`);
        assert.equal(toHex(await opener.open(fromHex(e.aad), ct)), e.pt, `${label} open ${i}`);
      }
      for (const x of v.exports) {
        assert.equal(toHex(sealer.export(fromHex(x.exporter_context), x.L)), x.exported_value);
      }
    }
  },
});

Deno.test("HPKE open refuses a flipped ciphertext, wrong aad, and the wrong recipient", async () => {
  const alice = await deriveKeyPair(new Uint8Array(32).fill(1));
  const eve = await deriveKeyPair(new Uint8Array(32).fill(2));
  const info = new TextEncoder().encode("test");
  const { enc, context } = setupSender(alice.publicKey, info, 3);
  const ct = await context.seal(new Uint8Array([1]), new TextEncoder().encode("secret"));
  const flipped = ct.slice();
  flipped[0] ^= 1;
  const open = (who: typeof alice, aad: number[], data: Uint8Array) =>
    setupRecipient(enc, who, info, 3).open(new Uint8Array(aad), data);
  assert.equal(new TextDecoder().decode(await open(alice, [1], ct)), "secret");
  await assert.rejects(open(alice, [1], flipped), { message: "Decryption failed" });
  await assert.rejects(open(alice, [2], ct), { message: "Decryption failed" });
  await assert.rejects(open(eve, [1], ct), { message: "Decryption failed" });
});
