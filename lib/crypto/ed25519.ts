/**
 * Ed25519 for both backends: node:crypto, synchronous, with the imported
 * keys kept.
 *
 * Why node:crypto and not OpenSSL through FFI, measured on the project's
 * shared 2-core x86-64 machine (Deno 2.9.6, OpenSSL 3.0.19, one process,
 * the two interleaved): verifying a signature takes 31-73 us with
 * node:crypto (Deno's own Rust code) and 82-186 us with libcrypto's
 * EVP_DigestVerify on a kept EVP_PKEY (`openssl speed ed25519` agrees:
 * 73 us); signing is about even. WebCrypto, used before, cost about
 * 110 us a verify: a promise, a thread hop and a key import per call.
 *
 * Chat verifies the same few senders' keys over and over, so the imported
 * public keys are kept, the most recently used 256; the last private key
 * used to sign is kept too (an identity signs with one key for its life).
 * A KeyObject never changes, and each is looked up by its full key bytes.
 *
 * @module
 */

import type { KeyObject } from "node:crypto";
import { nodeCrypto } from "../io/node_builtin.ts";
import { constantTimeEqual } from "../bytes.ts";
import { ED25519_OID, pkcs8, spki } from "./_der.ts";
import { LruCache } from "./_lru.ts";

const SEED_LENGTH = 32;
const PUBLIC_KEY_LENGTH = 32;
const SIGNATURE_LENGTH = 64;
const MAX_CACHED_PUBLIC_KEYS = 256;

const publicKeys = new LruCache<KeyObject>(MAX_CACHED_PUBLIC_KEYS);

function publicKeyObject(raw: Uint8Array): KeyObject {
  // Public bytes as the key of the cache: one char per byte.
  const id = String.fromCharCode(...raw);
  let key = publicKeys.get(id);
  if (key === undefined) {
    key = nodeCrypto().createPublicKey({
      key: spki(ED25519_OID, raw) as never,
      format: "der",
      type: "spki",
    });
    publicKeys.add(id, key);
  }
  return key;
}

let lastSeed: Uint8Array = new Uint8Array(0);
let lastPrivate: KeyObject | undefined;

function privateKeyObject(seed: Uint8Array): KeyObject {
  if (seed.length !== SEED_LENGTH) throw new RangeError("Ed25519 seeds are 32 bytes");
  if (lastPrivate === undefined || !constantTimeEqual(seed, lastSeed)) {
    lastPrivate = nodeCrypto().createPrivateKey({
      key: pkcs8(ED25519_OID, seed) as never,
      format: "der",
      type: "pkcs8",
    });
    lastSeed = seed.slice();
  }
  return lastPrivate;
}

/** The Ed25519 signature (64 bytes) of `data` by the key of a 32-byte seed. */
export function ed25519Sign(seed: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(nodeCrypto().sign(null, data, privateKeyObject(seed)));
}

/**
 * Whether `signature` is `publicKey`'s over `data`: false, never an
 * exception, for a key or signature of the wrong length or not on the curve.
 */
export function ed25519Verify(
  publicKey: Uint8Array,
  signature: Uint8Array,
  data: Uint8Array,
): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) {
    return false;
  }
  try {
    return nodeCrypto().verify(null, data, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** The Ed25519 public key of a 32-byte seed. */
export function ed25519PublicOf(seed: Uint8Array): Uint8Array {
  const spki = nodeCrypto().createPublicKey(privateKeyObject(seed)).export({
    format: "der",
    type: "spki",
  });
  return new Uint8Array(spki.subarray(spki.length - PUBLIC_KEY_LENGTH));
}
