/**
 * The native backend's AEADs (ChaCha20-Poly1305, AES-GCM) on OpenSSL's
 * EVP_CIPHER_CTX.
 *
 * @module
 */

import {
  EVP_CTRL_AEAD_GET_TAG,
  EVP_CTRL_AEAD_SET_IVLEN,
  EVP_CTRL_AEAD_SET_TAG,
  type Lib,
  NativeCryptoError,
  nonNull,
  OutLengths,
} from "./_native_lib.ts";
import type { AeadAlgorithm, Backend } from "./types.ts";

const TAG = 16;

/** The backend's AEAD functions over `lib`. */
export function nativeAead(lib: Lib): Pick<Backend, "aeadSealInto" | "aeadOpenInto"> {
  // One context per direction, reused for every record: initializing it
  // again with a key and nonce resets it. Synchronous calls on one thread
  // cannot interleave, so one is enough.
  const encrypt = nonNull(lib.EVP_CIPHER_CTX_new(), "create a cipher context");
  const decrypt = nonNull(lib.EVP_CIPHER_CTX_new(), "create a cipher context");
  const init = cipherInit(lib);
  const out = new OutLengths();
  const tag = new Uint8Array(TAG);
  return {
    aeadSealInto(algorithm, key, nonce, aad, plaintext, sealed) {
      const length = plaintext.length;
      if (sealed.length < length + TAG) throw new RangeError("The output has no room for the tag");
      init(encrypt, algorithm, key, nonce, 1);
      if (
        aad.length > 0 && lib.EVP_CipherUpdate(encrypt, null, out.intBytes, aad, aad.length) !== 1
      ) throw new NativeCryptoError("encrypt");
      // sealed may be plaintext itself (in place): OpenSSL allows exact overlap.
      if (
        length > 0 &&
        (lib.EVP_CipherUpdate(encrypt, sealed, out.intBytes, plaintext, length) !== 1 ||
          out.int[0] !== length)
      ) throw new NativeCryptoError("encrypt");
      if (
        lib.EVP_CipherFinal_ex(encrypt, tag, out.intBytes) !== 1 || out.int[0] !== 0 ||
        lib.EVP_CIPHER_CTX_ctrl(encrypt, EVP_CTRL_AEAD_GET_TAG, TAG, tag) !== 1
      ) throw new NativeCryptoError("encrypt");
      sealed.set(tag, length);
    },
    aeadOpenInto(algorithm, key, nonce, aad, sealed, plaintext) {
      if (sealed.length < TAG) return false;
      const length = sealed.length - TAG;
      if (plaintext.length < length) {
        throw new RangeError("The output has no room for the plaintext");
      }
      init(decrypt, algorithm, key, nonce, 0);
      // Copied first: in place, the plaintext would overwrite the tag.
      tag.set(sealed.subarray(length));
      if (lib.EVP_CIPHER_CTX_ctrl(decrypt, EVP_CTRL_AEAD_SET_TAG, TAG, tag) !== 1) {
        throw new NativeCryptoError("decrypt");
      }
      if (
        aad.length > 0 && lib.EVP_CipherUpdate(decrypt, null, out.intBytes, aad, aad.length) !== 1
      ) throw new NativeCryptoError("decrypt");
      if (
        length > 0 &&
        (lib.EVP_CipherUpdate(
              decrypt,
              plaintext,
              out.intBytes,
              sealed.subarray(0, length),
              length,
            ) !==
            1 || out.int[0] !== length)
      ) throw new NativeCryptoError("decrypt");
      if (lib.EVP_CipherFinal_ex(decrypt, tag, out.intBytes) !== 1) {
        // Unauthenticated bytes never leave: wipe what update() wrote.
        plaintext.fill(0, 0, length);
        return false;
      }
      return true;
    },
  };
}

type CipherInit = (
  ctx: Deno.PointerObject,
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  enc: 0 | 1,
) => void;

// Sets a context's cipher, key and nonce for one record.
function cipherInit(lib: Lib): CipherInit {
  const ciphers: Record<AeadAlgorithm, Deno.PointerObject> = {
    "chacha20-poly1305": nonNull(lib.EVP_chacha20_poly1305(), "load ChaCha20-Poly1305"),
    "aes-128-gcm": nonNull(lib.EVP_aes_128_gcm(), "load AES-128-GCM"),
    "aes-256-gcm": nonNull(lib.EVP_aes_256_gcm(), "load AES-256-GCM"),
  };
  const lastCipher = new Map<Deno.PointerObject, Deno.PointerObject>();
  return (ctx, algorithm, key, nonce, enc) => {
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
}
