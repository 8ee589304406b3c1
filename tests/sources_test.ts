import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { MAX_BULK_PLAINTEXT } from "../lib/channel/channel.ts";
import { OvtpError } from "../lib/errors.ts";
import { pathSource, streamSource } from "../lib/services/transfer/sources.ts";

function bytes(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 11 + seed + (i >> 9)) & 0xff);
}

async function pieces(source: { read(): AsyncIterable<Uint8Array> }): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const piece of source.read()) out.push(piece.slice());
  return out;
}

function joined(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

Deno.test("streamSource() gathers a stream's chunks into bulk-record pieces, the last one shorter", async () => {
  const chunks = Array.from({ length: 40 }, (_, i) => bytes(65_543, i));
  const got = await pieces(streamSource(ReadableStream.from(chunks), "stdin"));
  const total = 40 * 65_543;
  assert.deepEqual(
    got.map((p) => p.length),
    [MAX_BULK_PLAINTEXT, MAX_BULK_PLAINTEXT, total - 2 * MAX_BULK_PLAINTEXT],
  );
  assert.deepEqual(joined(got), joined(chunks));
  assert.deepEqual(await pieces(streamSource(ReadableStream.from([]), "empty")), []);
});

Deno.test("streamSource() can be read only once", async () => {
  const source = streamSource(ReadableStream.from([bytes(3, 1)]), "once");
  await pieces(source);
  await assert.rejects(pieces(source), (error: unknown) => {
    assert.ok(error instanceof OvtpError);
    assert.equal(error.kind, "io");
    assert.equal(error.message, `The stream for "once" can be read only once`);
    return true;
  });
});

Deno.test("pathSource() reads a file in bulk-record pieces, again from the start each time", async () => {
  const dir = await tempDir();
  try {
    for (const size of [0, 5, MAX_BULK_PLAINTEXT, 2 * MAX_BULK_PLAINTEXT + 7]) {
      const content = bytes(size, size & 0xff);
      await Deno.writeFile(`${dir}/f`, content);
      const source = await pathSource(`${dir}/f`);
      assert.equal(source.size, size);
      for (let round = 0; round < 2; round++) {
        const got = await pieces(source);
        assert.ok(got.every((p, i) => p.length === MAX_BULK_PLAINTEXT || i === got.length - 1));
        assert.deepEqual(joined(got), content, `${size} bytes, round ${round}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pathSource().read({ reuse: true }) yields the file's bytes, each chunk intact until the next is asked for", async () => {
  const dir = await tempDir();
  try {
    const content = new Uint8Array(3 * 1024 * 1024 + 12_345).map((_, i) => (i * 13) >> 2);
    await Deno.writeFile(`${dir}/f.bin`, content);
    const source = await pathSource(`${dir}/f.bin`);
    let at = 0;
    for await (const chunk of source.read({ reuse: true })) {
      // The next chunk is being read meanwhile, into the other buffer.
      await new Promise((resolve) => setTimeout(resolve, 5));
      assert.deepEqual(chunk, content.subarray(at, at + chunk.length));
      at += chunk.length;
    }
    assert.equal(at, content.length);
    // Stopping early closes the file once its read-ahead has ended.
    for await (const _ of source.read({ reuse: true })) break;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
