/**
 * STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015), as age uses it: the
 * payload is cut into 64 KiB chunks, each sealed with ChaCha20-Poly1305
 * under the payload key with the nonce `counter (11 bytes, big-endian) ||
 * last (1 byte)`. The counter fixes each chunk's position, so reordering is
 * caught; the last-chunk flag marks the end, so a file cut at a chunk
 * boundary is caught. Each sealed chunk's SHA-256 feeds the transcript that
 * the payload signature covers (see transcript.ts).
 *
 * The functions work on batches of chunks in caller-provided buffers, so
 * that the same code runs in this thread or in a worker (_chunk_worker.ts).
 *
 * @module
 */

import { aeadOpen, aeadOpenInto, aeadSealInto, sha256 as digest } from "../crypto/mod.ts";
import { CHUNK_CIPHERTEXT_SIZE, CHUNK_SIZE, TAG_SIZE } from "./format.ts";

/**
 * The highest chunk index. The nonce has room for 2^88 chunks; JavaScript
 * numbers are exact up to 2^53, so the counter stops there rather than
 * wrap, which would reuse a nonce under the same key (2^53 chunks are 512
 * EiB: no real file reaches it).
 */
export const MAX_CHUNK_INDEX: number = Number.MAX_SAFE_INTEGER - 1;

/** Length of a chunk digest in the transcript. */
export const DIGEST_SIZE = 32;

/**
 * The nonce of chunk `index`: 11-byte big-endian counter, then 1 for the
 * last chunk and 0 for the others.
 *
 * @param index The 0-based chunk index.
 * @param last Whether this is the file's last chunk.
 * @returns The 12-byte nonce.
 */
export function chunkNonce(index: number, last: boolean): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index > MAX_CHUNK_INDEX) {
    throw new RangeError(`Chunk index ${index} is out of range: the counter must not wrap`);
  }
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  view.setUint32(3, Math.floor(index / 2 ** 32));
  view.setUint32(7, index >>> 0);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** A batch of chunks to seal: consecutive 64 KiB pieces of plaintext. */
export interface SealBatch {
  /** The index of the batch's first chunk. */
  first: number;
  /** The plaintext: full chunks, and a shorter last one only when `last` is set. */
  plaintext: Uint8Array;
  /** Whether the batch's last chunk is the file's last. */
  last: boolean;
}

/** How many chunks a plaintext of `length` bytes makes (an empty file makes one). */
export function chunkCount(length: number): number {
  return Math.max(1, Math.ceil(length / CHUNK_SIZE));
}

/**
 * Seals a batch into `out` (sealed chunks back to back) and writes each
 * sealed chunk's SHA-256 into `digests`.
 *
 * @param key The payload key.
 * @param batch The chunks.
 * @param out Room for the sealed chunks: plaintext length + 16 per chunk.
 * @param digests Room for 32 bytes per chunk; null: the caller hashes.
 * @returns The number of bytes written to `out`.
 */
export function sealChunks(
  key: Uint8Array,
  batch: SealBatch,
  out: Uint8Array,
  digests: Uint8Array | null,
): number {
  const { plaintext, first, last } = batch;
  const count = chunkCount(plaintext.length);
  if (!last && plaintext.length !== count * CHUNK_SIZE) {
    throw new RangeError("Only the file's last chunk may be shorter than 64 KiB");
  }
  let written = 0;
  for (let i = 0; i < count; i++) {
    const piece = plaintext.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE);
    const nonce = chunkNonce(first + i, last && i === count - 1);
    const length = piece.length + TAG_SIZE;
    const sealed = out.subarray(written, written + length);
    aeadSealInto("chacha20-poly1305", key, nonce, EMPTY, piece, sealed);
    digests?.set(sha256(sealed), i * DIGEST_SIZE);
    written += length;
  }
  return written;
}

/**
 * Opens a batch of full, non-last chunks into `out`, stopping at the first
 * that fails. Only chunks that verified are written; the caller releases
 * nothing past the count returned.
 *
 * @param key The payload key.
 * @param first The index of the first chunk.
 * @param ciphertext Whole sealed chunks of 64 KiB + 16 bytes.
 * @param out Room for 64 KiB per chunk.
 * @param digests Room for 32 bytes per chunk; null: the caller hashes.
 * @returns How many chunks verified (all of them unless one failed).
 */
export function openChunks(
  key: Uint8Array,
  first: number,
  ciphertext: Uint8Array,
  out: Uint8Array,
  digests: Uint8Array | null,
): number {
  const count = ciphertext.length / CHUNK_CIPHERTEXT_SIZE;
  if (!Number.isInteger(count)) throw new RangeError("A batch holds whole chunks");
  for (let i = 0; i < count; i++) {
    const sealed = ciphertext.subarray(i * CHUNK_CIPHERTEXT_SIZE, (i + 1) * CHUNK_CIPHERTEXT_SIZE);
    const plaintext = out.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE);
    if (
      !aeadOpenInto(
        "chacha20-poly1305",
        key,
        chunkNonce(first + i, false),
        EMPTY,
        sealed,
        plaintext,
      )
    ) {
      return i;
    }
    digests?.set(sha256(sealed), i * DIGEST_SIZE);
  }
  return count;
}

/**
 * Opens one chunk; `undefined` when it fails authentication.
 *
 * @param key The payload key.
 * @param index The chunk index.
 * @param last Whether to open it as the last chunk.
 * @param sealed The sealed chunk (16 to 64 KiB + 16 bytes).
 * @returns The plaintext, or undefined.
 */
export function openChunk(
  key: Uint8Array,
  index: number,
  last: boolean,
  sealed: Uint8Array,
): Uint8Array | undefined {
  if (sealed.length < TAG_SIZE || sealed.length > CHUNK_CIPHERTEXT_SIZE) return undefined;
  return aeadOpen("chacha20-poly1305", key, chunkNonce(index, last), EMPTY, sealed);
}

/** SHA-256 of one sealed chunk, as the transcript takes it. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return digest(bytes);
}

const EMPTY = new Uint8Array(0);
