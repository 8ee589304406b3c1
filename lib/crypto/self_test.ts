/**
 * The known-answer test a backend must pass before it is used: one
 * published vector per primitive, plus a forged tag that must be refused.
 * A library that loads but computes wrongly (a broken build, an ABI
 * mismatch) is caught here, before it touches a key.
 *
 * @module
 */

import type { AeadAlgorithm, Backend } from "./types.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// Wycheproof chacha20_poly1305_test.json tcId 1 (RFC 8439 2.8.2), and
// aes_gcm_test.json tcId 2 (AES-128) and tcId 100 (AES-256).
const AEAD_VECTORS: [AeadAlgorithm, string, string, string, string, string][] = [
  [
    "chacha20-poly1305",
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    "070000004041424344454647",
    "50515253c0c1c2c3c4c5c6c7",
    "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c642062652069742e",
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" +
    "1ae10b594f09e26a7e902ecbd0600691",
  ],
  [
    "aes-128-gcm",
    "5b9604fe14eadba931b0ccf34843dab9",
    "921d2507fa8007b7bd067d34",
    "00112233445566778899aabbccddeeff",
    "001d0c231287c1182784554ca3a21908",
    "49d8b9783e911913d87094d1f63cc765" + "1e348ba07cca2cf04c618cb4d43a5b92",
  ],
  [
    "aes-256-gcm",
    "b279f57e19c8f53f2f963f5f2519fdb7c1779be2ca2b3ae8e1128b7d6c627fc4",
    "98bc2c7438d5cd7665d76f6e",
    "c0",
    "fcc515b294408c8645c9183e3f4ecee5127846d1",
    "eb5500e3825952866d911253f8de860c00831c81" + "ecb660e1fb0541ec41e8d68a64141b3a",
  ],
];

/**
 * Runs the known-answer test; throws an Error naming the first primitive
 * that gives a wrong answer.
 */
export function selfTest(backend: Backend): void {
  const fail = (what: string) => {
    throw new Error(`the ${backend.name} backend fails its ${what} known-answer test`);
  };
  for (const [algorithm, key, nonce, aad, msg, sealed] of AEAD_VECTORS) {
    const plaintext = hex(msg);
    const out = new Uint8Array(plaintext.length + 16);
    backend.aeadSealInto(algorithm, hex(key), hex(nonce), hex(aad), plaintext, out);
    if (!same(out, hex(sealed))) fail(`${algorithm} seal`);
    const opened = new Uint8Array(plaintext.length);
    if (!backend.aeadOpenInto(algorithm, hex(key), hex(nonce), hex(aad), out, opened)) {
      fail(`${algorithm} open`);
    }
    if (!same(opened, plaintext)) fail(`${algorithm} open`);
    out[out.length - 1] ^= 1;
    if (backend.aeadOpenInto(algorithm, hex(key), hex(nonce), hex(aad), out, opened)) {
      fail(`${algorithm} forged tag`);
    }
  }
  if (
    !same(
      backend.sha256(new TextEncoder().encode("abc")),
      hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    )
  ) fail("SHA-256");
  // The running SHA-256 is checked when it is first used (native binds its
  // functions then: ./native_sha256.ts), not here, at every start.
  // RFC 4231 test case 2.
  if (
    !same(
      backend.hmacSha256(
        new TextEncoder().encode("Jefe"),
        new TextEncoder().encode("what do ya want for nothing?"),
      ),
      hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    )
  ) fail("HMAC-SHA256");
  // RFC 7748 section 6.1.
  const alice = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const bobPublic = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  if (
    !same(
      backend.x25519PublicOf(alice),
      hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
    )
  ) fail("X25519 public key");
  if (
    !same(
      backend.x25519(alice, bobPublic),
      hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
    )
  ) fail("X25519");
  // RFC 8032 section 7.1, test 1 (the empty message).
  const seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  const edPublic = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const signature = hex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  );
  const empty = new Uint8Array(0);
  if (!same(backend.ed25519PublicOf(seed), edPublic)) fail("Ed25519 public key");
  if (!same(backend.ed25519Sign(seed, empty), signature)) fail("Ed25519 signature");
  // ed25519Verify is node:crypto's in both backends (./ed25519.ts): it is
  // checked with the portable one, so that native does not load node:crypto
  // at every start for it alone (../io/node_builtin.ts).
  const verifiers = backend.name === "portable"
    ? [backend.ed25519Verify, backend.ed25519VerifyOnce]
    : [backend.ed25519VerifyOnce];
  for (const verify of verifiers) {
    if (!verify(edPublic, signature, empty)) fail("Ed25519 verification");
    const forged = signature.slice();
    forged[0] ^= 1;
    if (verify(edPublic, forged, empty)) fail("Ed25519 forged signature");
  }
}
