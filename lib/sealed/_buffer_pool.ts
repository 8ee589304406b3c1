/**
 * Reused batch buffers. Allocating a fresh 1 MiB buffer costs about 0.4 ms
 * here (mmap, page faults, zeroing), copying one about 0.07 ms: at one
 * allocation per MiB and per stage that was a third of the time to seal a
 * large file, so batches come from a pool and go back to it. Only the files
 * in lib/sealed/ import it.
 *
 * @module
 */

/** Buffers of one size, reused. */
export class BufferPool {
  #size: number;
  #free: ArrayBuffer[] = [];
  #limit: number;

  /** A pool of `size`-byte buffers keeping at most `limit` free ones. */
  constructor(size: number, limit = 16) {
    this.#size = size;
    this.#limit = limit;
  }

  /** A buffer of the pool's size: a free one, or a new one. */
  get(): Uint8Array {
    const buffer = this.#free.pop();
    return buffer ? new Uint8Array(buffer) : new Uint8Array(this.#size);
  }

  /** Gives a buffer back; one of another size, or detached, is dropped. */
  put(bytes: Uint8Array | ArrayBuffer): void {
    const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.buffer as ArrayBuffer;
    if (buffer.byteLength !== this.#size || this.#free.length >= this.#limit) return;
    this.#free.push(buffer);
  }
}
