/**
 * The two Noise AEAD ciphers, ChaChaPoly and AESGCM, with Noise's nonce
 * encodings, on the crypto backend of lib/crypto/mod.ts (OpenSSL through
 * FFI, or node:crypto). No primitive is written here.
 *
 * @module
 */

import { type AeadAlgorithm, aeadOpenInto, aeadSealInto } from "../../crypto/mod.ts";

/** Length of the authentication tag appended to every ciphertext. */
export const TAG_LENGTH = 16;

/**
 * Bytes that {@linkcode Aead.seal} leaves free in front of the ciphertext it
 * returns (the view starts this far into its own, fresh buffer), so that the
 * channel can write a frame's 16-bit length there instead of copying every
 * record once more.
 */
export const SEAL_HEADROOM = 2;

/** The cipher names as they appear in a Noise protocol name. */
export type CipherName = "ChaChaPoly" | "AESGCM";

/** Thrown when a ciphertext fails authentication. */
export class DecryptError extends Error {
  /** Creates the error. */
  constructor(message = "Decryption failed: message authentication failed") {
    super(message);
    this.name = "DecryptError";
  }
}

/** An AEAD cipher with Noise's 64-bit counter nonce. */
export interface Aead {
  /** The Noise name of the cipher. */
  readonly name: CipherName;
  /**
   * Encrypts and appends the 16-byte tag. The result is a view into a fresh
   * buffer that has {@linkcode SEAL_HEADROOM} unused bytes before it.
   */
  seal(
    key: Uint8Array,
    counter: number,
    ad: Uint8Array,
    plaintext: Uint8Array,
  ): Uint8Array;
  /**
   * Encrypts `plaintext` into `out` (ciphertext, then the tag): `out` may be
   * the plaintext's own buffer, 16 bytes longer, to encrypt in place.
   */
  sealInto(
    key: Uint8Array,
    counter: number,
    ad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
  ): void;
  /** Checks the tag and decrypts; throws DecryptError when it fails. */
  open(
    key: Uint8Array,
    counter: number,
    ad: Uint8Array,
    ciphertext: Uint8Array,
  ): Uint8Array;
  /**
   * Checks the tag and decrypts into `out` (which may be `ciphertext`'s own
   * buffer); throws DecryptError, having released nothing, when it fails.
   */
  openInto(
    key: Uint8Array,
    counter: number,
    ad: Uint8Array,
    ciphertext: Uint8Array,
    out: Uint8Array,
  ): void;
}

function makeAead(name: CipherName, algorithm: AeadAlgorithm, littleEndian: boolean): Aead {
  // Noise encodes the counter into the last 8 bytes of a 96-bit nonce, little
  // endian for ChaChaPoly and big endian for AESGCM (Noise spec section 12).
  // One nonce buffer per cipher: every call is synchronous.
  const nonceBytes = new Uint8Array(12);
  const nonceView = new DataView(nonceBytes.buffer);
  const nonce = (counter: number) => {
    const high = Math.floor(counter / 2 ** 32);
    const low = counter >>> 0;
    if (littleEndian) {
      nonceView.setUint32(4, low, true);
      nonceView.setUint32(8, high, true);
    } else {
      nonceView.setUint32(4, high);
      nonceView.setUint32(8, low);
    }
    return nonceBytes;
  };
  const sealInto: Aead["sealInto"] = (key, counter, ad, plaintext, out) => {
    aeadSealInto(algorithm, key, nonce(counter), ad, plaintext, out);
  };
  const openInto: Aead["openInto"] = (key, counter, ad, ciphertext, out) => {
    if (!aeadOpenInto(algorithm, key, nonce(counter), ad, ciphertext, out)) {
      throw new DecryptError();
    }
  };
  return {
    name,
    sealInto,
    openInto,
    seal(key, counter, ad, plaintext) {
      const out = new Uint8Array(SEAL_HEADROOM + plaintext.length + TAG_LENGTH);
      const sealed = out.subarray(SEAL_HEADROOM);
      sealInto(key, counter, ad, plaintext, sealed);
      return sealed;
    },
    open(key, counter, ad, ciphertext) {
      if (ciphertext.length < TAG_LENGTH) throw new DecryptError();
      const out = new Uint8Array(ciphertext.length - TAG_LENGTH);
      openInto(key, counter, ad, ciphertext, out);
      return out;
    },
  };
}

/** ChaCha20-Poly1305 (RFC 8439) with Noise's little-endian nonce. */
export const CHACHA_POLY: Aead = makeAead("ChaChaPoly", "chacha20-poly1305", true);

/** AES-256-GCM with Noise's big-endian nonce. */
export const AES_GCM: Aead = makeAead("AESGCM", "aes-256-gcm", false);

/** Returns the cipher with the given Noise name. */
export function aeadByName(name: CipherName): Aead {
  return name === "ChaChaPoly" ? CHACHA_POLY : AES_GCM;
}
