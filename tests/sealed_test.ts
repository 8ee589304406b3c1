import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { concat, utf8 } from "../lib/bytes.ts";
import { ed25519Sign } from "../lib/crypto/mod.ts";
import { generateIdentity, type Identity } from "../lib/identity/keys.ts";
import {
  ARMOR_BEGIN,
  ARMOR_END,
  CHUNK_CIPHERTEXT_SIZE,
  CHUNK_SIZE,
  chunkNonce,
  COMMITMENT_SIZE,
  END_MARK,
  HEADER_PREFIX_SIZE,
  HEADER_SIGNATURE_CONTEXT,
  inspectSealed,
  MAX_CHUNK_INDEX,
  openSealed,
  type OpenSealedOptions,
  readerStream,
  SealedError,
  type SealedFailure,
  sealStream,
  type SealStreamOptions,
  SIGNATURE_SIZE,
  STANZA_SIZE,
  TRAILER_SIZE,
  writeAll,
  writeFileAtomically,
} from "../lib/sealed/mod.ts";
import { ByteReader } from "../lib/sealed/_byte_reader.ts";
import { readHeader, unwrapPayloadKey } from "../lib/sealed/_header.ts";
import { sealChunks } from "../lib/sealed/stream.ts";
import { inlineRunner, runJob, startWorkers } from "../lib/sealed/_chunk_runner.ts";
import { testEachBackend } from "./_backends.ts";
import { BATCH_CHUNKS } from "../lib/sealed/_pipeline.ts";

// Windows has no file modes: writeFileAtomically() does not set them there.
const MODES = Deno.build.os !== "windows";
if (!MODES) {
  console.log("sealed_test: Windows has no file modes: the 0600 of a written file is not checked");
}

const people = await Promise.all(Array.from({ length: 20 }, () => generateIdentity()));
const [alice, bob, carol] = people;
const outsider = await generateIdentity();

function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function seal(
  plaintext: Uint8Array,
  options: Partial<SealStreamOptions> = {},
  sender: Identity = alice,
): Promise<Uint8Array> {
  const recipients = options.recipients ?? [bob.publicKey, carol.publicKey];
  return await collect(
    sealStream(ReadableStream.from([plaintext]), sender, { workers: 0, ...options, recipients }),
  );
}

async function open(
  sealed: Uint8Array,
  reader: Identity = bob,
  options: OpenSealedOptions = {},
): Promise<Uint8Array> {
  const opened = await openSealed(ReadableStream.from([sealed]), reader, {
    workers: 0,
    ...options,
  });
  return await collect(opened.plaintext);
}

async function assertRefused(
  promise: Promise<unknown>,
  reason: SealedFailure,
  details: { chunk?: number; line?: number } = {},
): Promise<SealedError> {
  let caught: SealedError | undefined;
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof SealedError, `expected a SealedError, got ${error}`);
    assert.equal(error.reason, reason, error.message);
    if (details.chunk !== undefined) assert.equal(error.chunk, details.chunk);
    if (details.line !== undefined) assert.equal(error.line, details.line);
    caught = error;
    return true;
  });
  return caught!;
}

function flip(sealed: Uint8Array, at: number): Uint8Array {
  const copy = sealed.slice();
  copy[at] ^= 0x01;
  return copy;
}

/** Where things are in a binary sealed file (docs/protocol.md, "Sealed files"). */
function layout(recipients: number) {
  const stanzas = HEADER_PREFIX_SIZE;
  const commitment = stanzas + recipients * STANZA_SIZE;
  const headerSignature = commitment + COMMITMENT_SIZE;
  const payload = headerSignature + SIGNATURE_SIZE;
  return { stanzas, commitment, headerSignature, payload };
}

/** What a malicious sender (or a buggy one) could write: any header, validly signed. */
async function resign(sealed: Uint8Array, recipients: number, edit: (h: Uint8Array) => void) {
  const { headerSignature, payload } = layout(recipients);
  const header = sealed.slice(0, headerSignature);
  edit(header);
  const signature = await ed25519Sign(
    alice.ed25519Private,
    concat(HEADER_SIGNATURE_CONTEXT, header),
  );
  return concat(header, signature, sealed.subarray(payload));
}

/** The payload key of a sealed file, as any of its recipients can compute it. */
async function payloadKeyOf(sealed: Uint8Array, reader: Identity) {
  const header = await readHeader(new ByteReader(ReadableStream.from([sealed])));
  return { header, key: await unwrapPayloadKey(header, reader) };
}

Deno.test("seal and open round-trip empty, one-byte, one-chunk, chunk-plus-one and MiB inputs", async () => {
  for (const size of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * 1024 * 1024 + 7]) {
    const plaintext = bytes(size, size);
    const sealed = await seal(plaintext);
    const chunks = Math.max(1, Math.ceil(size / CHUNK_SIZE));
    assert.equal(sealed.length, layout(2).payload + size + 16 * chunks + TRAILER_SIZE, `${size}`);
    assert.deepEqual(await open(sealed, bob), plaintext, `${size} for bob`);
    assert.deepEqual(await open(sealed, carol), plaintext, `${size} for carol`);
  }
});

Deno.test("a file sealed for twenty recipients opens for each of them", async () => {
  const plaintext = bytes(100_000);
  const sealed = await seal(plaintext, { recipients: people.map((p) => p.publicKey) });
  for (const reader of people) assert.deepEqual(await open(sealed, reader), plaintext);
  await assertRefused(open(sealed, outsider), "not-recipient");
});

Deno.test("workers seal and open batches exactly as this thread does", async () => {
  const { runner, ready } = startWorkers(2);
  try {
    assert.equal(await ready, true);
    const key = bytes(32, 9);
    const plaintext = bytes(BATCH_CHUNKS * CHUNK_SIZE, 3);
    const job = () => ({
      first: 5,
      input: plaintext.slice(),
      last: true,
      output: new Uint8Array(BATCH_CHUNKS * CHUNK_CIPHERTEXT_SIZE),
    });
    const [here, there] = [runJob(key, "seal", job()), await runner.seal(key, job())];
    assert.deepEqual(there.output, here.output);
    assert.deepEqual(there.digests, here.digests);
    assert.deepEqual(there.input, plaintext); // The buffer came back.
    // Opening stops at the last chunk (it is not a middle chunk) in both.
    const open = () => ({
      first: 5,
      input: here.output.slice(),
      output: new Uint8Array(BATCH_CHUNKS * CHUNK_SIZE),
    });
    const [openedHere, openedThere] = [runJob(key, "open", open()), await runner.open(key, open())];
    assert.equal(openedThere.verified, BATCH_CHUNKS - 1);
    assert.deepEqual(openedThere.output, openedHere.output);
    assert.deepEqual(openedThere.output, plaintext.subarray(0, (BATCH_CHUNKS - 1) * CHUNK_SIZE));
  } finally {
    runner.close();
  }
});

Deno.test("a large, slow input is sealed and opened with workers mid-stream", async () => {
  // Pieces that arrive over time let the workers start and take over.
  const plaintext = bytes(12 * 1024 * 1024 + 12345);
  const slowly = (data: Uint8Array) =>
    ReadableStream.from((async function* () {
      for (let i = 0; i < data.length; i += 1024 * 1024) {
        await new Promise((resolve) => setTimeout(resolve, 15));
        yield data.slice(i, i + 1024 * 1024);
      }
    })());
  const sealed = await collect(
    sealStream(slowly(plaintext), alice, { recipients: [bob.publicKey], workers: 2 }),
  );
  assert.deepEqual(await open(sealed, bob), plaintext);
  const opened = await openSealed(slowly(sealed), bob, { workers: 2 });
  assert.deepEqual(await collect(opened.plaintext), plaintext);
});

Deno.test("the armored form round-trips and has 64-character lines", async () => {
  for (const size of [0, 47, 48, CHUNK_SIZE + 1]) {
    const plaintext = bytes(size);
    const armored = await seal(plaintext, { armor: true });
    const lines = new TextDecoder().decode(armored).split("\n");
    assert.equal(lines[0], ARMOR_BEGIN);
    assert.equal(lines.at(-2), ARMOR_END);
    assert.equal(lines.at(-1), "");
    for (const line of lines.slice(1, -3)) assert.equal(line.length, 64);
    assert.ok(lines.at(-3)!.length > 0 && lines.at(-3)!.length <= 64);
    assert.deepEqual(await open(armored, bob), plaintext);
  }
});

Deno.test("inspectSealed() shows the sender and recipients without a key", async () => {
  const sealed = await seal(bytes(10), { armor: true });
  const info = await inspectSealed(ReadableStream.from([sealed]));
  assert.deepEqual(info.sender, alice.publicKey);
  assert.deepEqual(info.recipients, [bob.publicKey, carol.publicKey]);
  assert.equal(info.armored, true);
});

Deno.test("duplicate recipients are sealed once; none or too many are refused", async () => {
  const sealed = await seal(bytes(1), { recipients: [bob.publicKey, bob.publicKey] });
  assert.equal((await inspectSealed(ReadableStream.from([sealed]))).recipients.length, 1);
  assert.throws(() => sealStream(ReadableStream.from([]), alice, { recipients: [] }), RangeError);
});

Deno.test("a key that is not a recipient is refused before decrypting", async () => {
  await assertRefused(open(await seal(bytes(10)), outsider), "not-recipient");
});

Deno.test("--from: a file from another sender is refused before decrypting", async () => {
  const sealed = await seal(bytes(10));
  const asked: Uint8Array[] = [];
  const from = (key: { ed25519: Uint8Array }) => {
    asked.push(key.ed25519);
    return key.ed25519 === carol.publicKey.ed25519;
  };
  await assertRefused(open(sealed, bob, { from }), "sender");
  assert.deepEqual(asked, [alice.publicKey.ed25519]);
  assert.deepEqual(await open(sealed, bob, { from: () => true }), bytes(10));
});

Deno.test("a flipped byte in the header is refused as a bad header signature", async () => {
  const sealed = await seal(bytes(1000));
  const { stanzas, commitment } = layout(2);
  const places: [string, number][] = [
    ["sender", 4 + 10],
    ["nonce", 4 + 64 + 3],
    ["recipient count", stanzas - 1],
    ["recipient key", stanzas + 5],
    ["wrapped key", stanzas + 64 + 32 + 7],
    ["commitment", commitment + 1],
  ];
  for (const [what, at] of places) {
    const error = await assertRefused(open(flip(sealed, at), bob), "header-signature")
      .catch((e) => {
        // A changed count makes the header another length: still refused.
        if (what !== "recipient count") throw e;
        return undefined;
      });
    if (what === "recipient count" && !error) {
      await assert.rejects(open(flip(sealed, at), bob), SealedError);
    }
  }
});

Deno.test("a flipped byte in the header signature is refused", async () => {
  const sealed = await seal(bytes(1000));
  await assertRefused(open(flip(sealed, layout(2).headerSignature + 9), bob), "header-signature");
});

Deno.test("a wrapped key that does not open, under a valid signature, is refused as such", async () => {
  // Only the sender can sign a header; a buggy or malicious sender can still
  // write a stanza that does not open.
  const sealed = await seal(bytes(1000));
  const wrapped = layout(2).stanzas + 64 + 32 + 7;
  const bad = await resign(sealed, 2, (header) => header[wrapped] ^= 1);
  const error = await assertRefused(open(bad, bob), "wrapped-key");
  assert.match(error.message, /does not open/);
  // Carol's stanza is intact, but the payload signature covers the header as
  // it was signed first.
  await assertRefused(open(bad, carol), "payload-signature");
});

Deno.test("a file key that does not match the signed commitment is refused", async () => {
  const sealed = await seal(bytes(1000));
  const { commitment } = layout(2);
  const bad = await resign(sealed, 2, (header) => header[commitment + 4] ^= 1);
  const error = await assertRefused(open(bad, bob), "wrapped-key");
  assert.match(error.message, /commitment/);
});

Deno.test("a flipped byte in a chunk is refused, naming the chunk", async () => {
  const sealed = await seal(bytes(3 * CHUNK_SIZE + 100));
  const { payload } = layout(2);
  for (const chunk of [0, 1, 3]) {
    const at = payload + chunk * CHUNK_CIPHERTEXT_SIZE + 50;
    await assertRefused(open(flip(sealed, at), bob), "chunk", { chunk });
  }
  // The tag of the last chunk, and its last byte.
  const lastTag = sealed.length - TRAILER_SIZE - 1;
  await assertRefused(open(flip(sealed, lastTag), bob), "chunk", { chunk: 3 });
});

Deno.test("no plaintext is released from a chunk that fails, or before it", async () => {
  const plaintext = bytes(5 * CHUNK_SIZE);
  const sealed = flip(await seal(plaintext), layout(2).payload + 2 * CHUNK_CIPHERTEXT_SIZE + 9);
  const opened = await openSealed(ReadableStream.from([sealed]), bob, { workers: 0 });
  const reader = opened.plaintext.getReader();
  const released: Uint8Array[] = [];
  const failure = await (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      released.push(value);
    }
  })().catch((error) => error);
  assert.ok(failure instanceof SealedError && failure.reason === "chunk" && failure.chunk === 2);
  // The batch holds chunks 0..4; chunks 0 and 1 verified, nothing after.
  assert.deepEqual(concat(...released), plaintext.subarray(0, 2 * CHUNK_SIZE));
});

Deno.test("a flipped byte in the payload signature is refused, and a one-chunk file releases nothing", async () => {
  const sealed = await seal(bytes(1000));
  const opened = await openSealed(ReadableStream.from([flip(sealed, sealed.length - 3)]), bob);
  const reader = opened.plaintext.getReader();
  await assertRefused(reader.read(), "payload-signature");
});

Deno.test("a recipient who rewrites the chunks under the sender's header is caught", async () => {
  // Bob knows the file key: he keeps Alice's signed header and seals text of
  // his own for Carol. Every chunk tag verifies; only the payload signature
  // (over the chunks' hashes) shows the chunks are not Alice's.
  const sealed = await seal(bytes(2 * CHUNK_SIZE + 5));
  const { header, key } = await payloadKeyOf(sealed, bob);
  const forged = utf8("Alice says: pay Bob").slice();
  const chunks = new Uint8Array(forged.length + 16);
  sealChunks(key, { first: 0, plaintext: forged, last: true }, chunks, new Uint8Array(32));
  const file = concat(header.bytes, chunks, sealed.subarray(sealed.length - TRAILER_SIZE));
  await assertRefused(open(file, carol), "payload-signature");
});

Deno.test("a truncated file is refused as truncated, wherever it is cut", async () => {
  const sealed = await seal(bytes(2 * CHUNK_SIZE + 100));
  const { payload } = layout(2);
  const cuts: [string, number][] = [
    ["empty", 0],
    ["inside the header", 50],
    ["after the header", payload],
    ["inside chunk 0", payload + 1000],
    ["after chunk 0", payload + CHUNK_CIPHERTEXT_SIZE],
    ["after chunk 1", payload + 2 * CHUNK_CIPHERTEXT_SIZE],
    ["inside the end mark", sealed.length - TRAILER_SIZE + 3],
    ["inside the signature", sealed.length - 10],
  ];
  for (const [what, length] of cuts) {
    const reason = length === 0 ? "malformed" : "truncated";
    await assertRefused(open(sealed.subarray(0, length), bob), reason).catch((error) => {
      throw new Error(`${what}: ${error.message}`);
    });
  }
});

Deno.test("data after the signature is refused as trailing data", async () => {
  for (const size of [100, CHUNK_SIZE, 2 * CHUNK_SIZE]) {
    const sealed = await seal(bytes(size));
    for (const extra of [1, 100, CHUNK_CIPHERTEXT_SIZE + 7]) {
      await assertRefused(open(concat(sealed, new Uint8Array(extra)), bob), "trailing-data");
    }
  }
});

Deno.test("two chunks swapped are refused", async () => {
  const sealed = await seal(bytes(3 * CHUNK_SIZE + 10));
  const { payload } = layout(2);
  const swapped = sealed.slice();
  const first = sealed.subarray(payload, payload + CHUNK_CIPHERTEXT_SIZE);
  const second = sealed.subarray(
    payload + CHUNK_CIPHERTEXT_SIZE,
    payload + 2 * CHUNK_CIPHERTEXT_SIZE,
  );
  swapped.set(second, payload);
  swapped.set(first, payload + CHUNK_CIPHERTEXT_SIZE);
  await assertRefused(open(swapped, bob), "chunk", { chunk: 0 });
});

Deno.test("a chunk spliced in from another sealed file is refused", async () => {
  // The same sender, recipients and plaintext: only the file key differs.
  const plaintext = bytes(3 * CHUNK_SIZE + 10);
  const [one, other] = [await seal(plaintext), await seal(plaintext)];
  const { payload } = layout(2);
  const at = payload + CHUNK_CIPHERTEXT_SIZE;
  const spliced = one.slice();
  spliced.set(other.subarray(at, at + CHUNK_CIPHERTEXT_SIZE), at);
  await assertRefused(open(spliced, bob), "chunk", { chunk: 1 });
  // The other file's last chunk and signature in place of this one's.
  const lastAt = payload + 3 * CHUNK_CIPHERTEXT_SIZE;
  const tail = concat(one.subarray(0, lastAt), other.subarray(lastAt));
  await assertRefused(open(tail, bob), "chunk", { chunk: 3 });
});

Deno.test("an empty last chunk after others is refused", async () => {
  const sealed = await seal(bytes(CHUNK_SIZE));
  const { header, key } = await payloadKeyOf(sealed, bob);
  const chunks = new Uint8Array(CHUNK_CIPHERTEXT_SIZE + 16);
  sealChunks(
    key,
    { first: 0, plaintext: bytes(CHUNK_SIZE), last: false },
    chunks,
    new Uint8Array(32),
  );
  sealChunks(
    key,
    { first: 1, plaintext: new Uint8Array(0), last: true },
    chunks.subarray(CHUNK_CIPHERTEXT_SIZE),
    new Uint8Array(32),
  );
  const file = concat(header.bytes, chunks, END_MARK, new Uint8Array(64));
  await assertRefused(open(file, bob), "malformed");
});

Deno.test("headers with a bad magic or recipient count are malformed", async () => {
  const sealed = await seal(bytes(10));
  await assertRefused(open(concat(utf8("OVS2"), sealed.subarray(4)), bob), "malformed");
  for (const count of [[0, 0], [4, 1]]) {
    const bad = sealed.slice();
    bad.set(count, HEADER_PREFIX_SIZE - 2);
    await assertRefused(open(bad, bob), "malformed");
  }
});

Deno.test("random damage anywhere is refused with a SealedError, never wrong plaintext", async () => {
  const plaintext = bytes(2 * CHUNK_SIZE + 300);
  const sealed = await seal(plaintext);
  let state = 7;
  for (let i = 0; i < 150; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    const at = state % sealed.length;
    await assert.rejects(open(flip(sealed, at), bob), SealedError, `byte ${at}`);
  }
});

Deno.test("chunkNonce() is an 11-byte big-endian counter and a last flag, and does not wrap", () => {
  assert.deepEqual(chunkNonce(0, false), new Uint8Array(12));
  assert.deepEqual(chunkNonce(1, true), Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]));
  assert.deepEqual(
    chunkNonce(2 ** 40 + 258, false),
    Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0]),
  );
  assert.equal(chunkNonce(MAX_CHUNK_INDEX, true)[11], 1);
  assert.throws(() => chunkNonce(MAX_CHUNK_INDEX + 1, false), RangeError);
  assert.throws(() => chunkNonce(-1, false), RangeError);
});

Deno.test("damaged armor is refused with the line number", async () => {
  const armored = new TextDecoder().decode(await seal(bytes(2000), { armor: true }));
  const lines = armored.split("\n");
  const edited = (edit: (lines: string[]) => void) => {
    const copy = [...lines];
    edit(copy);
    return utf8(copy.join("\n"));
  };
  const cases: [string, Uint8Array, SealedFailure, number | undefined][] = [
    ["a character outside base64", edited((l) => l[3] = "*" + l[3].slice(1)), "armor", 4],
    ["a short line", edited((l) => l[5] = l[5].slice(0, 60)), "armor", 6],
    ["a long line", edited((l) => l[2] = l[2] + "AAAA"), "armor", 3],
    ["a space inside", edited((l) => l[7] = l[7].slice(0, 10) + " " + l[7].slice(11)), "armor", 8],
    ["padding in the middle", edited((l) => l[4] = l[4].slice(0, 62) + "=="), "armor", 5],
    ["an empty line", edited((l) => l.splice(6, 0, "")), "armor", 7],
    ["a missing END line", edited((l) => l.splice(-2, 1)), "truncated", undefined],
    ["text after the END line", edited((l) => l.push("hello")), "trailing-data", undefined],
    ["no BEGIN line", edited((l) => l.shift()), "malformed", undefined],
  ];
  for (const [what, text, reason, line] of cases) {
    await assertRefused(open(text, bob), reason, { line }).catch((error) => {
      throw new Error(`${what}: ${error.message}`);
    });
  }
});

Deno.test("armor with CRLF line ends and surrounding blank lines opens", async () => {
  const plaintext = bytes(3000);
  const armored = new TextDecoder().decode(await seal(plaintext, { armor: true }));
  const crlf = utf8("\r\n\n" + armored.replaceAll("\n", "\r\n") + "\n  \n");
  assert.deepEqual(await open(crlf, bob), plaintext);
});

Deno.test("a changed armored character in the payload is caught below the armor", async () => {
  // Valid base64, other bytes: the armor passes it on and a chunk fails.
  const armored = new TextDecoder().decode(await seal(bytes(3000), { armor: true }));
  const lines = armored.split("\n");
  const target = lines.length - 5;
  lines[target] = (lines[target][0] === "A" ? "B" : "A") + lines[target].slice(1);
  await assertRefused(open(utf8(lines.join("\n")), bob), "chunk", { chunk: 0 });
});

Deno.test("writeFileAtomically() leaves no file, and an old file untouched, when the stream fails", async () => {
  const dir = await tempDir();
  const failing = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes(100));
        controller.error(new SealedError("chunk", "Chunk 1 fails", { chunk: 1 }));
      },
    });
  await assert.rejects(writeFileAtomically(`${dir}/new`, failing()), SealedError);
  await Deno.writeTextFile(`${dir}/old`, "before");
  await assert.rejects(writeFileAtomically(`${dir}/old`, failing()), SealedError);
  assert.equal(await Deno.readTextFile(`${dir}/old`), "before");
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["old"]);
  const written = await writeFileAtomically(`${dir}/ok`, ReadableStream.from([bytes(10)]));
  assert.equal(written, 10);
  if (MODES) assert.equal((await Deno.stat(`${dir}/ok`)).mode! & 0o777, 0o600);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("large armor fed in odd pieces decodes, and a damaged line deep inside is named", async () => {
  const plaintext = bytes(900_000); // About 19,000 lines: more than two decoding batches.
  const armored = await seal(plaintext, { armor: true });
  const inPieces = (text: Uint8Array, size: number) =>
    ReadableStream.from((function* () {
      for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
    })());
  // 63 and 65 split every line; 4096 and 1 MiB take the fast path.
  for (const size of [63, 65, 4096, 1 << 20]) {
    const opened = await openSealed(inPieces(armored, size), bob, { workers: 0 });
    assert.deepEqual(await collect(opened.plaintext), plaintext, `pieces of ${size}`);
  }
  const lines = new TextDecoder().decode(armored).split("\n");
  lines[12_345] = lines[12_345].slice(0, 30) + "-" + lines[12_345].slice(31);
  const damaged = utf8(lines.join("\n"));
  for (const size of [65, 1 << 20]) {
    const opening = openSealed(inPieces(damaged, size), bob, { workers: 0 })
      .then((opened) => collect(opened.plaintext));
    await assertRefused(opening, "armor", { line: 12_346 });
  }
});

Deno.test("readerStream() and writeAll() move every byte, by BYOB and default readers", async () => {
  const data = bytes(3 * 1024 * 1024 + 17);
  const source = () => {
    let offset = 0;
    return {
      read(buffer: Uint8Array) {
        if (offset >= data.length) return Promise.resolve(null);
        const count = Math.min(buffer.length, 100_000, data.length - offset);
        buffer.set(data.subarray(offset, offset + count));
        offset += count;
        return Promise.resolve(count);
      },
    };
  };
  const sink = () => {
    const parts: Uint8Array[] = [];
    return {
      parts,
      write(chunk: Uint8Array) {
        parts.push(chunk.slice(0, 50_000));
        return Promise.resolve(Math.min(chunk.length, 50_000));
      },
    };
  };
  const byob = sink();
  assert.equal(await writeAll(byob, readerStream(source())), data.length);
  assert.deepEqual(concat(...byob.parts), data);
  const plain = sink();
  const pieces = ReadableStream.from([data.subarray(0, 10), data.subarray(10)]);
  assert.equal(await writeAll(plain, pieces), data.length);
  assert.deepEqual(concat(...plain.parts), data);
  assert.deepEqual(await collect(readerStream(source(), { chunkSize: 4096 })), data);
});

testEachBackend(
  "this thread's runner (digests hashed alongside) matches runJob, and stops at a bad chunk",
  async () => {
    const key = bytes(32, 4);
    const plaintext = bytes(BATCH_CHUNKS * CHUNK_SIZE - 1000, 6);
    const job = () => ({
      first: 3,
      input: plaintext.slice(),
      last: true,
      output: new Uint8Array(BATCH_CHUNKS * CHUNK_CIPHERTEXT_SIZE),
    });
    const inline = inlineRunner();
    const [here, there] = [runJob(key, "seal", job()), await inline.seal(key, job())];
    assert.deepEqual(there.output, here.output);
    assert.deepEqual(there.digests, here.digests);
    assert.equal(there.verified, BATCH_CHUNKS);
    // A middle chunk damaged: both stop before it, with the digests of those before.
    const damaged = here.output.slice(0, 10 * CHUNK_CIPHERTEXT_SIZE);
    damaged[7 * CHUNK_CIPHERTEXT_SIZE + 5] ^= 1;
    const open = () => ({
      first: 3,
      input: damaged.slice(),
      output: new Uint8Array(10 * CHUNK_SIZE),
    });
    const [openedHere, openedThere] = [runJob(key, "open", open()), await inline.open(key, open())];
    assert.equal(openedThere.verified, 7);
    assert.deepEqual(openedThere.output, openedHere.output);
    assert.deepEqual(openedThere.digests, openedHere.digests);
    assert.deepEqual(openedThere.digests, here.digests.subarray(0, 7 * 32));
  },
);

testEachBackend("seal and open round-trip 3 MiB (two batches, a short last chunk)", async () => {
  const plaintext = bytes(3 * 1024 * 1024 + 99, 8);
  for (const workers of [0]) {
    const sealed = await collect(
      sealStream(ReadableStream.from([plaintext]), alice, { recipients: [bob.publicKey], workers }),
    );
    const opened = await openSealed(ReadableStream.from([sealed]), bob, { workers });
    assert.deepEqual(await collect(opened.plaintext), plaintext, `workers ${workers}`);
  }
});
