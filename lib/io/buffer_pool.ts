/**
 * Buffers of one size, reused instead of allocated anew. Two reasons:
 * - Connections share them, so that a connection holds a large buffer only
 *   while data is in flight on it: an idle connection costs a few KiB
 *   instead of the 192 KiB its frame reader and record writer used to keep
 *   (issue 17).
 * - Allocating a fresh 1 MiB buffer costs about 0.4 ms here (mmap, page
 *   faults, zeroing), copying one about 0.07 ms: at one allocation per MiB
 *   and per stage that was a third of the time to seal a large file.
 *
 * @module
 */

/** A bounded free list of buffers of `size` bytes. */
export class BufferPool {
  /** The size of every buffer this pool hands out. */
  readonly size: number;
  #free: Uint8Array[] = [];
  #maxFree: number;

  /** Keeps at most `maxFreeBytes` of free buffers (at least one). */
  constructor(size: number, maxFreeBytes: number) {
    this.size = size;
    this.#maxFree = Math.max(1, Math.floor(maxFreeBytes / size));
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }

  /** A buffer of `size` bytes, from the free list or new. Its contents are undefined. */
  take(): Uint8Array {
    return this.#free.pop() ?? new Uint8Array(this.size);
  }

  /**
   * Gives a buffer back for reuse, whole even when `bytes` views part of it
   * (or is the ArrayBuffer itself, as a worker hands it back); the caller
   * must not touch it again. A buffer of another size (or a detached one) is
   * left to the collector.
   */
  give(bytes: Uint8Array | ArrayBuffer): void {
    const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.buffer;
    if (buffer.byteLength !== this.size || this.#free.length >= this.#maxFree) return;
    const whole = bytes instanceof Uint8Array && bytes.byteLength === this.size;
    this.#free.push(whole ? bytes : new Uint8Array(buffer));
  }
}
