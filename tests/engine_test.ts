// The transfer engine's steps (lib/services/transfer/engine.ts), which
// uploads and downloads share: where a sender resumes, what it sends and
// hashes, and a file read only as far as the size announced for it.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { tempFile } from "./_tmp.ts";
import { sendChunks, startAfter } from "../lib/services/transfer/engine.ts";
import { fileChunks } from "../lib/services/transfer/sources.ts";

const hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const DATA = new Uint8Array(10_000).map((_, i) => i * 7);

/** A source in 3,000-byte chunks that counts how often it was opened. */
function counted() {
  const source = { opened: 0, read: () => chunksOf(DATA, 3000, source) };
  return source;
}
async function* chunksOf(data: Uint8Array, size: number, counter: { opened: number }) {
  counter.opened++;
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function sendAll(start: Awaited<ReturnType<typeof startAfter>>) {
  const parts: Uint8Array[] = [];
  const sent = await sendChunks(start, (chunk) => {
    parts.push(chunk.slice());
    return Promise.resolve();
  });
  return { sent, bytes: new Uint8Array(parts.flatMap((p) => [...p])) };
}

Deno.test("a sender resumes after a held prefix that matches, mid-chunk too, and hashes it all", async () => {
  const source = counted();
  const start = await startAfter(source.read, {
    offset: 4500,
    sha256: hex(DATA.subarray(0, 4500)),
  });
  assert.equal(start.offset, 4500);
  const { sent, bytes } = await sendAll(start);
  assert.equal(sent, DATA.length - 4500);
  assert.deepEqual(bytes, DATA.subarray(4500));
  assert.equal(start.hash.digest("hex"), hex(DATA));
  assert.equal(source.opened, 1);
});

Deno.test("a sender starts over, with a fresh read, when the held prefix is not its source's", async () => {
  for (
    const held of [
      { offset: 4500, sha256: hex(new Uint8Array(4500)) }, // other bytes
      { offset: 20_000, sha256: hex(new Uint8Array(20_000)) }, // longer than the source
    ]
  ) {
    const source = counted();
    const start = await startAfter(source.read, held);
    assert.equal(start.offset, 0);
    const { sent, bytes } = await sendAll(start);
    assert.deepEqual([sent, bytes], [DATA.length, DATA]);
    assert.equal(start.hash.digest("hex"), hex(DATA));
    assert.equal(source.opened, 2);
  }
  // Nothing held: read once, from the start.
  const source = counted();
  const start = await startAfter(source.read, { offset: 0, sha256: null });
  assert.equal((await sendAll(start)).sent, DATA.length);
  assert.equal(source.opened, 1);
});

Deno.test("sending stops when told, and a failed send closes the source", async () => {
  let closed = false;
  async function* endless() {
    try {
      while (true) yield new Uint8Array(10);
    } finally {
      closed = true;
    }
  }
  let sends = 0;
  const stopped = await sendChunks(
    { offset: 0, hash: (await startAfter(endless, null)).hash, chunks: endless() },
    () => Promise.resolve(void sends++),
    { stopped: () => sends === 3 },
  );
  assert.equal(stopped, 30);
  assert.ok(closed);
  closed = false;
  const start = await startAfter(endless, null);
  await assert.rejects(
    sendChunks(start, () => Promise.reject(new Error("connection lost"))),
    /connection lost/,
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(closed);
});

Deno.test("a file is read only as far as the length given, as it was when its size was taken", async () => {
  const path = await tempFile();
  const data = new Uint8Array(2 * 1024 * 1024 + 100).map((_, i) => i % 251);
  await Deno.writeFile(path, data);
  using file = await Deno.open(path, { read: true });
  for (const reuse of [true, false]) {
    const length = 1024 * 1024 + 5;
    const chunks = await Array.fromAsync(fileChunks(file, path, reuse, length), (c) => c.slice());
    assert.deepEqual(new Uint8Array(chunks.flatMap((c) => [...c])), data.subarray(0, length));
    // Read again: from the start, all of it.
    const all = await Array.fromAsync(fileChunks(file, path, reuse), (c) => c.slice());
    assert.equal(all.reduce((n, c) => n + c.length, 0), data.length);
  }
  assert.deepEqual(await Array.fromAsync(fileChunks(file, path, true, 0)), []);
});
