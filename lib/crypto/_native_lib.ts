/**
 * What the native backend's parts share: libcrypto's functions as bound
 * (the start-up set, and the running SHA-256's set bound on first use), the
 * error thrown when a call fails, and OpenSSL's constants.
 *
 * @module
 */

/** The functions bound at start-up. */
export const SYMBOLS = {
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
  // X25519 and Ed25519 keys through EVP_PKEY (the only public way in OpenSSL 3).
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
  // Ed25519 (./_native_ed25519.ts): one-shot EVP_DigestSign and
  // EVP_DigestVerify on a context made for each.
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
  // int EVP_DigestSignInit(ctx, pctx, type, engine, pkey)
  EVP_DigestSignInit: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // int EVP_DigestSign(ctx, sig, siglen, tbs, tbslen): one shot, as Ed25519 requires.
  EVP_DigestSign: { parameters: ["pointer", "buffer", "buffer", "buffer", "usize"], result: "i32" },
  // int EVP_DigestVerifyInit(ctx, pctx, type, engine, pkey)
  EVP_DigestVerifyInit: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // int EVP_DigestVerify(ctx, sig, siglen, tbs, tbslen): 1 valid, 0 not, < 0 an error.
  EVP_DigestVerify: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
} as const;

/** libcrypto's functions, as bound at start-up. */
export type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/**
 * The running SHA-256's functions (./native_sha256.ts), bound on its first
 * use by a second dlopen() of the same library: binding costs about 0.3 ms
 * a symbol at start-up, which `ovtp send` does not need to pay for them.
 */
export const DIGEST_SYMBOLS = {
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
export const EVP_CTRL_AEAD_SET_IVLEN = 0x9;
export const EVP_CTRL_AEAD_GET_TAG = 0x10;
export const EVP_CTRL_AEAD_SET_TAG = 0x11;
export const EVP_PKEY_X25519 = 1034;
export const EVP_PKEY_ED25519 = 1087;

/** Thrown when a libcrypto call fails where it must not. */
export class NativeCryptoError extends Error {
  /** Creates the error. */
  constructor(what: string) {
    super(`Cannot ${what}: the native crypto library (OpenSSL) reported an error`);
    this.name = "NativeCryptoError";
  }
}

/** `pointer`, or a NativeCryptoError naming `what` when it is NULL. */
export function nonNull(pointer: Deno.PointerValue, what: string): Deno.PointerObject {
  if (pointer === null) throw new NativeCryptoError(what);
  return pointer;
}

/**
 * Out-parameters that libcrypto writes lengths into, allocated once per
 * builder: synchronous calls on one thread cannot interleave.
 */
export class OutLengths {
  /** An int length (EVP_CipherUpdate, EVP_Digest, HMAC). */
  readonly int = new Int32Array(1);
  /** {@linkcode int}'s bytes, as passed to libcrypto. */
  readonly intBytes = new Uint8Array(this.int.buffer);
  /** A size_t length (EVP_PKEY_*). */
  readonly size = new BigUint64Array(1);
  /** {@linkcode size}'s bytes, as passed to libcrypto. */
  readonly sizeBytes = new Uint8Array(this.size.buffer);
}

/**
 * The 32-byte raw public key of `key` (X25519 or Ed25519), or a
 * NativeCryptoError naming `what`; `out` receives the length.
 */
export function rawPublicKey(
  lib: Lib,
  out: OutLengths,
  key: Deno.PointerObject,
  what: string,
): Uint8Array {
  const publicKey = new Uint8Array(32);
  out.size[0] = 32n;
  if (lib.EVP_PKEY_get_raw_public_key(key, publicKey, out.sizeBytes) !== 1 || out.size[0] !== 32n) {
    throw new NativeCryptoError(`compute ${what}`);
  }
  return publicKey;
}
