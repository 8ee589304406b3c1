import type { Aead } from "./aead.ts";

/**
 * The largest counter a CipherState uses. Noise reserves 2^64-1; a JS number
 * is exact only up to 2^53-1, so the state refuses to go further rather than
 * silently reuse a nonce. At a million records per second that is 285 years.
 */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER - 1;

/** Thrown when a CipherState has used up its nonces. */
export class NonceExhaustedError extends Error {
  /** Creates the error. */
  constructor() {
    super("Cannot encrypt: the nonce counter is exhausted");
    this.name = "NonceExhaustedError";
  }
}

/**
 * A Noise CipherState (spec section 5.1): a key and a counter nonce. Without
 * a key it passes data through unchanged, as the spec requires during the
 * first handshake messages.
 */
export class CipherState {
  #aead: Aead;
  #key: Uint8Array | undefined;
  #counter = 0;

  /** Creates a state for `aead`, with an optional key. */
  constructor(aead: Aead, key?: Uint8Array) {
    this.#aead = aead;
    this.#key = key;
  }

  /** Whether a key is set. */
  get hasKey(): boolean {
    return this.#key !== undefined;
  }

  /** The next nonce value (for tests and diagnostics). */
  get counter(): number {
    return this.#counter;
  }

  /** Encrypts `plaintext` with `ad`, then advances the nonce. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.#key === undefined) return plaintext;
    if (this.#counter > MAX_COUNTER) throw new NonceExhaustedError();
    const out = this.#aead.seal(this.#key, this.#counter, ad, plaintext);
    this.#counter++;
    return out;
  }

  /**
   * Encrypts `plaintext` with `ad` into `out` (16 bytes longer than the
   * plaintext; it may be the plaintext's own buffer), then advances the
   * nonce. Needs a key: it is for transport messages, never the handshake.
   */
  encryptWithAdInto(ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
    if (this.#key === undefined) throw new Error("Cannot encrypt into a buffer without a key");
    if (this.#counter > MAX_COUNTER) throw new NonceExhaustedError();
    this.#aead.sealInto(this.#key, this.#counter, ad, plaintext, out);
    this.#counter++;
  }

  /**
   * Decrypts `ciphertext` with `ad`. The nonce advances only on success, so
   * a forged record leaves the state as it was (spec section 5.1).
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.#key === undefined) return ciphertext;
    if (this.#counter > MAX_COUNTER) throw new NonceExhaustedError();
    const out = this.#aead.open(this.#key, this.#counter, ad, ciphertext);
    this.#counter++;
    return out;
  }
}
