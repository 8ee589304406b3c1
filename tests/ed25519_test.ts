import assert from "node:assert/strict";
import {
  type Backend,
  ed25519PublicOf,
  ed25519Sign,
  ed25519Verify,
  ed25519VerifyOnce,
  generateEd25519,
} from "../lib/crypto/mod.ts";
import { portable } from "../lib/crypto/portable.ts";
import { selfTest } from "../lib/crypto/self_test.ts";
import { testEachBackend } from "./_backends.ts";
import { hex, ignoredForMissingVectors, loadJsonVectors } from "./_vectors.ts";

/** Both verifications (native makes the one-off check in libcrypto); each must agree. */
const VERIFIERS = [["verify", ed25519Verify], ["once", ed25519VerifyOnce]] as const;

interface EddsaTest {
  tcId: number;
  msg: string;
  sig: string;
  result: "valid" | "invalid";
  comment: string;
}

const eddsa = loadJsonVectors<{ testGroups: { publicKey: { pk: string }; tests: EddsaTest[] }[] }>(
  "wycheproof/ed25519_test.json",
);
if (eddsa.skipReason !== undefined) {
  ignoredForMissingVectors("Ed25519 Wycheproof vectors", eddsa.skipReason);
} else {
  const groups = eddsa.data.testGroups;
  testEachBackend("Ed25519 verification gives every Wycheproof vector's result", () => {
    let valid = 0;
    let invalid = 0;
    for (const group of groups) {
      const publicKey = hex(group.publicKey.pk);
      for (const t of group.tests) {
        const expected = t.result === "valid";
        for (const [name, verify] of VERIFIERS) {
          assert.equal(
            verify(publicKey, hex(t.sig), hex(t.msg)),
            expected,
            `${name}, tcId ${t.tcId}: ${t.comment}`,
          );
        }
        if (expected) valid++;
        else invalid++;
      }
    }
    // The file holds 151 tests; both kinds must have run.
    assert.equal(valid + invalid, 151);
    assert.ok(valid > 0 && invalid > 0, `${valid} valid, ${invalid} invalid`);
  });
}

// RFC 8032 section 7.1, tests 1 to 3.
const RFC8032 = [
  {
    seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a3" +
      "3bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15" +
      "996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
  {
    seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
    publicKey: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    message: "af82",
    signature: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16" +
      "f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
  },
];

testEachBackend("Ed25519 signs and derives public keys as RFC 8032 does, byte for byte", () => {
  for (const v of RFC8032) {
    assert.deepEqual(ed25519PublicOf(hex(v.seed)), hex(v.publicKey));
    assert.deepEqual(ed25519Sign(hex(v.seed), hex(v.message)), hex(v.signature));
    for (const [name, verify] of VERIFIERS) {
      assert.equal(verify(hex(v.publicKey), hex(v.signature), hex(v.message)), true, name);
    }
  }
});

testEachBackend(
  "Ed25519 refuses a flipped bit in any byte of the signature, key or message",
  async () => {
    const { privateKey, publicKey } = await generateEd25519();
    const message = crypto.getRandomValues(new Uint8Array(100));
    const signature = ed25519Sign(privateKey, message);
    const flipped = (bytes: Uint8Array, at: number, bit: number) => {
      const copy = bytes.slice();
      copy[at] ^= 1 << bit;
      return copy;
    };
    for (const [name, verify] of VERIFIERS) {
      assert.equal(verify(publicKey, signature, message), true, name);
      for (let at = 0; at < 64; at++) {
        for (const bit of [0, 7]) {
          assert.equal(
            verify(publicKey, flipped(signature, at, bit), message),
            false,
            `${name}: sig ${at}`,
          );
        }
      }
      for (let at = 0; at < 32; at++) {
        assert.equal(
          verify(flipped(publicKey, at, 0), signature, message),
          false,
          `${name}: key ${at}`,
        );
      }
      for (const at of [0, 1, 50, 99]) {
        assert.equal(
          verify(publicKey, signature, flipped(message, at, 3)),
          false,
          `${name}: msg ${at}`,
        );
      }
      assert.equal(verify(publicKey, signature, message.subarray(0, 99)), false);
      assert.equal(verify(publicKey, signature, message), true, "the key cache is unchanged");
    }
  },
);

testEachBackend(
  "one-off verification keeps its answers past the checks native makes in libcrypto",
  async () => {
    const { privateKey, publicKey } = await generateEd25519();
    const message = new Uint8Array([4, 5, 6]);
    const signature = ed25519Sign(privateKey, message);
    const forged = signature.slice();
    forged[10] ^= 1;
    // 256 in libcrypto, then node:crypto's: both must say the same.
    for (let i = 0; i < 300; i++) {
      assert.equal(ed25519VerifyOnce(publicKey, signature, message), true, `check ${i}`);
      assert.equal(ed25519VerifyOnce(publicKey, forged, message), false, `forged check ${i}`);
    }
  },
);

testEachBackend("Ed25519 verification says false, never throws, for malformed inputs", async () => {
  const { privateKey, publicKey } = await generateEd25519();
  const message = new Uint8Array([1, 2, 3]);
  const signature = ed25519Sign(privateKey, message);
  for (const [name, verify] of VERIFIERS) {
    for (const length of [0, 1, 31, 33, 64]) {
      const key = new Uint8Array(length);
      key.set(publicKey.subarray(0, Math.min(length, 32)));
      assert.equal(verify(key, signature, message), false, `${name}: key of ${length} bytes`);
    }
    for (const length of [0, 32, 63, 65, 128]) {
      const sig = new Uint8Array(length);
      sig.set(signature.subarray(0, Math.min(length, 64)));
      assert.equal(verify(publicKey, sig, message), false, `${name}: signature of ${length} bytes`);
    }
    // Not a point on the curve (y = 2), and the all-zero signature.
    const offCurve = new Uint8Array(32);
    offCurve[0] = 2;
    assert.equal(verify(offCurve, signature, message), false, name);
    assert.equal(verify(publicKey, new Uint8Array(64), message), false, name);
  }
  assert.throws(() => ed25519Sign(new Uint8Array(31), message), RangeError);
  assert.throws(() => ed25519PublicOf(new Uint8Array(33)), RangeError);
});

testEachBackend("Ed25519's kept keys follow the bytes, not the buffers holding them", async () => {
  const [a, b] = await Promise.all([generateEd25519(), generateEd25519()]);
  const message = new Uint8Array([42]);
  // One seed buffer, changed in place between two signatures.
  const seed = a.privateKey.slice();
  const byA = ed25519Sign(seed, message);
  seed.set(b.privateKey);
  const byB = ed25519Sign(seed, message);
  assert.equal(ed25519Verify(a.publicKey, byA, message), true);
  assert.equal(ed25519Verify(b.publicKey, byB, message), true);
  assert.equal(ed25519Verify(a.publicKey, byB, message), false);
  // One public key buffer, changed in place between two verifications.
  const key = a.publicKey.slice();
  assert.equal(ed25519Verify(key, byA, message), true);
  key.set(b.publicKey);
  assert.equal(ed25519Verify(key, byA, message), false);
  assert.equal(ed25519Verify(key, byB, message), true);
});

testEachBackend("Ed25519 stays right past the number of public keys kept", async () => {
  const signers = await Promise.all(Array.from({ length: 300 }, () => generateEd25519()));
  const message = new Uint8Array([7]);
  const signatures = signers.map((s) => ed25519Sign(s.privateKey, message));
  // Twice round: the second pass finds the first keys evicted.
  for (let pass = 0; pass < 2; pass++) {
    signers.forEach((s, i) => {
      assert.equal(ed25519Verify(s.publicKey, signatures[i], message), true);
      const other = signatures[(i + 1) % signers.length];
      assert.equal(ed25519Verify(s.publicKey, other, message), false);
    });
  }
});

Deno.test("the self-test refuses a backend whose Ed25519 accepts a forged signature", () => {
  const broken: Backend = { ...portable, ed25519Verify: () => true };
  assert.throws(() => selfTest(broken), {
    message: "the portable backend fails its Ed25519 forged signature known-answer test",
  });
  const brokenOnce: Backend = { ...portable, ed25519VerifyOnce: () => true };
  assert.throws(() => selfTest(brokenOnce), /Ed25519 forged signature/);
  // Native's one-off verification is its own (libcrypto): checked at start.
  const brokenNative: Backend = { ...portable, name: "native", ed25519VerifyOnce: () => true };
  assert.throws(() => selfTest(brokenNative), {
    message: "the native backend fails its Ed25519 forged signature known-answer test",
  });
  // A signature that does not verify is refused too.
  const rejecting: Backend = { ...portable, name: "native", ed25519VerifyOnce: () => false };
  assert.throws(() => selfTest(rejecting), /Ed25519 verification/);
});
