/**
 * The frame and record layer: what a peer (or anyone on the path) controls
 * byte for byte before any authentication has happened. FrameReader must
 * find exactly the frames that were sent however the stream is chunked, and
 * fail only with FramingError on junk; a record that was tampered with,
 * truncated, reordered, replayed or forged must never decrypt.
 */

import fc from "fast-check";
import { concat } from "../../lib/bytes.ts";
import { type ByteStream, SecureChannel } from "../../lib/channel/channel.ts";
import { OvtpError } from "../../lib/errors.ts";
import {
  encodeFrame,
  FrameReader,
  FramingError,
  MAX_FRAME_LENGTH,
} from "../../lib/channel/framing.ts";
import type { PublicKey } from "../../lib/identity/keys.ts";
import { AES_GCM, CHACHA_POLY, DecryptError } from "../../lib/channel/noise/aead.ts";
import { CipherState } from "../../lib/channel/noise/cipher_state.ts";
import { type FuzzTarget, fuzzTarget } from "../_target.ts";
import { applyMutations, mutations } from "../_mutate.ts";

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/** Cuts `bytes` at the given fractions of its length (in any order, repeats allowed). */
function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) chunks.push(bytes.slice(from, point));
    from = Math.max(from, point);
  }
  return chunks;
}

/**
 * The chunks as a stream. A byte stream is read with BYOB requests straight
 * into the reader's buffer, as a Deno socket is; any other stream takes the
 * copying path. Both must behave the same, so each case picks one.
 */
function streamOf(chunks: Uint8Array[], byob: boolean): ReadableStream<Uint8Array> {
  let next = 0;
  if (!byob) {
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (next < chunks.length) controller.enqueue(chunks[next++]);
        else controller.close();
      },
    });
  }
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      // enqueue() transfers the buffer: hand over a copy.
      if (next < chunks.length) return controller.enqueue(chunks[next++].slice());
      controller.close();
      // A BYOB read waiting at the end settles only once its view is given back.
      controller.byobRequest?.respond(0);
    },
  });
}

// For Array.map: one array of parts in, one buffer out.
function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  return concat(...parts);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

// Bodies are mostly views of one patterned block: generating their bytes one
// by one (let alone 64 KiB of them) would dominate the run time, and the
// framing layer never looks at them.
const BLOCK = Uint8Array.from({ length: 160_000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);

/** `min` to `max` bytes of the block, from an arbitrary offset. */
function blockBody(min: number, max: number): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.integer({ min, max }), fc.nat(BLOCK.length - max))
    .map(([n, from]) => BLOCK.subarray(from, from + n));
}

/** Mostly small bodies, now and then one at or near the 65535-byte limit. */
const frameBody = fc.oneof(
  { weight: 12, arbitrary: blockBody(0, 300) },
  { weight: 1, arbitrary: blockBody(MAX_FRAME_LENGTH - 3, MAX_FRAME_LENGTH) },
);
const cuts = fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
  maxLength: 12,
});

// ---------------------------------------------------------------------------
// FrameReader
// ---------------------------------------------------------------------------

/** What a correct reader yields for `bytes`: its frames, then an end or an error. */
function referenceFrames(
  bytes: Uint8Array,
  maxLength: number,
  minLength: number,
): { frames: Uint8Array[]; error: boolean } {
  const frames: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 2) return { frames, error: true };
    const length = bytes[at] * 256 + bytes[at + 1];
    if (length > maxLength || length < minLength) return { frames, error: true };
    if (at + 2 + length > bytes.length) return { frames, error: true };
    frames.push(bytes.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return { frames, error: false };
}

/**
 * Reads frames until the end or an error; anything thrown but FramingError
 * is a crash. `views` alternates read() and readView() (copied at once, as
 * its contract asks) so that both paths are covered.
 */
async function readAll(
  stream: ReadableStream<Uint8Array>,
  maxLength: number,
  minLength: number,
  views: boolean,
): Promise<{ frames: Uint8Array[]; error: boolean }> {
  const reader = new FrameReader(stream);
  const frames: Uint8Array[] = [];
  try {
    while (true) {
      const frame = views && frames.length % 2 === 1
        ? (await reader.readView(maxLength, minLength))?.slice() ?? null
        : await reader.read(maxLength, minLength);
      if (frame === null) return { frames, error: false };
      frames.push(frame);
      // Past the input's frame count means the reader invented one: stop.
      if (frames.length > 10_000) throw new Error("FrameReader yields frames without end");
    }
  } catch (error) {
    if (error instanceof FramingError) return { frames, error: true };
    throw error;
  }
}

function sameOutcome(
  actual: { frames: Uint8Array[]; error: boolean },
  expected: { frames: Uint8Array[]; error: boolean },
): void {
  check(
    actual.frames.length === expected.frames.length && actual.error === expected.error,
    `Read ${actual.frames.length} frames then ${actual.error ? "an error" : "the end"}; ` +
      `expected ${expected.frames.length} then ${expected.error ? "an error" : "the end"}`,
  );
  actual.frames.forEach((frame, i) => check(equalBytes(frame, expected.frames[i]), `Frame ${i}`));
}

// Valid input: exactly the frames encodeFrame() made, whatever the chunking,
// even with the limits set tight to the largest and smallest body.
const readerChunking = fuzzTarget(
  "frames/reader-chunking",
  fc.asyncProperty(
    fc.array(frameBody, { maxLength: 8 }),
    cuts,
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
    async (bodies, cutAt, byob, views, tight) => {
      const wire = concatAll(bodies.map(encodeFrame));
      const max = tight && bodies.length ? Math.max(...bodies.map((b) => b.length)) : undefined;
      const min = tight && bodies.length ? Math.min(...bodies.map((b) => b.length)) : undefined;
      const result = await readAll(
        streamOf(chunked(wire, cutAt), byob),
        max ?? MAX_FRAME_LENGTH,
        min ?? 0,
        views,
      );
      sameOutcome(result, { frames: bodies, error: false });
    },
  ),
);

// Damaged or random input: the same frames and outcome as a four-line
// reference parser, so a reader that loses sync, over-reads, or accepts a
// length outside the limits fails here, as does any error but FramingError.
const readerJunk = fuzzTarget(
  "frames/reader-junk",
  fc.asyncProperty(
    fc.oneof(
      fc.tuple(fc.array(frameBody, { maxLength: 5 }), mutations)
        .map(([bodies, list]) => applyMutations(concatAll(bodies.map(encodeFrame)), list)),
      fc.uint8Array({ maxLength: 600 }),
    ),
    cuts,
    fc.boolean(),
    fc.boolean(),
    fc.integer({ min: 0, max: MAX_FRAME_LENGTH }),
    fc.integer({ min: 0, max: MAX_FRAME_LENGTH }),
    async (wire, cutAt, byob, views, a, b) => {
      const [min, max] = a <= b ? [a, b] : [b, a];
      const result = await readAll(streamOf(chunked(wire, cutAt), byob), max, min, views);
      sameOutcome(result, referenceFrames(wire, max, min));
    },
  ),
);

// ---------------------------------------------------------------------------
// CipherState records
// ---------------------------------------------------------------------------

const KEY = crypto.getRandomValues(new Uint8Array(32));

/** What an attacker on the path does to the sequence of sealed records. */
type RecordAttack =
  | { kind: "mutate"; at: number; list: Mutations }
  | { kind: "drop"; at: number }
  | { kind: "replay"; at: number; to: number }
  | { kind: "swap"; at: number; other: number }
  | { kind: "forge"; at: number; bytes: Uint8Array }
  | { kind: "pad"; at: number; bytes: Uint8Array };
type Mutations = typeof mutations extends fc.Arbitrary<infer T> ? T : never;

const index = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const recordAttack: fc.Arbitrary<RecordAttack> = fc.oneof(
  fc.record({ kind: fc.constant("mutate" as const), at: index, list: mutations }),
  fc.record({ kind: fc.constant("drop" as const), at: index }),
  fc.record({ kind: fc.constant("replay" as const), at: index, to: index }),
  fc.record({ kind: fc.constant("swap" as const), at: index, other: index }),
  fc.record({
    kind: fc.constant("forge" as const),
    at: index,
    bytes: fc.uint8Array({ maxLength: 80 }),
  }),
  fc.record({
    kind: fc.constant("pad" as const),
    at: index,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }),
  }),
);

function attack(records: Uint8Array[], a: RecordAttack): Uint8Array[] {
  const out = records.slice();
  const at = Math.floor(a.at * out.length);
  if (out.length === 0 && a.kind !== "forge") return out;
  switch (a.kind) {
    case "mutate":
      out[at] = applyMutations(out[at], a.list);
      break;
    case "drop":
      out.splice(at, 1);
      break;
    case "replay":
      out.splice(Math.floor(a.to * (out.length + 1)), 0, out[at]);
      break;
    case "swap": {
      const other = Math.floor(a.other * out.length);
      [out[at], out[other]] = [out[other], out[at]];
      break;
    }
    case "forge":
      out.splice(at, 0, a.bytes);
      break;
    case "pad":
      out[at] = concatAll([out[at], a.bytes]);
      break;
  }
  return out;
}

// The receiving CipherState against an attacker who rearranges sealed
// records: a record decrypts if and only if it is byte for byte the next one
// sent (the nonce stays put on failure, so the genuine one still decrypts
// after a forgery), and every refusal is a DecryptError.
const cipherRecords = fuzzTarget(
  "frames/cipher-records",
  fc.property(
    fc.constantFrom(CHACHA_POLY, AES_GCM),
    fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 6 }),
    fc.uint8Array({ maxLength: 32 }),
    fc.array(recordAttack, { maxLength: 3 }),
    (aead, plaintexts, ad, attacks) => {
      const sender = new CipherState(aead, KEY);
      const receiver = new CipherState(aead, KEY);
      const sealed = plaintexts.map((p) => sender.encryptWithAd(ad, p).slice());
      const wire = attacks.reduce(attack, sealed);
      let next = 0;
      for (const record of wire) {
        const genuine = next < sealed.length && equalBytes(record, sealed[next]);
        const opened = parsesOrDecryptError(() => receiver.decryptWithAd(ad, record));
        check(
          genuine === (opened !== undefined),
          genuine ? "Refused a genuine record" : "Accepted a damaged record",
        );
        if (opened) {
          check(equalBytes(opened, plaintexts[next]), "Decrypted to other bytes");
          next++;
        }
        check(receiver.counter === next, "The nonce moved on a refused record");
      }
    },
  ),
);

function parsesOrDecryptError(open: () => Uint8Array): Uint8Array | undefined {
  try {
    return open();
  } catch (error) {
    if (error instanceof DecryptError) return undefined;
    throw error;
  }
}

// ---------------------------------------------------------------------------
// SecureChannel records and bulk records
// ---------------------------------------------------------------------------

/**
 * A channel over `stream` whose transport keys are given, not negotiated.
 * The record layer depends on the handshake only through the two split
 * CipherStates, and a handshake per case (about 5 ms of public-key crypto)
 * would cost this target ten minutes at 100,000 cases; the handshake has its
 * own targets (handshake.ts). The constructor is private to TypeScript only.
 */
const makeChannel = SecureChannel as unknown as new (
  stream: ByteStream,
  reader: FrameReader,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  result: { send: CipherState; receive: CipherState; handshakeHash: Uint8Array },
  peer: PublicKey,
) => SecureChannel;

const SEND_KEY = crypto.getRandomValues(new Uint8Array(32));
const OTHER_KEY = crypto.getRandomValues(new Uint8Array(32));
const PEER: PublicKey = { x25519: new Uint8Array(32), ed25519: new Uint8Array(32) };

function channelOver(
  readable: ReadableStream<Uint8Array>,
  writable: WritableStream<Uint8Array>,
  sendKey: Uint8Array,
  receiveKey: Uint8Array,
): SecureChannel {
  const stream: ByteStream = { readable, writable, close() {} };
  return new makeChannel(stream, new FrameReader(readable), writable.getWriter(), {
    send: new CipherState(CHACHA_POLY, sendKey),
    receive: new CipherState(CHACHA_POLY, receiveKey),
    handshakeHash: new Uint8Array(32),
  }, PEER);
}

/** One send(): a record whose plaintext announces its bulk records' sizes. */
interface Item {
  record: Uint8Array;
  bulk: Uint8Array[];
}

// The record's first byte counts the bulk records, then a u32 size each, as
// a bulk notice does: the receiver learns the sizes only from the record.
function encodeItem(filler: Uint8Array, bulk: Uint8Array[]): Item {
  const record = new Uint8Array(1 + 4 * bulk.length + filler.length);
  const view = new DataView(record.buffer);
  record[0] = bulk.length;
  bulk.forEach((b, i) => view.setUint32(1 + 4 * i, b.length));
  record.set(filler, 1 + 4 * bulk.length);
  return { record, bulk };
}

function bulkSizes(record: Uint8Array): number[] {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  return Array.from({ length: record[0] }, (_, i) => view.getUint32(1 + 4 * i));
}

const bulkBody = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 1, arbitrary: blockBody(60_000, 140_000) },
);
const item = fc.tuple(fc.uint8Array({ maxLength: 100 }), fc.array(bulkBody, { maxLength: 3 }))
  .map(([filler, bulk]) => encodeItem(filler, bulk));

/** Damage to the wire: whole sends dropped, replayed or swapped, or bytes changed. */
const wireAttack = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("bytes" as const), list: mutations }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("items" as const),
      attack: recordAttack.filter((a) => a.kind !== "mutate"),
    }),
  },
);

/** Collects what a channel writes, one array of writes per send(). */
function recorder(): { writable: WritableStream<Uint8Array>; sends: Uint8Array[][] } {
  const sends: Uint8Array[][] = [];
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      // send() hands over views of buffers it does not reuse, but copy anyway.
      sends[sends.length - 1].push(chunk.slice());
    },
  });
  return { writable, sends };
}

// A real channel pair's records, with bulk records, through an attacker.
// Whatever arrives, the receiver yields an in-order prefix of what was sent
// and then either the clean end (only if the wire is that prefix, cut at a
// send's boundary) or OvtpError "protocol"; the undamaged wire yields all.
const channelRecords = fuzzTarget(
  "frames/channel-records",
  fc.asyncProperty(
    fc.array(item, { minLength: 1, maxLength: 4 }),
    wireAttack,
    cuts,
    fc.boolean(),
    async (items, damage, cutAt, byob) => {
      const out = recorder();
      const sender = channelOver(new ReadableStream(), out.writable, SEND_KEY, OTHER_KEY);
      for (const { record, bulk } of items) {
        out.sends.push([]);
        await sender.send(record, bulk);
      }
      const sends = out.sends.map(concatAll);
      let wire: Uint8Array;
      if (damage.kind === "bytes") wire = applyMutations(concatAll(sends), damage.list);
      else if (damage.kind === "items") wire = concatAll(attack(sends, damage.attack));
      else wire = concatAll(sends);
      const original = concatAll(sends);

      const receiver = channelOver(
        streamOf(chunked(wire, cutAt), byob),
        new WritableStream(),
        OTHER_KEY,
        SEND_KEY,
      );
      let received = 0;
      let failure: unknown;
      try {
        while (true) {
          const record = await receiver.receive();
          if (record === null) break;
          check(received < items.length, "Received more records than were sent");
          check(equalBytes(record, items[received].record), `Record ${received} differs`);
          const sizes = bulkSizes(record);
          for (const [i, size] of sizes.entries()) {
            const body = await receiver.receiveBulk(size);
            check(
              equalBytes(body, items[received].bulk[i]),
              `Bulk record ${received}.${i} differs`,
            );
          }
          received++;
        }
      } catch (error) {
        if (!(error instanceof OvtpError && error.kind === "protocol")) throw error;
        failure = error;
      }
      if (equalBytes(wire, original)) {
        check(failure === undefined && received === items.length, "Refused the genuine wire");
      } else if (failure === undefined) {
        // A clean end is only possible when the wire is the sent stream cut
        // between sends, which the record layer cannot tell from a close.
        const prefix = concatAll(sends.slice(0, received));
        check(equalBytes(wire, prefix), "A damaged wire ended cleanly");
      }
    },
  ),
);

export const targets: FuzzTarget[] = [readerChunking, readerJunk, cipherRecords, channelRecords];
