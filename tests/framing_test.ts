import assert from "node:assert/strict";
import { BufferPool } from "../lib/io/buffer_pool.ts";
import {
  type ByteReader,
  encodeFrame,
  encodeFrameInPlace,
  FrameReader,
  FramingError,
  IDLE_READ_BUFFER,
  MAX_FRAME_LENGTH,
} from "../lib/channel/framing.ts";

/** A stream that hands out `chunks` one per read, then ends (or stays open). */
function streamOf(chunks: Uint8Array[], end = true): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]);
      else if (end) controller.close();
    },
  }, { highWaterMark: 0 });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function splitEvery(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
  return chunks;
}

/** A body whose bytes depend on its index and length, so mix-ups show. */
function body(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

async function readAll(reader: FrameReader): Promise<Uint8Array[]> {
  const frames = [];
  for (let frame = await reader.read(); frame !== null; frame = await reader.read()) {
    frames.push(frame);
  }
  return frames;
}

async function rejectsFraming(promise: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FramingError, `expected FramingError, got ${error}`);
    assert.equal(error.name, "FramingError");
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("encodeFrame() prepends the 16-bit big-endian length", () => {
  assert.deepEqual(encodeFrame(new Uint8Array(0)), new Uint8Array([0, 0]));
  assert.deepEqual(encodeFrame(new Uint8Array([9, 8, 7])), new Uint8Array([0, 3, 9, 8, 7]));
  const f256 = encodeFrame(body(256, 1));
  assert.deepEqual(f256.subarray(0, 2), new Uint8Array([1, 0]));
  assert.deepEqual(f256.subarray(2), body(256, 1));
  const max = encodeFrame(new Uint8Array(MAX_FRAME_LENGTH));
  assert.equal(max.length, 65537);
  assert.deepEqual(max.subarray(0, 2), new Uint8Array([0xff, 0xff]));
});

Deno.test("encodeFrame() refuses a body above 65535 bytes with RangeError", () => {
  assert.equal(MAX_FRAME_LENGTH, 65535);
  assert.throws(() => encodeFrame(new Uint8Array(65536)), {
    name: "RangeError",
    message: "Frame body of 65536 bytes exceeds 65535",
  });
});

Deno.test("encodeFrameInPlace() writes the length into the two bytes before the body, without a copy", () => {
  const buffer = new Uint8Array(2 + 300);
  buffer.set(body(300, 5), 2);
  const frame = encodeFrameInPlace(buffer.subarray(2));
  assert.equal(frame.buffer, buffer.buffer);
  assert.equal(frame.byteOffset, 0);
  assert.deepEqual(frame, encodeFrame(body(300, 5)));
  assert.throws(() => encodeFrameInPlace(buffer.subarray(1, 10)), {
    name: "RangeError",
    message: "No headroom for a frame header",
  });
  assert.throws(() => encodeFrameInPlace(new Uint8Array(65538).subarray(2)), {
    name: "RangeError",
    message: "Frame body of 65536 bytes exceeds 65535",
  });
});

Deno.test("FrameReader.read() reads frames delivered one byte per chunk", async () => {
  const bodies = [0, 1, 5, 300, 1000].map((n, i) => body(n, i));
  const bytes = concat(bodies.map(encodeFrame));
  const reader = new FrameReader(streamOf(splitEvery(bytes, 1)));
  assert.deepEqual(await readAll(reader), bodies);
});

Deno.test("FrameReader.read() reads several frames from one chunk", async () => {
  const bodies = [3, 0, 17, 2].map((n, i) => body(n, i));
  const reader = new FrameReader(streamOf([concat(bodies.map(encodeFrame))]));
  assert.deepEqual(await readAll(reader), bodies);
});

Deno.test("FrameReader.read() reads maximal frames across odd chunk boundaries and keeps earlier frames intact", async () => {
  const bodies = [65535, 1, 65535, 40000, 65535, 0, 65535].map((n, i) => body(n, i));
  const bytes = concat(bodies.map(encodeFrame));
  for (const size of [7, 4093, 50000, 65537, 131075, bytes.length]) {
    const reader = new FrameReader(streamOf(splitEvery(bytes, size)));
    // Frames returned earlier must not change when the reader reuses its buffer.
    const frames = await readAll(reader);
    assert.equal(frames.length, bodies.length, `chunks of ${size}`);
    frames.forEach((frame, i) =>
      assert.deepEqual(frame, bodies[i], `frame ${i}, chunks of ${size}`)
    );
  }
});

Deno.test("FrameReader.read() returns null at a clean end of stream, and again after that", async () => {
  const empty = new FrameReader(streamOf([]));
  assert.equal(await empty.read(), null);
  assert.equal(await empty.read(), null);
  const one = new FrameReader(streamOf([encodeFrame(new Uint8Array([1]))]));
  assert.deepEqual(await one.read(), new Uint8Array([1]));
  assert.equal(await one.read(), null);
});

Deno.test("FrameReader.read() skips empty chunks", async () => {
  const frame = encodeFrame(new Uint8Array([5, 6]));
  const reader = new FrameReader(
    streamOf([new Uint8Array(0), frame.subarray(0, 1), new Uint8Array(0), frame.subarray(1)]),
  );
  assert.deepEqual(await reader.read(), new Uint8Array([5, 6]));
  assert.equal(await reader.read(), null);
});

Deno.test("FrameReader.read() rejects a length above the limit before the body arrives", async () => {
  // The stream delivers only the header. Asking it for more bytes errors it,
  // so a reader that waits for the body fails here instead of hanging.
  let askedForMore = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([0x03, 0xe8])); // 1000
    },
    pull(controller) {
      askedForMore = true;
      controller.error(new Error("The reader waited for the body"));
    },
  }, { highWaterMark: 0 });
  const reader = new FrameReader(stream);
  await rejectsFraming(reader.read(999), "Frame length 1000 is outside the allowed 0..999");
  assert.equal(askedForMore, false);
});

Deno.test("FrameReader.read() rejects a length below the minimum", async () => {
  const reader = new FrameReader(streamOf([encodeFrame(new Uint8Array(3))], false));
  await rejectsFraming(reader.read(100, 16), "Frame length 3 is outside the allowed 16..100");
});

Deno.test("FrameReader.read() accepts lengths equal to the bounds", async () => {
  const reader = new FrameReader(
    streamOf([encodeFrame(body(1000, 1)), encodeFrame(body(16, 2)), encodeFrame(body(65535, 3))]),
  );
  assert.deepEqual(await reader.read(1000), body(1000, 1));
  assert.deepEqual(await reader.read(16, 16), body(16, 2));
  assert.deepEqual(await reader.read(), body(65535, 3));
});

Deno.test("FrameReader.read() rejects a stream that ends inside the header", async () => {
  await rejectsFraming(
    new FrameReader(streamOf([new Uint8Array([0])])).read(),
    "The stream ended inside a frame header",
  );
  const afterFrame = new FrameReader(
    streamOf([concat([encodeFrame(new Uint8Array([1])), new Uint8Array([0])])]),
  );
  assert.deepEqual(await afterFrame.read(), new Uint8Array([1]));
  await rejectsFraming(afterFrame.read(), "The stream ended inside a frame header");
});

Deno.test("FrameReader.read() rejects a stream that ends inside the body", async () => {
  await rejectsFraming(
    new FrameReader(streamOf([new Uint8Array([0, 5, 1, 2])])).read(),
    "The stream ended inside a frame of 5 bytes",
  );
  await rejectsFraming(
    new FrameReader(streamOf([new Uint8Array([0, 5])])).read(),
    "The stream ended inside a frame of 5 bytes",
  );
  const big = encodeFrame(body(65535, 9));
  await rejectsFraming(
    new FrameReader(streamOf(splitEvery(big.subarray(0, big.length - 1), 1000))).read(),
    "The stream ended inside a frame of 65535 bytes",
  );
});

Deno.test("FrameReader.read() passes on the stream's own error", async () => {
  const failure = new Error("connection reset");
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([0, 4, 1]));
    },
    pull(controller) {
      controller.error(failure);
    },
  }, { highWaterMark: 0 });
  await assert.rejects(new FrameReader(stream).read(), (error) => error === failure);
});

Deno.test("FrameReader.cancel() cancels the underlying stream", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    cancel() {
      cancelled = true;
    },
  });
  const reader = new FrameReader(stream);
  await reader.cancel();
  assert.equal(cancelled, true);
  assert.equal(await reader.read(), null);
});

Deno.test("FrameReader locks the stream it reads", () => {
  const stream = streamOf([]);
  new FrameReader(stream);
  assert.equal(stream.locked, true);
  assert.throws(() => new FrameReader(stream), TypeError);
});

Deno.test("FrameReader.readExact() reads a block without a length across chunks, then frames after it", async () => {
  const block = body(300_000, 3);
  const bytes = concat([encodeFrame(body(5, 1)), block, encodeFrame(body(7, 2))]);
  for (const size of [1000, 65537, bytes.length]) {
    const reader = new FrameReader(streamOf(splitEvery(bytes, size)));
    assert.deepEqual(await reader.read(), body(5, 1));
    assert.deepEqual((await reader.readExact(block.length)).slice(), block, `chunks of ${size}`);
    assert.deepEqual(await reader.read(), body(7, 2));
    assert.equal(await reader.read(), null);
  }
});

Deno.test("FrameReader.readExact() rejects a stream that ends inside the block", async () => {
  const bytes = body(1000, 4);
  await rejectsFraming(
    new FrameReader(streamOf(splitEvery(bytes, 300))).readExact(1001),
    "The stream ended inside a bulk record of 1001 bytes",
  );
});

/**
 * A byte stream, as a Deno socket's readable is; `byob()` tells whether it
 * was read with BYOB requests (into the reader's own buffer).
 */
function byteStreamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> & { byob(): boolean } {
  let next = 0;
  let byob = false;
  const stream = new ReadableStream({
    type: "bytes",
    pull(controller) {
      byob ||= controller.byobRequest !== null;
      if (next < chunks.length) return controller.enqueue(chunks[next++].slice());
      controller.close();
      // A BYOB read waiting at the end settles only once its view is given back.
      controller.byobRequest?.respond(0);
    },
  });
  return Object.assign(stream, { byob: () => byob });
}

Deno.test("FrameReader reads a byte stream straight into its buffer: frames, views and large blocks", async () => {
  const block = body(3 * 1024 * 1024 + 5, 8);
  const frames = [65535, 0, 1, 40000].map((n, i) => body(n, i));
  const bytes = concat([...frames.map(encodeFrame), block, encodeFrame(body(9, 9))]);
  for (const size of [4093, 65537, 1 << 20]) {
    const stream = byteStreamOf(splitEvery(bytes, size));
    const reader = new FrameReader(stream);
    assert.equal(stream.locked, true);
    const read = [await reader.read(), (await reader.readView())!.slice()];
    read.push(await reader.read(), await reader.read());
    read.forEach((frame, i) => assert.deepEqual(frame, frames[i], `frame ${i}, chunks of ${size}`));
    assert.deepEqual((await reader.readExact(block.length)).slice(), block);
    assert.deepEqual(await reader.read(), body(9, 9));
    assert.equal(await reader.read(), null);
    assert.equal(stream.byob(), true);
  }
});

/**
 * A source with Deno.Conn's read(): hands out `chunks` one per read (split
 * when `p` is smaller), recording the size of the buffer each read waited in.
 */
function connOf(chunks: Uint8Array[]): ByteReader & { waitedIn: number[] } {
  const queue = chunks.slice();
  const waitedIn: number[] = [];
  return {
    waitedIn,
    read(p: Uint8Array) {
      waitedIn.push(p.buffer.byteLength);
      const next = queue.shift();
      if (!next) return Promise.resolve(null);
      const n = Math.min(next.length, p.length);
      p.set(next.subarray(0, n));
      if (n < next.length) queue.unshift(next.subarray(n));
      return Promise.resolve(n);
    },
  };
}

Deno.test("FrameReader reads frames through read() and waits in its small idle buffer between them", async () => {
  const small = body(100, 1);
  const large = body(MAX_FRAME_LENGTH, 2);
  const bulk = body(1024 * 1024 + 16, 3);
  const conn = connOf([
    encodeFrame(small),
    encodeFrame(large),
    concat([encodeFrame(small), bulk.subarray(0, 5)]),
    bulk.subarray(5),
    encodeFrame(small),
  ]);
  const reader = new FrameReader(conn);
  assert.deepEqual(await reader.read(), small);
  assert.deepEqual(await reader.read(), large);
  assert.deepEqual(await reader.read(), small);
  assert.deepEqual(await reader.readExact(bulk.length), bulk);
  assert.deepEqual(await reader.read(), small);
  assert.equal(await reader.read(), null);
  // Each wait with nothing held was in the idle buffer: the first read of
  // each of the five chunks, and the end. Only the frame and the block
  // that did not fit it were read into larger (pooled) buffers.
  const idle = conn.waitedIn.filter((size) => size === IDLE_READ_BUFFER).length;
  assert.ok(idle >= 4, `waited ${idle} times in the idle buffer: ${conn.waitedIn}`);
  assert.equal(conn.waitedIn.at(-1), IDLE_READ_BUFFER);
  assert.ok(conn.waitedIn.some((size) => size > MAX_FRAME_LENGTH));
});

Deno.test("BufferPool hands buffers back out, keeps at most its byte budget, and ignores strangers", () => {
  const pool = new BufferPool(1000, 2500);
  const a = pool.take();
  const b = pool.take();
  const c = pool.take();
  assert.equal(a.length, 1000);
  pool.give(a);
  pool.give(b);
  pool.give(c); // Over the budget of two: dropped.
  assert.equal(pool.free, 2);
  assert.equal(pool.take(), b);
  pool.give(new Uint8Array(999));
  pool.give(new Uint8Array(2000).subarray(0, 1000));
  assert.equal(pool.free, 1);
  // Part of a buffer, or its ArrayBuffer (as a worker hands it back), gives the whole buffer back.
  pool.take();
  pool.give(b.subarray(10, 20));
  const back = pool.take();
  assert.equal(back.buffer, b.buffer);
  assert.equal(back.length, 1000);
  pool.give(back.buffer as ArrayBuffer);
  assert.equal(pool.take().buffer, b.buffer);
  // A detached buffer (transferred away) is not kept.
  const moved = pool.take();
  (moved.buffer as ArrayBuffer).transfer();
  pool.give(moved);
  assert.equal(pool.free, 0);
});
