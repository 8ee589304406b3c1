/**
 * Length-prefixed frames: a 16-bit big-endian length, then that many bytes,
 * as the Noise specification suggests for stream transports (section 13).
 * No crypto here; every read is bounded.
 *
 * @module
 */

import { BufferPool } from "../io/buffer_pool.ts";

/** The largest frame body a 16-bit length can describe, Noise's limit. */
export const MAX_FRAME_LENGTH = 65535;
/** The length prefix of a frame. */
export const FRAME_HEADER_LENGTH = 2;
const HEADER_LENGTH = FRAME_HEADER_LENGTH;
/** Bytes a read may take beyond what it is for: two largest frames. */
const READ_AHEAD = 2 * (HEADER_LENGTH + MAX_FRAME_LENGTH);
/**
 * The buffer a reader with nothing held waits for data in, its own: the
 * only one an idle connection keeps. Small frames never need another.
 */
export const IDLE_READ_BUFFER = 1024;
/**
 * Shared buffers for data in flight, taken when a frame does not fit the
 * idle buffer and given back once everything read has been consumed: room
 * for two largest frames, and for a bulk record of up to 2 MiB with its
 * read-ahead (channel.ts reads 1 MiB ones).
 */
const FRAME_POOL = new BufferPool(2 * (HEADER_LENGTH + MAX_FRAME_LENGTH), 4 * 1024 * 1024);
const LARGE_POOL = new BufferPool(2 * 1024 * 1024 + READ_AHEAD, 8 * 1024 * 1024);

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
  checkBodyLength(body.length);
  const frame = new Uint8Array(HEADER_LENGTH + body.length);
  writeHeader(frame, body.length);
  frame.set(body, HEADER_LENGTH);
  return frame;
}

/**
 * Frames `body` without copying it, by writing the length into the
 * {@linkcode FRAME_HEADER_LENGTH} bytes just before it in its buffer. Only for
 * a body whose buffer was made with that headroom for this purpose (the
 * output of `seal()` in lib/channel/noise/aead.ts): the bytes there are overwritten.
 */
export function encodeFrameInPlace(body: Uint8Array): Uint8Array {
  checkBodyLength(body.length);
  if (body.byteOffset < HEADER_LENGTH) throw new RangeError("No headroom for a frame header");
  const frame = new Uint8Array(
    body.buffer,
    body.byteOffset - HEADER_LENGTH,
    HEADER_LENGTH + body.length,
  );
  writeHeader(frame, body.length);
  return frame;
}

function checkBodyLength(length: number): void {
  if (length > MAX_FRAME_LENGTH) {
    throw new RangeError(`Frame body of ${length} bytes exceeds ${MAX_FRAME_LENGTH}`);
  }
}

function writeHeader(frame: Uint8Array, length: number): void {
  frame[0] = length >> 8;
  frame[1] = length & 0xff;
}

/**
 * Reads frames from a byte stream. While nothing is held it waits for data
 * in a small buffer of its own; a frame or bulk record that does not fit
 * there is read into a shared pooled buffer, given back as soon as all that
 * was read has been consumed.
 */
export class FrameReader {
  #source: ByteSource;
  // The idle buffer, made on the first read.
  #idle: Uint8Array | undefined;
  // Where the held bytes are: the idle buffer, or one from #pool (or an
  // unpooled one for a read larger than the pools').
  #buffer: Uint8Array = new Uint8Array(0);
  #pool: BufferPool | undefined;
  #onIdle = false;
  #start = 0;
  #end = 0;

  /**
   * While a read waits for bytes, when the last ones arrived (or the wait
   * began); undefined when no read is waiting. A client tells a server gone
   * silent from one streaming slowly, or from its own pause, by it.
   */
  waitingSince: number | undefined;

  /**
   * Reads from `source`: a stream, which this reader locks, or anything
   * with a `read(p)` like a `Deno.Conn`'s (read into `p`, resolve the byte
   * count, or null at the end), which costs an idle connection less.
   */
  constructor(source: ReadableStream<Uint8Array> | ByteReader) {
    this.#source = source instanceof ReadableStream ? byteSource(source) : readerSource(source);
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
    return (await this.readView(maxLength, minLength))?.slice() ?? null;
  }

  /**
   * Reads one frame as {@linkcode read} does, but returns a view into the
   * reader's buffer instead of a copy: it is valid only until the next read.
   * For a caller that consumes the body at once (decryption).
   */
  async readView(
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
    this.#start += HEADER_LENGTH;
    return this.#take(length);
  }

  /**
   * Reads exactly `length` bytes that have no length prefix: a bulk record,
   * whose length an authenticated record announced, so the caller has
   * bounded it already. Returns a view valid until the next read; throws
   * FramingError when the stream ends first.
   */
  async readExact(length: number): Promise<Uint8Array> {
    if (!await this.#fill(length)) {
      throw new FramingError(`The stream ended inside a bulk record of ${length} bytes`);
    }
    return this.#take(length);
  }

  /** Stops reading and releases the stream. */
  async cancel(): Promise<void> {
    await this.#source.cancel();
  }

  #take(length: number): Uint8Array {
    const body = this.#buffer.subarray(this.#start, this.#start + length);
    this.#start += length;
    return body;
  }

  // Ensures `count` buffered bytes; false at end of stream. Reads at most
  // READ_AHEAD bytes beyond them, so that little is held (and moved by
  // #makeRoom) when a bulk record's worth is wanted next.
  async #fill(count: number): Promise<boolean> {
    if (this.#end - this.#start >= count) return true;
    if (this.#start === this.#end) this.#release();
    this.#makeRoom(count);
    const limit = Math.min(this.#buffer.length, this.#start + count + READ_AHEAD);
    this.waitingSince = Date.now();
    try {
      while (this.#end - this.#start < count) {
        const filled = await this.#source.read(this.#buffer.subarray(this.#end, limit));
        if (filled === null) return false;
        this.waitingSince = Date.now();
        // A BYOB read hands the memory back in a new ArrayBuffer.
        this.#buffer = new Uint8Array(filled.buffer);
        if (this.#onIdle) this.#idle = this.#buffer;
        this.#end += filled.length;
      }
      return true;
    } finally {
      this.waitingSince = undefined;
    }
  }

  // Nothing is held: gives a pooled buffer back and waits in the idle one.
  #release(): void {
    if (!this.#onIdle) {
      this.#pool?.give(this.#buffer);
      this.#idle ??= new Uint8Array(IDLE_READ_BUFFER);
      this.#buffer = this.#idle;
      this.#pool = undefined;
      this.#onIdle = true;
    }
    this.#start = 0;
    this.#end = 0;
  }

  // Moves the held bytes to the front when `count` would not fit after
  // them, moving them to a larger buffer (a pooled one, or twice `count`)
  // only when this one is too small.
  #makeRoom(count: number): void {
    if (this.#start + count <= this.#buffer.length) return;
    const held = this.#end - this.#start;
    if (count > this.#buffer.length) {
      const pool = count <= FRAME_POOL.size / 2
        ? FRAME_POOL
        : count + READ_AHEAD <= LARGE_POOL.size
        ? LARGE_POOL
        : undefined;
      const next = pool?.take() ?? new Uint8Array(2 * count);
      next.set(this.#buffer.subarray(this.#start, this.#end));
      if (!this.#onIdle) this.#pool?.give(this.#buffer);
      this.#buffer = next;
      this.#pool = pool;
      this.#onIdle = false;
    } else {
      this.#buffer.copyWithin(0, this.#start, this.#end);
    }
    this.#start = 0;
    this.#end = held;
  }
}

/** A source with `Deno.Conn`'s read(): the count read into `p`, or null at the end. */
export interface ByteReader {
  /** Reads into `p`; resolves the number of bytes read, or null at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Fills buffers from a stream. */
interface ByteSource {
  /** Fills the start of `into`; returns the filled view, or null at the end. */
  read(into: Uint8Array): Promise<Uint8Array | null>;
  cancel(): Promise<void>;
}

// A reader (a Deno socket, without its streams) reads straight into the
// buffer; it has nothing to cancel: the channel closes the socket.
function readerSource(reader: ByteReader): ByteSource {
  return {
    async read(into) {
      const n = await reader.read(into);
      return n === null ? null : into.subarray(0, n);
    },
    cancel: () => Promise.resolve(),
  };
}

// A byte stream (a Deno socket) reads straight into the frame buffer, as
// much as the socket holds at once; any other stream hands out chunks that
// are copied (a chunk larger than the room is kept for the next read).
function byteSource(readable: ReadableStream<Uint8Array>): ByteSource {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = readable.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream (or locked, which getReader() reports below).
  }
  if (byob) {
    const reader = byob;
    return {
      async read(into) {
        const { value, done } = await reader.read(into);
        return done || !value ? null : value;
      },
      cancel: () => reader.cancel().catch(() => {}),
    };
  }
  const reader = readable.getReader();
  let pending: Uint8Array | undefined;
  return {
    async read(into) {
      while (!pending?.length) {
        const { value, done } = await reader.read();
        if (done) return null;
        pending = value;
      }
      const n = Math.min(pending.length, into.length);
      into.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return into.subarray(0, n);
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}
