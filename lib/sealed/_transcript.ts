/**
 * The transcript the payload signature covers:
 * `T = SHA-256(header || SHA-256(chunk 0) || SHA-256(chunk 1) || ...)`, over
 * the chunks as sealed. Only the files in lib/sealed/ import it.
 *
 * Why a second signature, when the header is already signed: every
 * recipient knows the file key, so a recipient could keep the sender's
 * signed header and seal chunks of its own under the same key for the other
 * recipients. The header signature cannot tell; a signature over a
 * collision-resistant hash of every chunk can. (The chunks' Poly1305 tags
 * cannot stand in for the hash: whoever knows the key can make two chunks
 * with the same tag.) Hashing each chunk on its own lets the chunks be
 * hashed in parallel; the digests are then hashed in order.
 *
 * @module
 */

import { concat } from "../bytes.ts";
import { ed25519Sign, ed25519VerifyOnce, type Sha256Stream, sha256Stream } from "../crypto/mod.ts";
import { PAYLOAD_SIGNATURE_CONTEXT } from "./format.ts";

/** The running transcript of one sealed file. */
export class Transcript {
  #hash: Sha256Stream;

  /** Starts with the header's bytes, its signature included. */
  constructor(header: Uint8Array) {
    this.#hash = sha256Stream().update(header);
  }

  /** Adds the digests of the next chunks, in order. */
  add(digests: Uint8Array): void {
    this.#hash.update(digests);
  }

  /** Signs the transcript; ends it. */
  async sign(ed25519Private: Uint8Array): Promise<Uint8Array> {
    return await ed25519Sign(ed25519Private, this.#message());
  }

  /** Checks a signature over the transcript; ends it. */
  async verify(ed25519Public: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return await ed25519VerifyOnce(ed25519Public, signature, this.#message());
  }

  #message(): Uint8Array {
    return concat(PAYLOAD_SIGNATURE_CONTEXT, this.#hash.digest());
  }
}
