/**
 * The native backend: OpenSSL 3's libcrypto through Deno FFI (needs
 * `--allow-ffi`). Only lib/crypto/backend.ts loads it, and only uses it
 * after the known-answer self-test in lib/crypto/self_test.ts has passed.
 *
 * Every call checks OpenSSL's return value and throws on failure: a native
 * call that fails is an error, never a silent fallback that could send
 * plaintext. An authentication failure on open is the one expected failure
 * and is reported as `false`.
 *
 * @module
 */

import { LruCache } from "./_lru.ts";
import { ed25519PublicOf, ed25519Sign, ed25519Verify } from "./ed25519.ts";
import { type AeadAlgorithm, type Backend, lowOrder } from "./types.ts";
import { checkRunningSha256, NativeSha256 } from "./native_sha256.ts";

/**
 * Where libcrypto 3 is looked for, in order. On macOS only Homebrew's and
 * MacPorts' versioned libraries: the unversioned system
 * /usr/lib/libcrypto.dylib aborts the process when it is loaded.
 */
export function libraryCandidates(os: typeof Deno.build.os = Deno.build.os): string[] {
  switch (os) {
    case "darwin":
      return [
        "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
        "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
        "/opt/local/lib/libcrypto.3.dylib",
      ];
    case "windows":
      return [
        "libcrypto-3-x64.dll",
        "libcrypto-3-arm64.dll",
        "C:\\Program Files\\OpenSSL-Win64\\bin\\libcrypto-3-x64.dll",
        "C:\\Program Files\\OpenSSL\\bin\\libcrypto-3-x64.dll",
        "C:\\Program Files\\Git\\mingw64\\bin\\libcrypto-3-x64.dll",
      ];
    default:
      return [
        "libcrypto.so.3",
        "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
        "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
        "/usr/lib64/libcrypto.so.3",
        "/usr/lib/libcrypto.so.3",
        "/usr/local/lib/libcrypto.so.3",
        "/usr/local/lib64/libcrypto.so.3",
      ];
  }
}

const SYMBOLS = {
  OpenSSL_version_num: { parameters: [], result: "u64" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  EVP_aes_128_gcm: { parameters: [], result: "pointer" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_MD_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  // int EVP_Digest(data, count, md, size, type, impl)
  EVP_Digest: {
    parameters: ["buffer", "usize", "buffer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  // The same, on one of Deno's blocking-task threads: hashing overlaps the
  // caller's next work, without a worker (sealed-file chunk digests).
  EVP_Digest_async: {
    name: "EVP_Digest",
    parameters: ["buffer", "usize", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  // unsigned char *HMAC(md, key, key_len, d, n, md_out, md_len)
  HMAC: {
    parameters: ["pointer", "buffer", "i32", "buffer", "usize", "buffer", "buffer"],
    result: "pointer",
  },
  // X25519 through EVP_PKEY (the only public way in OpenSSL 3).
  EVP_PKEY_new_raw_private_key: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  EVP_PKEY_new_raw_public_key: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  EVP_PKEY_get_raw_public_key: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_derive_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_derive_set_peer_ex: { parameters: ["pointer", "pointer", "i32"], result: "i32" },
  EVP_PKEY_derive: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/**
 * The running SHA-256's functions (./native_sha256.ts), bound on its first
 * use by a second dlopen() of the same library: binding costs about 0.3 ms
 * a symbol at start-up, which `ovtp send` does not need to pay for them.
 */
const DIGEST_SYMBOLS = {
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_MD_CTX_copy_ex: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_DigestInit_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  // The same on one of Deno's blocking-task threads: a file's hash runs
  // while the caller encrypts or writes the same bytes.
  EVP_DigestUpdate_async: {
    name: "EVP_DigestUpdate",
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
} as const;

/** The running SHA-256's functions, as bound. */
export type DigestLib = Deno.DynamicLibrary<typeof DIGEST_SYMBOLS>["symbols"];

// openssl/evp.h and obj_mac.h.
const EVP_CTRL_AEAD_SET_IVLEN = 0x9;
const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const EVP_PKEY_X25519 = 1034;
/** Long-lived X25519 private keys kept imported (x25519Static). */
const MAX_KEPT_STATIC_KEYS = 256;
const TAG = 16;
const ONE_BYTE = new Uint8Array(1);

/** Thrown when a libcrypto call fails where it must not. */
export class NativeCryptoError extends Error {
  /** Creates the error. */
  constructor(what: string) {
    super(`Cannot ${what}: the native crypto library (OpenSSL) reported an error`);
    this.name = "NativeCryptoError";
  }
}

/** The loaded library and where it was found. */
export interface NativeLoad {
  /** The backend. */
  backend: Backend;
  /** The path or name it was loaded from. */
  library: string;
  /** OpenSSL's version number, e.g. 0x30000130. */
  version: bigint;
}

/**
 * Opens libcrypto 3 from the first candidate that loads and exports every
 * symbol. Throws an Error naming what was tried when none does.
 */
export function loadNative(candidates: string[] = libraryCandidates()): NativeLoad {
  const reasons: string[] = [];
  for (const path of candidates) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (error) {
      reasons.push(`${path}: ${(error as Error).message.split("\n")[0]}`);
      continue;
    }
    const version = BigInt(lib.symbols.OpenSSL_version_num());
    // 0xMNN00PP0L: major 3 or later.
    if (version < 0x30000000n) {
      lib.close();
      reasons.push(`${path}: OpenSSL ${version.toString(16)} is older than 3.0`);
      continue;
    }
    return { backend: makeBackend(lib.symbols, path), library: path, version };
  }
  throw new Error(`no usable libcrypto 3 (${reasons.join("; ")})`);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function nonNull(pointer: Deno.PointerValue, what: string): Deno.PointerObject {
  if (pointer === null) throw new NativeCryptoError(what);
  return pointer;
}

function makeBackend(lib: Lib, path: string): Backend {
  const ciphers: Record<AeadAlgorithm, Deno.PointerObject> = {
    "chacha20-poly1305": nonNull(lib.EVP_chacha20_poly1305(), "load ChaCha20-Poly1305"),
    "aes-128-gcm": nonNull(lib.EVP_aes_128_gcm(), "load AES-128-GCM"),
    "aes-256-gcm": nonNull(lib.EVP_aes_256_gcm(), "load AES-256-GCM"),
  };
  // Fetched once: EVP_sha256() would make every HMAC() and EVP_Digest()
  // look the algorithm up again (about 3 us a call in OpenSSL 3.0).
  const sha256md = nonNull(
    lib.EVP_MD_fetch(null, new TextEncoder().encode("SHA256\0"), null),
    "load SHA-256",
  );
  // One context per direction, reused for every record: initializing it
  // again with a key and nonce resets it. Synchronous calls on one thread
  // cannot interleave, so one is enough.
  const encrypt = nonNull(lib.EVP_CIPHER_CTX_new(), "create a cipher context");
  const decrypt = nonNull(lib.EVP_CIPHER_CTX_new(), "create a cipher context");
  const outLength = new Int32Array(1);
  const outLengthBytes = new Uint8Array(outLength.buffer);
  const sizeOut = new BigUint64Array(1);
  const sizeOutBytes = new Uint8Array(sizeOut.buffer);
  const tag = new Uint8Array(TAG);
  const lastCipher = new Map<Deno.PointerObject, Deno.PointerObject>();
  let digestLib: DigestLib | undefined;

  const init = (
    ctx: Deno.PointerObject,
    algorithm: AeadAlgorithm,
    key: Uint8Array,
    nonce: Uint8Array,
    enc: 0 | 1,
  ) => {
    const cipher = ciphers[algorithm];
    // The cipher is set (and the nonce length checked) only when it changes.
    if (lastCipher.get(ctx) !== cipher) {
      if (lib.EVP_CipherInit_ex(ctx, cipher, null, null, null, enc) !== 1) {
        lastCipher.delete(ctx);
        throw new NativeCryptoError("initialize the cipher");
      }
      if (lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, null) !== 1) {
        lastCipher.delete(ctx);
        throw new NativeCryptoError("set the nonce length");
      }
      lastCipher.set(ctx, cipher);
    }
    if (key.length !== (algorithm === "aes-128-gcm" ? 16 : 32) || nonce.length !== 12) {
      throw new RangeError("Wrong AEAD key or nonce length");
    }
    if (lib.EVP_CipherInit_ex(ctx, null, null, key, nonce, enc) !== 1) {
      throw new NativeCryptoError("set the key and nonce");
    }
  };

  // OpenSSL computes the public key whenever it imports a private one (an
  // X25519 operation), so the last private key imported for x25519() is
  // kept: a Noise handshake uses its ephemeral key twice. Long-lived keys
  // go through x25519Static() (below), HPKE's ephemeral through
  // x25519Multi(), which never keeps it.
  let cachedRaw = new Uint8Array(0);
  let cached: { key: Deno.PointerObject; ctx: Deno.PointerObject } | null = null;
  const importPrivate = (raw: Uint8Array): Deno.PointerObject => {
    if (raw.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
    const key = lib.EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, null, raw, 32n);
    if (key === null) throw new NativeCryptoError("import an X25519 private key");
    return key;
  };
  const cachedDeriver = (raw: Uint8Array): Deno.PointerObject => {
    if (cached !== null && same(raw, cachedRaw)) return cached.ctx;
    const key = importPrivate(raw);
    let ctx: Deno.PointerObject;
    try {
      ctx = deriver(key);
    } catch (error) {
      lib.EVP_PKEY_free(key);
      throw error;
    }
    if (cached !== null) {
      lib.EVP_PKEY_CTX_free(cached.ctx);
      lib.EVP_PKEY_free(cached.key);
    }
    cached = { key, ctx };
    cachedRaw = raw.slice();
    return ctx;
  };
  // Long-lived keys (x25519Static), each imported once with its derivation
  // context. They are looked up by their SHA-256, so that the secret never
  // becomes a string (which could not be wiped); the evicted are freed
  // (OpenSSL clears a private key it frees).
  const kept = new LruCache<{ key: Deno.PointerObject; ctx: Deno.PointerObject }>(
    MAX_KEPT_STATIC_KEYS,
    (entry) => {
      lib.EVP_PKEY_CTX_free(entry.ctx);
      lib.EVP_PKEY_free(entry.key);
    },
  );
  const keptId = new Uint8Array(32);
  const keptDeriver = (raw: Uint8Array): Deno.PointerObject => {
    if (raw.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
    if (
      lib.EVP_Digest(raw, 32n, keptId, outLengthBytes, sha256md, null) !== 1 ||
      outLength[0] !== 32
    ) throw new NativeCryptoError("hash");
    const id = String.fromCharCode(...keptId);
    const entry = kept.get(id);
    if (entry !== undefined) return entry.ctx;
    const key = importPrivate(raw);
    let ctx: Deno.PointerObject;
    try {
      ctx = deriver(key);
    } catch (error) {
      lib.EVP_PKEY_free(key);
      throw error;
    }
    kept.add(id, { key, ctx });
    return ctx;
  };
  const publicOf = (key: Deno.PointerObject, free: boolean): Uint8Array => {
    try {
      const out = new Uint8Array(32);
      sizeOut[0] = 32n;
      if (lib.EVP_PKEY_get_raw_public_key(key, out, sizeOutBytes) !== 1 || sizeOut[0] !== 32n) {
        throw new NativeCryptoError("compute an X25519 public key");
      }
      return out;
    } finally {
      if (free) lib.EVP_PKEY_free(key);
    }
  };
  // A derivation context for one private key, reused for every peer: only
  // the peer changes between derivations.
  const deriver = (mine: Deno.PointerObject): Deno.PointerObject => {
    const ctx = lib.EVP_PKEY_CTX_new(mine, null);
    if (ctx === null || lib.EVP_PKEY_derive_init(ctx) !== 1) {
      if (ctx !== null) lib.EVP_PKEY_CTX_free(ctx);
      throw new NativeCryptoError("start an X25519 derivation");
    }
    return ctx;
  };
  const derive = (ctx: Deno.PointerObject, publicKey: Uint8Array): Uint8Array => {
    if (publicKey.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
    const theirs = lib.EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, null, publicKey, 32n);
    if (theirs === null) throw new NativeCryptoError("import an X25519 public key");
    try {
      const shared = new Uint8Array(32);
      sizeOut[0] = 32n;
      // OpenSSL refuses an all-zero result (a low-order point) here. The
      // peer is not "validated" first: for X25519 that check only asks
      // whether the key has a public part (every 32 bytes are a valid
      // u-coordinate), and it cost a context allocation per derivation.
      if (
        lib.EVP_PKEY_derive_set_peer_ex(ctx, theirs, 0) !== 1 ||
        lib.EVP_PKEY_derive(ctx, shared, sizeOutBytes) !== 1 || sizeOut[0] !== 32n
      ) throw lowOrder();
      return shared;
    } finally {
      lib.EVP_PKEY_free(theirs);
    }
  };

  return {
    name: "native",
    aeadSealInto(algorithm, key, nonce, aad, plaintext, out) {
      const length = plaintext.length;
      if (out.length < length + TAG) throw new RangeError("The output has no room for the tag");
      init(encrypt, algorithm, key, nonce, 1);
      if (
        aad.length > 0 && lib.EVP_CipherUpdate(encrypt, null, outLengthBytes, aad, aad.length) !== 1
      ) throw new NativeCryptoError("encrypt");
      // out may be plaintext itself (in place): OpenSSL allows exact overlap.
      if (
        length > 0 &&
        (lib.EVP_CipherUpdate(encrypt, out, outLengthBytes, plaintext, length) !== 1 ||
          outLength[0] !== length)
      ) throw new NativeCryptoError("encrypt");
      if (
        lib.EVP_CipherFinal_ex(encrypt, tag, outLengthBytes) !== 1 || outLength[0] !== 0 ||
        lib.EVP_CIPHER_CTX_ctrl(encrypt, EVP_CTRL_AEAD_GET_TAG, TAG, tag) !== 1
      ) throw new NativeCryptoError("encrypt");
      out.set(tag, length);
    },
    aeadOpenInto(algorithm, key, nonce, aad, sealed, out) {
      if (sealed.length < TAG) return false;
      const length = sealed.length - TAG;
      if (out.length < length) throw new RangeError("The output has no room for the plaintext");
      init(decrypt, algorithm, key, nonce, 0);
      // Copied first: in place, the plaintext would overwrite the tag.
      tag.set(sealed.subarray(length));
      if (lib.EVP_CIPHER_CTX_ctrl(decrypt, EVP_CTRL_AEAD_SET_TAG, TAG, tag) !== 1) {
        throw new NativeCryptoError("decrypt");
      }
      if (
        aad.length > 0 && lib.EVP_CipherUpdate(decrypt, null, outLengthBytes, aad, aad.length) !== 1
      ) throw new NativeCryptoError("decrypt");
      if (
        length > 0 &&
        (lib.EVP_CipherUpdate(decrypt, out, outLengthBytes, sealed.subarray(0, length), length) !==
            1 || outLength[0] !== length)
      ) throw new NativeCryptoError("decrypt");
      if (lib.EVP_CipherFinal_ex(decrypt, tag, outLengthBytes) !== 1) {
        // Unauthenticated bytes never leave: wipe what update() wrote.
        out.fill(0, 0, length);
        return false;
      }
      return true;
    },
    sha256(data) {
      const out = new Uint8Array(32);
      if (
        lib.EVP_Digest(data, BigInt(data.length), out, outLengthBytes, sha256md, null) !== 1 ||
        outLength[0] !== 32
      ) throw new NativeCryptoError("hash");
      return out;
    },
    async sha256Pieces(data, pieceSize, out) {
      const calls: Promise<number>[] = [];
      for (let i = 0, offset = 0; offset < data.length; i++, offset += pieceSize) {
        const piece = data.subarray(offset, offset + pieceSize);
        const digest = out.subarray(i * 32, i * 32 + 32);
        calls.push(lib.EVP_Digest_async(piece, BigInt(piece.length), digest, null, sha256md, null));
      }
      if ((await Promise.all(calls)).some((ok) => ok !== 1)) throw new NativeCryptoError("hash");
    },
    sha256Stream() {
      if (digestLib === undefined) {
        const bound = Deno.dlopen(path, DIGEST_SYMBOLS).symbols;
        checkRunningSha256(() => new NativeSha256(bound, sha256md));
        digestLib = bound;
      }
      return new NativeSha256(digestLib, sha256md);
    },
    hmacSha256(key, data) {
      const out = new Uint8Array(32);
      // A NULL key means "the previous key" to HMAC(): an empty key must be
      // a real (empty) buffer.
      if (key.length === 0) key = ONE_BYTE;
      if (
        lib.HMAC(
            sha256md,
            key,
            key === ONE_BYTE ? 0 : key.length,
            data,
            BigInt(data.length),
            out,
            outLengthBytes,
          ) ===
          null || outLength[0] !== 32
      ) throw new NativeCryptoError("compute an HMAC");
      return out;
    },
    x25519(privateKey, publicKey) {
      return derive(cachedDeriver(privateKey), publicKey);
    },
    x25519Static(privateKey, publicKey) {
      return derive(keptDeriver(privateKey), publicKey);
    },
    x25519PublicOf(privateKey) {
      return publicOf(importPrivate(privateKey), true);
    },
    x25519Multi(privateKey, peers) {
      const key = importPrivate(privateKey);
      let ctx: Deno.PointerObject | null = null;
      try {
        const publicKey = publicOf(key, false);
        ctx = deriver(key);
        return { publicKey, shared: peers.map((peer) => derive(ctx!, peer)) };
      } finally {
        if (ctx !== null) lib.EVP_PKEY_CTX_free(ctx);
        lib.EVP_PKEY_free(key);
      }
    },
    // node:crypto's Ed25519 is two to three times faster than libcrypto
    // 3.0's here: see ./ed25519.ts.
    ed25519Sign,
    ed25519Verify,
    ed25519PublicOf,
  };
}
