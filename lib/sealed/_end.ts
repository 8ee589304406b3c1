/**
 * Finding the end of a sealed file: the last chunk, the end mark and the
 * payload signature, and telling a truncated file, trailing data and a
 * damaged chunk apart there. Only the files in lib/sealed/ import it.
 *
 * @module
 */

import type { Header } from "./_header.ts";
import { SealedError } from "./errors.ts";
import { CHUNK_CIPHERTEXT_SIZE, CHUNK_SIZE, END_MARK, TAG_SIZE, TRAILER_SIZE } from "./format.ts";
import { openChunk, sha256 } from "./stream.ts";
import type { Transcript } from "./_transcript.ts";

/** The most bytes the end of a file needs at once: the last chunk, the trailer, one more. */
export const END_WINDOW = CHUNK_CIPHERTEXT_SIZE + TRAILER_SIZE + 1;

/**
 * Finds and checks the last chunk and the trailer at the start of `window`
 * (END_WINDOW bytes, or fewer when the input ended), which begins with chunk
 * `index`. Returns the last chunk's plaintext once the payload signature
 * has verified.
 */
export async function findEnd(
  window: Uint8Array,
  index: number,
  header: Header,
  payloadKey: Uint8Array,
  transcript: Transcript,
): Promise<Uint8Array> {
  const more = window.length === END_WINDOW;
  let markSeen = false;
  for (
    let at = indexOf(window, END_MARK, TAG_SIZE);
    at >= 0;
    at = indexOf(window, END_MARK, at + 1)
  ) {
    if (at > CHUNK_CIPHERTEXT_SIZE) break;
    markSeen = true;
    const sealed = window.subarray(0, at);
    const plaintext = openChunk(payloadKey, index, true, sealed);
    if (!plaintext) continue;
    if (plaintext.length === 0 && index > 0) {
      throw new SealedError("malformed", `Chunk ${index} is an empty last chunk after others`, {
        chunk: index,
      });
    }
    const end = at + TRAILER_SIZE;
    if (window.length < end) {
      throw new SealedError("truncated", "The file ends inside its payload signature");
    }
    if (window.length > end) {
      throw new SealedError("trailing-data", "Data follows the end of the sealed file");
    }
    transcript.add(sha256(sealed));
    if (!await transcript.verify(header.sender.ed25519, window.subarray(at + END_MARK.length))) {
      throw new SealedError(
        "payload-signature",
        "The payload signature is not valid: the sender did not seal these chunks",
      );
    }
    return plaintext;
  }
  if (!more && !markSeen) {
    throw new SealedError(
      "truncated",
      `The file ends in or after chunk ${index}, before its last chunk and signature`,
      { chunk: index },
    );
  }
  throw new SealedError(
    "chunk",
    `Chunk ${index} (plaintext offset ${index * CHUNK_SIZE}) fails authentication: ` +
      "it was damaged, moved, or taken from another file",
    { chunk: index },
  );
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  for (
    let at = haystack.indexOf(needle[0], from);
    at >= 0;
    at = haystack.indexOf(needle[0], at + 1)
  ) {
    if (at + needle.length > haystack.length) return -1;
    let match = true;
    for (let i = 1; i < needle.length && match; i++) match = haystack[at + i] === needle[i];
    if (match) return at;
  }
  return -1;
}
