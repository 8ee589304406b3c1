/**
 * Buffers of one size, shared by every connection of the process, so that a
 * connection holds a large buffer only while data is in flight on it: an
 * idle connection costs a few KiB instead of the 192 KiB its frame reader
 * and record writer used to keep (issue 17).
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
   * Gives `buffer` back for reuse; the caller must not touch it again. A
   * buffer of another size (or a detached one) is left to the collector.
   */
  give(buffer: Uint8Array): void {
    if (
      buffer.byteOffset === 0 && buffer.byteLength === this.size &&
      buffer.buffer.byteLength === this.size && this.#free.length < this.#maxFree
    ) {
      this.#free.push(buffer);
    }
  }
}
