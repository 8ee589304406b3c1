/**
 * Exact reads over a byte stream: the sealed-file reader asks for "this
 * many bytes" and "fill this buffer", whatever sizes the stream delivers.
 * A byte stream is read with a BYOB reader, straight into the caller's
 * buffer; another stream's pieces are copied. Buffering is bounded by what
 * the caller asks for plus one delivered piece. Only the files in
 * lib/sealed/ import it.
 *
 * @module
 */

/** The smallest read into a buffer of our own (for fill()). */
const MIN_READ = 64 * 1024;

/** Reads exact amounts from a `ReadableStream<Uint8Array>`. */
export class ByteReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #pieces: Uint8Array[] = [];
  #buffered = 0;
  #done = false;

  /** Reads from `stream`, which this reader locks. */
  constructor(stream: ReadableStream<Uint8Array>) {
    try {
      this.#byob = stream.getReader({ mode: "byob" });
    } catch {
      this.#reader = stream.getReader();
    }
  }

  /** The bytes read from the stream and not yet taken. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Reads until at least `count` bytes are buffered or the stream ends.
   *
   * @returns Whether `count` bytes are buffered.
   */
  async fill(count: number): Promise<boolean> {
    while (this.#buffered < count && !this.#done) {
      const piece = await this.#read(Math.max(MIN_READ, count - this.#buffered));
      if (piece && piece.length > 0) {
        this.#pieces.push(piece);
        this.#buffered += piece.length;
      }
    }
    return this.#buffered >= count;
  }

  /** Removes and returns the first `count` buffered bytes (a copy or a view). */
  take(count: number): Uint8Array {
    if (count > this.#buffered) throw new RangeError("Not enough bytes buffered");
    const first = this.#pieces[0];
    if (first && first.length >= count) {
      const out = first.subarray(0, count);
      this.#drop(count);
      return out;
    }
    const out = new Uint8Array(count);
    this.#copyTo(out);
    this.#drop(count);
    return out;
  }

  /** Copies up to `target.length` buffered bytes into `target`, keeping them. */
  peek(target: Uint8Array): number {
    return this.#copyTo(target);
  }

  /**
   * Fills `target` from the stream, short only when it ends. With a byte
   * stream the reads land in `target`'s buffer, which is transferred: use
   * the returned view, on the same memory, from then on.
   *
   * @returns The filled part of the buffer.
   */
  async readInto(target: Uint8Array): Promise<Uint8Array> {
    let filled = Math.min(this.#buffered, target.length);
    this.#copyTo(target.subarray(0, filled));
    this.#drop(filled);
    // Kept apart: a transferred buffer's old views read as empty.
    const size = target.length;
    let buffer = target;
    while (filled < size && !this.#done) {
      if (this.#byob) {
        const { value, done } = await this.#byob.read(buffer.subarray(filled));
        if (value) buffer = new Uint8Array(value.buffer, value.byteOffset - filled, size);
        if (done) this.#done = true;
        filled += value?.length ?? 0;
      } else {
        const piece = await this.#read(MIN_READ);
        if (!piece) continue;
        const part = piece.subarray(0, size - filled);
        buffer.set(part, filled);
        filled += part.length;
        if (part.length < piece.length) {
          this.#pieces.push(piece.subarray(part.length));
          this.#buffered += piece.length - part.length;
        }
      }
    }
    return buffer.subarray(0, filled);
  }

  /** The rest of the bytes, buffered ones first, as a stream of its own. */
  rest(): ReadableStream<Uint8Array> {
    return ReadableStream.from(this.#restPieces());
  }

  async *#restPieces(): AsyncGenerator<Uint8Array> {
    let finished = false;
    try {
      while (await this.fill(1)) yield this.take(this.buffered);
      finished = true;
    } finally {
      if (!finished) await this.cancel();
    }
  }

  /** Stops reading and cancels the stream. */
  async cancel(reason?: unknown): Promise<void> {
    this.#pieces = [];
    this.#buffered = 0;
    this.#done = true;
    await (this.#byob ?? this.#reader)!.cancel(reason).catch(() => {});
  }

  /** One read: up to `size` bytes into a new buffer with BYOB, else whatever piece comes. */
  async #read(size: number): Promise<Uint8Array | undefined> {
    if (this.#byob) {
      const { value, done } = await this.#byob.read(new Uint8Array(size));
      if (done) this.#done = true;
      return value;
    }
    const { value, done } = await this.#reader!.read();
    if (done) this.#done = true;
    return value;
  }

  #copyTo(target: Uint8Array): number {
    let offset = 0;
    for (const piece of this.#pieces) {
      if (offset >= target.length) break;
      const part = piece.subarray(0, target.length - offset);
      target.set(part, offset);
      offset += part.length;
    }
    return offset;
  }

  #drop(count: number): void {
    this.#buffered -= count;
    while (count > 0) {
      const first = this.#pieces[0];
      if (first.length <= count) {
        this.#pieces.shift();
        count -= first.length;
      } else {
        this.#pieces[0] = first.subarray(count);
        count = 0;
      }
    }
  }
}
