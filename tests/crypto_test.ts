import assert from "node:assert/strict";
import {
  type AeadAlgorithm,
  aeadOpen,
  aeadSeal,
  type Backend,
  cryptoBackendInfo,
  hkdfSha256,
  hmacSha256,
  selectCryptoBackend,
  sha256,
  x25519,
  x25519Multi,
  x25519PublicOf,
} from "../lib/crypto/mod.ts";
import { libraryCandidates, loadNative } from "../lib/crypto/native.ts";
import { portable } from "../lib/crypto/portable.ts";
import { selfTest } from "../lib/crypto/self_test.ts";
import { testEachBackend, withBackend } from "./_backends.ts";
import { hex, ignoredForMissingVectors, loadJsonVectors } from "./_vectors.ts";

// ---------------------------------------------------------------------------
// Wycheproof vectors, on each backend
// ---------------------------------------------------------------------------

interface XdhTest {
  tcId: number;
  public: string;
  private: string;
  shared: string;
  result: "valid" | "acceptable" | "invalid";
  flags: string[];
}

const xdh = loadJsonVectors<{ testGroups: { curve: string; tests: XdhTest[] }[] }>(
  "wycheproof/x25519_test.json",
);
if (xdh.skipReason !== undefined) {
  ignoredForMissingVectors("X25519 Wycheproof vectors", xdh.skipReason);
} else {
  const tests = xdh.data.testGroups.filter((g) => g.curve === "curve25519").flatMap((g) => g.tests);
  testEachBackend("X25519 passes every Wycheproof vector; an all-zero result is refused", () => {
    let refused = 0;
    for (const t of tests) {
      const shared = hex(t.shared);
      if (shared.every((b) => b === 0)) {
        assert.throws(() => x25519(hex(t.private), hex(t.public)), {
          name: "OperationError",
        }, `tcId ${t.tcId}`);
        refused++;
        continue;
      }
      // "acceptable" vectors (twist points, non-canonical encodings) give
      // RFC 7748's answer on both backends.
      assert.deepEqual(x25519(hex(t.private), hex(t.public)), shared, `tcId ${t.tcId}`);
    }
    assert.ok(tests.length >= 500 && refused >= 20, `${tests.length} tests, ${refused} refused`);
  });

  testEachBackend("x25519Multi() and x25519PublicOf() agree with x25519()", () => {
    const valid = tests.filter((t) => t.result === "valid").slice(0, 40);
    for (const t of valid) {
      const { publicKey, shared: [shared] } = x25519Multi(hex(t.private), [hex(t.public)]);
      assert.deepEqual(shared, hex(t.shared));
      assert.deepEqual(publicKey, x25519PublicOf(hex(t.private)));
      // The public key is the product with the base point 9.
      const nine = new Uint8Array(32);
      nine[0] = 9;
      assert.deepEqual(publicKey, x25519(hex(t.private), nine));
    }
    // Many peers from one private key: each result is that peer's DH.
    const mine = hex(valid[0].private);
    const peers = valid.map((t) => hex(t.public));
    const { shared } = x25519Multi(mine, peers);
    assert.deepEqual(shared, peers.map((peer) => x25519(mine, peer)));
    // One low-order peer among them fails the whole call.
    assert.throws(() => x25519Multi(mine, [...peers.slice(0, 3), new Uint8Array(32)]), {
      name: "OperationError",
    });
  });
}

interface HkdfTest {
  tcId: number;
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
  result: "valid" | "invalid";
}

const hkdf = loadJsonVectors<{ testGroups: { tests: HkdfTest[] }[] }>(
  "wycheproof/hkdf_sha256_test.json",
);
if (hkdf.skipReason !== undefined) {
  ignoredForMissingVectors("HKDF Wycheproof vectors", hkdf.skipReason);
} else {
  const tests = hkdf.data.testGroups.flatMap((g) => g.tests);
  testEachBackend(
    "HKDF-SHA256 passes every Wycheproof vector; too long an output is refused",
    () => {
      let valid = 0;
      for (const t of tests) {
        const run = () => hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size);
        if (t.result === "valid") {
          assert.deepEqual(run(), hex(t.okm), `tcId ${t.tcId}`);
          valid++;
        } else {
          assert.throws(run, RangeError, `tcId ${t.tcId}`);
        }
      }
      assert.ok(valid >= 80);
    },
  );
}

interface AeadTest {
  tcId: number;
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: "valid" | "invalid" | "acceptable";
}

const AEAD_FILES: [AeadAlgorithm, string, number][] = [
  ["chacha20-poly1305", "wycheproof/chacha20_poly1305_test.json", 256],
  ["aes-256-gcm", "wycheproof/aes_gcm_test.json", 256],
  ["aes-128-gcm", "wycheproof/aes_gcm_test.json", 128],
];

for (const [algorithm, path, keySize] of AEAD_FILES) {
  const file = loadJsonVectors<
    { testGroups: { ivSize: number; keySize: number; tagSize: number; tests: AeadTest[] }[] }
  >(path);
  if (file.skipReason !== undefined) {
    ignoredForMissingVectors(`${algorithm} Wycheproof vectors`, file.skipReason);
    continue;
  }
  const tests = file.data.testGroups
    .filter((g) => g.ivSize === 96 && g.keySize === keySize && g.tagSize === 128)
    .flatMap((g) => g.tests);
  testEachBackend(`${algorithm} passes every applicable Wycheproof vector (any nonce)`, () => {
    let valid = 0;
    let invalid = 0;
    for (const t of tests) {
      const [key, iv, aad, msg] = [hex(t.key), hex(t.iv), hex(t.aad), hex(t.msg)];
      const sealed = new Uint8Array([...hex(t.ct), ...hex(t.tag)]);
      if (t.result === "valid") {
        assert.deepEqual(aeadSeal(algorithm, key, iv, aad, msg), sealed, `tcId ${t.tcId}`);
        assert.deepEqual(aeadOpen(algorithm, key, iv, aad, sealed), msg, `tcId ${t.tcId}`);
        valid++;
      } else {
        assert.equal(aeadOpen(algorithm, key, iv, aad, sealed), undefined, `tcId ${t.tcId}`);
        invalid++;
      }
    }
    assert.ok(valid >= 30 && invalid >= 5, `${valid} valid, ${invalid} invalid`);
  });
}

// ---------------------------------------------------------------------------
// The backends agree on random inputs, and across each other
// ---------------------------------------------------------------------------

Deno.test("native and portable give the same bytes for every primitive on random inputs", async () => {
  const random = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
    return out;
  };
  for (const size of [0, 1, 15, 16, 17, 63, 64, 65, 1000, 65536, 300_001]) {
    for (const algorithm of ["chacha20-poly1305", "aes-256-gcm", "aes-128-gcm"] as const) {
      const key = random(algorithm === "aes-128-gcm" ? 16 : 32);
      const [nonce, aad, msg] = [random(12), random(size % 40), random(size)];
      const sealed = await withBackend("native", () => aeadSeal(algorithm, key, nonce, aad, msg));
      const again = await withBackend("portable", () => aeadSeal(algorithm, key, nonce, aad, msg));
      assert.deepEqual(sealed, again, `${algorithm} ${size}`);
      // Each opens what the other sealed.
      assert.deepEqual(
        await withBackend("portable", () => aeadOpen(algorithm, key, nonce, aad, sealed)),
        msg,
      );
      assert.deepEqual(
        await withBackend("native", () => aeadOpen(algorithm, key, nonce, aad, again)),
        msg,
      );
    }
    const data = random(size);
    const key = random(size % 100);
    assert.deepEqual(
      await withBackend("native", () => [sha256(data), hmacSha256(key, data)]),
      await withBackend("portable", () => [sha256(data), hmacSha256(key, data)]),
    );
  }
  for (let i = 0; i < 20; i++) {
    const [a, b] = [random(32), random(32)];
    const pub = await withBackend("portable", () => x25519PublicOf(b));
    assert.deepEqual(
      await withBackend("native", () => [x25519PublicOf(a), x25519(a, pub)]),
      await withBackend("portable", () => [x25519PublicOf(a), x25519(a, pub)]),
    );
  }
});

testEachBackend("an AEAD refuses a wrong key or nonce length instead of truncating it", () => {
  const msg = new Uint8Array(10);
  assert.throws(() =>
    aeadSeal("chacha20-poly1305", new Uint8Array(31), new Uint8Array(12), msg, msg)
  );
  assert.throws(() => aeadSeal("aes-128-gcm", new Uint8Array(32), new Uint8Array(12), msg, msg));
  assert.throws(() => aeadSeal("aes-256-gcm", new Uint8Array(32), new Uint8Array(8), msg, msg));
  assert.throws(() => x25519(new Uint8Array(31), new Uint8Array(32)), RangeError);
  assert.throws(() => x25519(new Uint8Array(32), new Uint8Array(33)), RangeError);
});

// ---------------------------------------------------------------------------
// Choosing a backend
// ---------------------------------------------------------------------------

Deno.test("selectCryptoBackend() takes native when it loads, and portable when told", async () => {
  await withBackend("portable", () => {
    assert.equal(selectCryptoBackend("auto").name, "native");
    assert.match(cryptoBackendInfo().detail, /^OpenSSL 3\.\d+\.\d+, /);
    assert.deepEqual(selectCryptoBackend("portable"), {
      name: "portable",
      detail: "node:crypto, as asked",
    });
    assert.equal(cryptoBackendInfo().name, "portable");
    assert.equal(selectCryptoBackend("native").name, "native");
  });
});

Deno.test("loadNative() names every place it looked when none has libcrypto 3", () => {
  assert.throws(
    () => loadNative(["/nonexistent/libcrypto.so.3", "libnot-a-library.so"]),
    (error: Error) =>
      error.message.startsWith("no usable libcrypto 3 (/nonexistent/libcrypto.so.3: ") &&
      error.message.includes("; libnot-a-library.so: "),
  );
});

Deno.test("the library search never names macOS's unversioned libcrypto.dylib, which aborts", () => {
  for (const os of ["darwin", "linux", "windows"] as const) {
    const candidates = libraryCandidates(os);
    assert.ok(candidates.length > 0);
    for (const path of candidates) assert.doesNotMatch(path, /libcrypto\.dylib$|libcrypto\.so$/);
  }
  assert.ok(
    libraryCandidates("darwin").includes("/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib"),
  );
  assert.ok(libraryCandidates("windows").includes("libcrypto-3-x64.dll"));
  assert.equal(libraryCandidates("linux")[0], "libcrypto.so.3");
});

Deno.test("the self-test refuses a backend with one wrong primitive, naming it", () => {
  selfTest(portable);
  const broken = (patch: Partial<Backend>): Backend => ({ ...portable, ...patch });
  assert.throws(
    () =>
      selfTest(broken({
        aeadSealInto: (a, k, n, d, p, o) => {
          portable.aeadSealInto(a, k, n, d, p, o);
          if (a === "aes-256-gcm") o[0] ^= 1;
        },
      })),
    { message: "the portable backend fails its aes-256-gcm seal known-answer test" },
  );
  assert.throws(
    () =>
      selfTest(
        broken({ aeadOpenInto: (_a, _k, _n, _d, s, o) => (o.set(s.subarray(0, o.length)), true) }),
      ),
    { message: "the portable backend fails its chacha20-poly1305 open known-answer test" },
  );
  assert.throws(
    () => selfTest(broken({ hmacSha256: (k, d) => portable.hmacSha256(d, k) })),
    { message: "the portable backend fails its HMAC-SHA256 known-answer test" },
  );
  assert.throws(
    () => selfTest(broken({ x25519: (a, _b) => portable.x25519PublicOf(a) })),
    { message: "the portable backend fails its X25519 known-answer test" },
  );
});
