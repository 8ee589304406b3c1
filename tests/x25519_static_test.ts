import assert from "node:assert/strict";
import { generateX25519, x25519, x25519Static } from "../lib/crypto/mod.ts";
import { testEachBackend } from "./_backends.ts";
import { hex, ignoredForMissingVectors, loadJsonVectors } from "./_vectors.ts";

interface XdhTest {
  tcId: number;
  public: string;
  private: string;
  shared: string;
}

const xdh = loadJsonVectors<{ testGroups: { curve: string; tests: XdhTest[] }[] }>(
  "wycheproof/x25519_test.json",
);
if (xdh.skipReason !== undefined) {
  ignoredForMissingVectors("x25519Static() Wycheproof vectors", xdh.skipReason);
} else {
  const tests = xdh.data.testGroups.filter((g) => g.curve === "curve25519").flatMap((g) => g.tests);
  testEachBackend(
    "x25519Static() passes every Wycheproof vector; an all-zero result is refused",
    () => {
      let refused = 0;
      // Twice: the second pass finds the keys of the first kept.
      for (let pass = 0; pass < 2; pass++) {
        for (const t of tests) {
          const shared = hex(t.shared);
          if (shared.every((b) => b === 0)) {
            assert.throws(() => x25519Static(hex(t.private), hex(t.public)), {
              name: "OperationError",
            }, `tcId ${t.tcId}`);
            refused++;
            continue;
          }
          assert.deepEqual(x25519Static(hex(t.private), hex(t.public)), shared, `tcId ${t.tcId}`);
        }
      }
      assert.ok(tests.length >= 500 && refused >= 40, `${tests.length} tests, ${refused} refused`);
    },
  );
}

testEachBackend("x25519Static()'s kept keys follow the bytes, not the buffer holding them", () => {
  const a = generateX25519();
  const b = generateX25519();
  const peer = generateX25519();
  const key = a.privateKey.slice();
  assert.deepEqual(x25519Static(key, peer.publicKey), x25519(a.privateKey, peer.publicKey));
  key.set(b.privateKey);
  assert.deepEqual(x25519Static(key, peer.publicKey), x25519(b.privateKey, peer.publicKey));
  assert.throws(() => x25519Static(new Uint8Array(31), peer.publicKey), RangeError);
  assert.throws(() => x25519Static(a.privateKey, new Uint8Array(33)), RangeError);
});

testEachBackend("x25519Static() stays right past the number of keys kept", () => {
  const peer = generateX25519();
  const keys = Array.from({ length: 300 }, () => generateX25519());
  const expected = keys.map((k) => x25519(peer.privateKey, k.publicKey));
  for (let pass = 0; pass < 2; pass++) {
    keys.forEach((k, i) => {
      assert.deepEqual(x25519Static(k.privateKey, peer.publicKey), expected[i], `key ${i}`);
    });
  }
});
