/**
 * Length-prefixed frames: a 16-bit big-endian length, then that many bytes,
 * as the Noise specification suggests for stream transports (section 13).
 * No crypto here; every read is bounded.
 *
 * @module
 */

/** The largest frame body a 16-bit length can describe, Noise's limit. */
export const MAX_FRAME_LENGTH = 65535;
const HEADER_LENGTH = 2;

/** Thrown for a frame that breaks the rules: too long, or cut short. */
export class FramingError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "FramingError";
  }
}

/** Prepends the 16-bit length to `body`. */
export function encodeFrame(body: Uint8Array): Uint8Array {
  if (body.length > MAX_FRAME_LENGTH) {
    throw new RangeError(
      `Frame body of ${body.length} bytes exceeds ${MAX_FRAME_LENGTH}`,
    );
  }
  const frame = new Uint8Array(HEADER_LENGTH + body.length);
  frame[0] = body.length >> 8;
  frame[1] = body.length & 0xff;
  frame.set(body, HEADER_LENGTH);
  return frame;
}

/** Reads frames from a byte stream. */
export class FrameReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = new Uint8Array(2 * (MAX_FRAME_LENGTH + HEADER_LENGTH));
  #start = 0;
  #end = 0;

  /** Reads from `readable`, which this reader locks. */
  constructor(readable: ReadableStream<Uint8Array>) {
    this.#reader = readable.getReader();
  }

  /**
   * Reads one frame. Returns null at a clean end of stream (between frames);
   * throws FramingError when the stream ends inside a frame or the length
   * exceeds `maxLength`, checked before the body is awaited.
   */
  async read(
    maxLength = MAX_FRAME_LENGTH,
    minLength = 0,
  ): Promise<Uint8Array | null> {
    if (!await this.#fill(HEADER_LENGTH)) {
      if (this.#end === this.#start) return null;
      throw new FramingError("The stream ended inside a frame header");
    }
    const length = (this.#buffer[this.#start] << 8) |
      this.#buffer[this.#start + 1];
    if (length > maxLength || length < minLength) {
      throw new FramingError(
        `Frame length ${length} is outside the allowed ${minLength}..${maxLength}`,
      );
    }
    if (!await this.#fill(HEADER_LENGTH + length)) {
      throw new FramingError(
        `The stream ended inside a frame of ${length} bytes`,
      );
    }
    const bodyStart = this.#start + HEADER_LENGTH;
    const body = this.#buffer.slice(bodyStart, bodyStart + length);
    this.#start = bodyStart + length;
    return body;
  }

  /** Stops reading and releases the stream. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  // Ensures `count` buffered bytes; false at end of stream.
  async #fill(count: number): Promise<boolean> {
    while (this.#end - this.#start < count) {
      const { value, done } = await this.#reader.read();
      if (done) return false;
      this.#append(value);
    }
    return true;
  }

  #append(chunk: Uint8Array): void {
    const held = this.#end - this.#start;
    if (this.#end + chunk.length > this.#buffer.length) {
      // Compact, and grow only if the held bytes plus the chunk need it.
      const size = Math.max(this.#buffer.length, held + chunk.length);
      const next = size > this.#buffer.length ? new Uint8Array(size) : this.#buffer;
      next.set(this.#buffer.subarray(this.#start, this.#end), 0);
      this.#buffer = next;
      this.#start = 0;
      this.#end = held;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}
