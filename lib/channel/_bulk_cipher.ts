/**
 * The cipher of bulk records (docs/protocol.md section 5.1): records far
 * larger than Noise's 65,535-byte limit, for file data, each under a key of
 * its own per direction derived from the channel's split keys, with its own
 * counter nonces.
 *
 * @module
 */

import { type Aead, TAG_LENGTH } from "./noise/aead.ts";
import { type CipherState, MAX_COUNTER, NonceExhaustedError } from "./noise/cipher_state.ts";

const EMPTY = new Uint8Array(0);
const KEY_LENGTH = 32;

/**
 * Derives one direction's bulk key from that direction's transport
 * CipherState: the first 32 bytes of ENCRYPT(k, n, empty, 32 zero bytes),
 * Noise's REKEY construction (spec section 4.2) at the state's next nonce
 * instead of 2^64 - 1, which a CipherState cannot reach. Both ends call it
 * right after Split, the sender on its send state and the receiver on its
 * receive state (the same key), so both spend nonce 0 on it and the
 * direction's first record uses nonce 1. Only the keystream part of that
 * encryption is used; its tag is never revealed.
 */
export function deriveBulkKey(state: CipherState): Uint8Array {
  return state.encryptWithAd(EMPTY, new Uint8Array(KEY_LENGTH)).slice(0, KEY_LENGTH);
}

/** One direction's bulk records: a key and a counter nonce from 0. */
export class BulkCipher {
  #aead: Aead;
  #key: Uint8Array;
  #counter = 0;

  /** Uses `key` (from {@linkcode deriveBulkKey}) with `aead`. */
  constructor(aead: Aead, key: Uint8Array) {
    this.#aead = aead;
    this.#key = key;
  }

  /**
   * Encrypts the next bulk record into one fresh buffer; returns its
   * ciphertext and tag, views of that buffer.
   */
  seal(plaintext: Uint8Array): [ciphertext: Uint8Array, tag: Uint8Array] {
    const out = new Uint8Array(plaintext.length + TAG_LENGTH);
    this.sealInto(plaintext, out);
    return [out.subarray(0, plaintext.length), out.subarray(plaintext.length)];
  }

  /**
   * Encrypts the next bulk record into `out` (plaintext length + 16 bytes),
   * which may be the plaintext's own buffer: in place, no allocation.
   */
  sealInto(plaintext: Uint8Array, out: Uint8Array): void {
    this.#aead.sealInto(this.#key, this.#nextCounter(), EMPTY, plaintext, out);
    this.#counter++;
  }

  /**
   * Decrypts the next bulk record (ciphertext and tag); throws DecryptError
   * when it fails, and the counter then stays where it was.
   */
  open(sealed: Uint8Array): Uint8Array {
    const plaintext = this.#aead.open(this.#key, this.#nextCounter(), EMPTY, sealed);
    this.#counter++;
    return plaintext;
  }

  /**
   * Decrypts the next bulk record (ciphertext and tag) into `out`, which
   * may be `sealed` itself (in place, no allocation). Throws DecryptError,
   * having released nothing, when it fails; the counter then stays where it
   * was.
   */
  openInto(sealed: Uint8Array, out: Uint8Array): void {
    this.#aead.openInto(this.#key, this.#nextCounter(), EMPTY, sealed, out);
    this.#counter++;
  }

  // A counter is never used twice: past the largest, nothing is encrypted.
  #nextCounter(): number {
    if (this.#counter > MAX_COUNTER) throw new NonceExhaustedError();
    return this.#counter;
  }
}
