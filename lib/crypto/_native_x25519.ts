/**
 * The native backend's X25519 through OpenSSL's EVP_PKEY (the only public
 * way in OpenSSL 3), with imported private keys kept where a key is used
 * again: OpenSSL computes the public key whenever it imports a private one
 * (an X25519 operation).
 *
 * @module
 */

import { constantTimeEqual } from "../bytes.ts";
import { LruCache } from "./_lru.ts";
import {
  EVP_PKEY_X25519,
  type Lib,
  NativeCryptoError,
  OutLengths,
  rawPublicKey,
} from "./_native_lib.ts";
import { type Backend, lowOrder } from "./types.ts";

/** Long-lived X25519 private keys kept imported (x25519Static). */
const MAX_KEPT_STATIC_KEYS = 256;

type X25519 = Pick<Backend, "x25519" | "x25519Static" | "x25519PublicOf" | "x25519Multi">;

/** A private key imported with its derivation context. */
interface Imported {
  key: Deno.PointerObject;
  ctx: Deno.PointerObject;
}

/**
 * The backend's X25519 functions over `lib`, with `sha256md` (SHA-256 as
 * fetched once) to look kept keys up by.
 */
export function nativeX25519(lib: Lib, sha256md: Deno.PointerObject): X25519 {
  const keys = new PrivateKeys(lib);
  const last = lastKeyDeriver(keys);
  const kept = keptKeyDeriver(keys, sha256md);
  return {
    // The last private key imported for x25519() is kept: a Noise
    // handshake uses its ephemeral key twice.
    x25519: (privateKey, publicKey) => keys.derive(last(privateKey), publicKey),
    x25519Static: (privateKey, publicKey) => keys.derive(kept(privateKey), publicKey),
    x25519PublicOf: (privateKey) => keys.publicOf(keys.importKey(privateKey), true),
    // HPKE's ephemeral key: never kept.
    x25519Multi(privateKey, peers) {
      const key = keys.importKey(privateKey);
      let ctx: Deno.PointerObject | null = null;
      try {
        const publicKey = keys.publicOf(key, false);
        ctx = keys.deriver(key);
        return { publicKey, shared: peers.map((peer) => keys.derive(ctx!, peer)) };
      } finally {
        if (ctx !== null) lib.EVP_PKEY_CTX_free(ctx);
        lib.EVP_PKEY_free(key);
      }
    },
  };
}

// Importing keys, deriving from them, and freeing them.
class PrivateKeys {
  readonly lib: Lib;
  readonly #out = new OutLengths();

  constructor(lib: Lib) {
    this.lib = lib;
  }

  importKey(raw: Uint8Array): Deno.PointerObject {
    if (raw.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
    const key = this.lib.EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, null, raw, 32n);
    if (key === null) throw new NativeCryptoError("import an X25519 private key");
    return key;
  }

  // Imports a key with its derivation context.
  importWithDeriver(raw: Uint8Array): Imported {
    const key = this.importKey(raw);
    try {
      return { key, ctx: this.deriver(key) };
    } catch (error) {
      this.lib.EVP_PKEY_free(key);
      throw error;
    }
  }

  free(entry: Imported): void {
    this.lib.EVP_PKEY_CTX_free(entry.ctx);
    this.lib.EVP_PKEY_free(entry.key);
  }

  publicOf(key: Deno.PointerObject, free: boolean): Uint8Array {
    try {
      return rawPublicKey(this.lib, this.#out, key, "an X25519 public key");
    } finally {
      if (free) this.lib.EVP_PKEY_free(key);
    }
  }

  // A derivation context for one private key, reused for every peer: only
  // the peer changes between derivations.
  deriver(mine: Deno.PointerObject): Deno.PointerObject {
    const lib = this.lib;
    const ctx = lib.EVP_PKEY_CTX_new(mine, null);
    if (ctx === null || lib.EVP_PKEY_derive_init(ctx) !== 1) {
      if (ctx !== null) lib.EVP_PKEY_CTX_free(ctx);
      throw new NativeCryptoError("start an X25519 derivation");
    }
    return ctx;
  }

  derive(ctx: Deno.PointerObject, publicKey: Uint8Array): Uint8Array {
    const lib = this.lib;
    if (publicKey.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
    const theirs = lib.EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, null, publicKey, 32n);
    if (theirs === null) throw new NativeCryptoError("import an X25519 public key");
    try {
      const shared = new Uint8Array(32);
      this.#out.size[0] = 32n;
      // OpenSSL refuses an all-zero result (a low-order point) here. The
      // peer is not "validated" first: for X25519 that check only asks
      // whether the key has a public part (every 32 bytes are a valid
      // u-coordinate), and it cost a context allocation per derivation.
      if (
        lib.EVP_PKEY_derive_set_peer_ex(ctx, theirs, 0) !== 1 ||
        lib.EVP_PKEY_derive(ctx, shared, this.#out.sizeBytes) !== 1 ||
        this.#out.size[0] !== 32n
      ) throw lowOrder();
      return shared;
    } finally {
      lib.EVP_PKEY_free(theirs);
    }
  }
}

// The derivation context of the last private key given, kept until another
// one comes.
function lastKeyDeriver(keys: PrivateKeys): (raw: Uint8Array) => Deno.PointerObject {
  let cachedRaw = new Uint8Array(0);
  let cached: Imported | null = null;
  return (raw) => {
    if (cached !== null && constantTimeEqual(raw, cachedRaw)) return cached.ctx;
    const imported = keys.importWithDeriver(raw);
    if (cached !== null) keys.free(cached);
    cached = imported;
    cachedRaw = raw.slice();
    return imported.ctx;
  };
}

// Long-lived keys (x25519Static), each imported once with its derivation
// context. They are looked up by their SHA-256, so that the secret never
// becomes a string (which could not be wiped); the evicted are freed
// (OpenSSL clears a private key it frees).
function keptKeyDeriver(
  keys: PrivateKeys,
  sha256md: Deno.PointerObject,
): (raw: Uint8Array) => Deno.PointerObject {
  const lib = keys.lib;
  const kept = new LruCache<Imported>(MAX_KEPT_STATIC_KEYS, (entry) => keys.free(entry));
  const keptId = new Uint8Array(32);
  const out = new OutLengths();
  return (raw) => {
    if (raw.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
    if (
      lib.EVP_Digest(raw, 32n, keptId, out.intBytes, sha256md, null) !== 1 ||
      out.int[0] !== 32
    ) throw new NativeCryptoError("hash");
    const id = String.fromCharCode(...keptId);
    const entry = kept.get(id);
    if (entry !== undefined) return entry.ctx;
    const imported = keys.importWithDeriver(raw);
    kept.add(id, imported);
    return imported.ctx;
  };
}
