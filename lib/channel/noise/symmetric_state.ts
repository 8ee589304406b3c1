import { utf8 } from "../../bytes.ts";
import { hkdfExpand, hkdfExtract, sha256 } from "../../crypto/mod.ts";
import type { Aead } from "./aead.ts";
import { CipherState } from "./cipher_state.ts";

/** SHA-256's output length, Noise's HASHLEN. */
export const HASH_LENGTH = 32;

const EMPTY = new Uint8Array(0);

/**
 * Noise HKDF(chaining_key, input_key_material, n) (spec section 4.3). It is
 * exactly HKDF-SHA256 with the chaining key as salt and empty info.
 *
 * Hashing and HKDF are the crypto backend's synchronous calls: a handshake
 * makes about 40 of them, and each WebCrypto call costs 35-70 us of
 * promise and thread hops for microseconds of work (measured in bench/).
 */
function noiseHkdf(
  chainingKey: Uint8Array,
  inputKeyMaterial: Uint8Array,
  outputs: 2 | 3,
): Uint8Array[] {
  const okm = hkdfExpand(hkdfExtract(chainingKey, inputKeyMaterial), EMPTY, outputs * HASH_LENGTH);
  const result = [];
  for (let i = 0; i < outputs; i++) {
    result.push(okm.slice(i * HASH_LENGTH, (i + 1) * HASH_LENGTH));
  }
  return result;
}

/** A Noise SymmetricState (spec section 5.2): ck, h and a CipherState. */
export class SymmetricState {
  #aead: Aead;
  #chainingKey: Uint8Array;
  #hash: Uint8Array;
  #cipher: CipherState;

  private constructor(aead: Aead, h: Uint8Array) {
    this.#aead = aead;
    this.#hash = h;
    this.#chainingKey = h;
    this.#cipher = new CipherState(aead);
  }

  /** InitializeSymmetric(protocol_name). */
  static initialize(aead: Aead, protocolName: string): SymmetricState {
    const name = utf8(protocolName);
    let h: Uint8Array;
    if (name.length <= HASH_LENGTH) {
      h = new Uint8Array(HASH_LENGTH);
      h.set(name);
    } else {
      h = sha256(name);
    }
    return new SymmetricState(aead, h);
  }

  /** The handshake hash h. */
  get handshakeHash(): Uint8Array {
    return this.#hash.slice();
  }

  /** Whether a key has been mixed in yet. */
  get hasKey(): boolean {
    return this.#cipher.hasKey;
  }

  /** MixKey(input_key_material). */
  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempK] = noiseHkdf(this.#chainingKey, inputKeyMaterial, 2);
    this.#chainingKey = ck;
    this.#cipher = new CipherState(this.#aead, tempK);
  }

  /** MixHash(data). */
  mixHash(data: Uint8Array): void {
    this.#hash = sha256(this.#hash, data);
  }

  /** EncryptAndHash(plaintext). */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.#cipher.encryptWithAd(this.#hash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** DecryptAndHash(ciphertext). */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.#cipher.decryptWithAd(this.#hash, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Split(): the initiator's sending and receiving CipherStates. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = noiseHkdf(this.#chainingKey, EMPTY, 2);
    return [new CipherState(this.#aead, k1), new CipherState(this.#aead, k2)];
  }
}
