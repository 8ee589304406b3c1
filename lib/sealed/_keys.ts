/**
 * The two values derived from a sealed file's random file key: the payload
 * key that seals the chunks, and the key commitment that the header carries
 * under the sender's signature. Only the files in lib/sealed/ import it.
 *
 * @module
 */

import { hkdfSha256 } from "../crypto/mod.ts";
import { COMMITMENT_INFO, COMMITMENT_SIZE, PAYLOAD_KEY_INFO } from "./format.ts";

/** The payload key and the key commitment of one file. */
export interface DerivedKeys {
  /** The ChaCha20-Poly1305 key of every chunk. */
  payloadKey: Uint8Array;
  /** What the header commits to: it identifies the file key. */
  commitment: Uint8Array;
}

/**
 * Derives both with HKDF-SHA256 (ikm = file key, salt = the header's nonce).
 *
 * The commitment exists because ChaCha20-Poly1305, in the chunks and in
 * HPKE, is not key-committing: a sender could craft stanzas that unwrap to
 * different file keys for different recipients and a payload that opens
 * under each of them to different text. HKDF-Extract is HMAC-SHA256, which
 * is collision-resistant in its input, so with the commitment signed in the
 * header every recipient either gets the one file key, hence the same
 * plaintext, or refuses the file.
 */
export function deriveKeys(fileKey: Uint8Array, nonce: Uint8Array): DerivedKeys {
  return {
    payloadKey: hkdfSha256(fileKey, nonce, PAYLOAD_KEY_INFO, 32),
    commitment: hkdfSha256(fileKey, nonce, COMMITMENT_INFO, COMMITMENT_SIZE),
  };
}
