/**
 * The buffers bulk records travel in, shared by every channel of the
 * process, so that a 1 MiB record costs neither a fresh allocation (page
 * faults and zeroing of 256 pages: 12% of the sender's CPU in a perf
 * profile of `ovtp sendfile`) nor garbage that grows the RSS until V8
 * collects it.
 *
 * - Sealed: what one socket write sends: the record that announces the bulk
 *   record (its frame), then the bulk record's ciphertext and tag.
 * - Opened: a received bulk record's plaintext. It is lent to whoever gets
 *   the message; {@linkcode releaseOpened} gives it back, and only the code
 *   that knows it holds no other reference calls it (the file receivers,
 *   once the bytes are on disk). A body never released is simply collected:
 *   reuse is never assumed.
 *
 * @module
 */

import { BufferPool } from "../io/buffer_pool.ts";
import { FRAME_HEADER_LENGTH, MAX_FRAME_LENGTH } from "./framing.ts";
import { TAG_LENGTH } from "./noise/aead.ts";

/** The largest plaintext of one bulk record (docs/protocol.md section 5.1). */
export const MAX_BULK_PLAINTEXT = 1024 * 1024;

/** Sealed writes: the largest frame, then the largest bulk record. */
export const SEALED_POOL = new BufferPool(
  FRAME_HEADER_LENGTH + MAX_FRAME_LENGTH + MAX_BULK_PLAINTEXT + TAG_LENGTH,
  4 * (MAX_BULK_PLAINTEXT + MAX_FRAME_LENGTH),
);

const OPENED_POOL = new BufferPool(MAX_BULK_PLAINTEXT, 4 * MAX_BULK_PLAINTEXT);
// The buffers lent out by takeOpened() and not yet given back: only these
// may enter the pool, so that a caller's own buffer never does.
const lent = new WeakSet<ArrayBufferLike>();

/** A buffer for one received bulk record's plaintext (`size` bytes of it). */
export function takeOpened(size: number): Uint8Array {
  const buffer = OPENED_POOL.take();
  lent.add(buffer.buffer);
  return buffer.subarray(0, size);
}

/**
 * Gives a received bulk record's plaintext back for reuse. Call it only
 * when nothing else holds `body` any more: the next bulk record received may
 * be written into it. Any other buffer is left alone, so it is safe to call
 * on every message body.
 */
export function releaseOpened(body: Uint8Array): void {
  if (!lent.delete(body.buffer)) return;
  OPENED_POOL.give(new Uint8Array(body.buffer));
}
