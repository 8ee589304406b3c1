/**
 * ChaCha20-Poly1305 (RFC 8439) with an explicit 96-bit nonce, synchronous
 * through node:crypto, for HPKE's per-recipient key wrapping, where
 * WebCrypto's per-call cost (two calls per recipient) dominated the time to
 * seal an envelope for many recipients.
 *
 * @module
 */

import { type CipherGCM, createCipheriv, createDecipheriv, type DecipherGCM } from "node:crypto";

const TAG = 16;

/** Encrypts and appends the tag. */
export function chachaSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  // Node's types know the GCM interface; ChaCha20-Poly1305 has the same.
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: TAG,
  } as never) as unknown as CipherGCM;
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  cipher.final();
  const out = new Uint8Array(body.length + TAG);
  out.set(body);
  out.set(cipher.getAuthTag(), body.length);
  return out;
}

/** Checks the tag and decrypts; throws an Error("Decryption failed") when it fails. */
export function chachaOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  if (ciphertext.length < TAG) throw new Error("Decryption failed");
  const length = ciphertext.length - TAG;
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: TAG,
  } as never) as unknown as DecipherGCM;
  decipher.setAuthTag(ciphertext.subarray(length));
  decipher.setAAD(aad, { plaintextLength: length });
  // Released only after final() has checked the tag.
  const body = decipher.update(ciphertext.subarray(0, length));
  try {
    decipher.final();
  } catch {
    throw new Error("Decryption failed");
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.length);
}

/**
 * Like {@linkcode chachaSeal}, but writes ciphertext and tag into `out` at
 * `offset`, saving an allocation and a copy per call where many chunks go
 * into one buffer (lib/sealed/stream.ts). Returns the bytes written.
 */
export function chachaSealInto(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  out: Uint8Array,
  offset: number,
): number {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: TAG,
  } as never) as unknown as CipherGCM;
  out.set(cipher.update(plaintext), offset);
  cipher.final();
  out.set(cipher.getAuthTag(), offset + plaintext.length);
  return plaintext.length + TAG;
}

/**
 * Like {@linkcode chachaOpen}, but writes the plaintext into `out` at
 * `offset`, only after the tag has verified. Returns false, writing
 * nothing, when it does not.
 */
export function chachaOpenInto(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  out: Uint8Array,
  offset: number,
): boolean {
  if (ciphertext.length < TAG) return false;
  const length = ciphertext.length - TAG;
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: TAG,
  } as never) as unknown as DecipherGCM;
  decipher.setAuthTag(ciphertext.subarray(length));
  const body = decipher.update(ciphertext.subarray(0, length));
  try {
    decipher.final();
  } catch {
    return false;
  }
  out.set(body, offset);
  return true;
}
