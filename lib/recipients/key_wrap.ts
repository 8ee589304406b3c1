/**
 * Wrapping a symmetric key for one recipient with HPKE (RFC 9180): base
 * mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305. The
 * envelope (lib/envelope/envelope.ts) and the sealed-file format (lib/sealed/) both
 * wrap their random key this way; each passes its own `info`, so a wrapped
 * key cannot be moved from one format to the other, and its own associated
 * data, which binds the wrapped key to the sender and to the message.
 *
 * @module
 */

import { setupRecipient, setupSender, setupSenders } from "../crypto/hpke.ts";
import type { Identity } from "../identity/keys.ts";

/** Length of `enc`, the HPKE encapsulated X25519 key. */
export const WRAP_ENC_LENGTH = 32;
/** Length of a wrapped 32-byte key: the key and its 16-byte tag. */
export const WRAPPED_KEY_LENGTH = 32 + 16;

/** What binds a wrapped key to its use. */
export interface WrapOptions {
  /** HPKE `info`: names the format and purpose. */
  info: Uint8Array;
  /** The associated data of the one HPKE `Seal`. */
  aad: Uint8Array;
}

/** A key wrapped for one recipient. */
export interface WrappedKey {
  /** The HPKE encapsulated key (32 bytes). */
  enc: Uint8Array;
  /** The HPKE ciphertext of the key (key length + 16 bytes). */
  wrapped: Uint8Array;
}

/**
 * Wraps `key` for the holder of the X25519 private key matching
 * `recipientX25519`, with a fresh ephemeral key.
 *
 * @param recipientX25519 The recipient's 32-byte X25519 public key.
 * @param key The key to wrap.
 * @param options The HPKE info and associated data.
 * @returns `enc` and the wrapped key.
 */
export function wrapKey(
  recipientX25519: Uint8Array,
  key: Uint8Array,
  options: WrapOptions,
): WrappedKey {
  const { enc, context } = setupSender(recipientX25519, options.info);
  return { enc, wrapped: context.seal(options.aad, key) };
}

/**
 * Wraps `key` for each of `recipientsX25519` with one fresh ephemeral key
 * shared by all of them (the same `enc` in every result): half the X25519
 * work of {@linkcode wrapKey} per recipient. Each recipient's wrapped key is
 * still under a key derived from its own DH and its own public key (a key
 * given twice gets two identical results).
 *
 * @param recipientsX25519 The recipients' 32-byte X25519 public keys.
 * @param key The key to wrap.
 * @param options The HPKE info and associated data.
 * @returns One `enc` and wrapped key per recipient, in order.
 */
export function wrapKeyForAll(
  recipientsX25519: readonly Uint8Array[],
  key: Uint8Array,
  options: WrapOptions,
): WrappedKey[] {
  const { enc, contexts } = setupSenders(recipientsX25519, options.info);
  return contexts.map((context) => ({ enc, wrapped: context.seal(options.aad, key) }));
}

/**
 * Unwraps a key wrapped by {@linkcode wrapKey} for `identity`. Throws when
 * the tag does not verify: wrong recipient, another info or associated data,
 * or altered bytes.
 *
 * @param wrappedKey The `enc` and wrapped key from the stanza.
 * @param identity The recipient's identity.
 * @param options The same info and associated data as when wrapping.
 * @returns The key.
 */
export function unwrapKey(
  wrappedKey: WrappedKey,
  identity: Identity,
  options: WrapOptions,
): Uint8Array {
  const context = setupRecipient(
    wrappedKey.enc,
    { privateKey: identity.x25519Private, publicKey: identity.publicKey.x25519 },
    options.info,
  );
  return context.open(options.aad, wrappedKey.wrapped);
}
