/**
 * Opening: checks the header, then releases the plaintext chunk by chunk,
 * each only once it has been authenticated, and the last one only once the
 * sender's signature over the whole file has been verified.
 *
 * What each check proves, in order:
 * 1. The header signature: the sender named in the header wrote this header,
 *    with these recipients and this key commitment. Nothing is decrypted
 *    before it verifies.
 * 2. The file key opens and matches the signed commitment: the reader has
 *    the sender's file key, hence the sender's payload key (unique per file,
 *    so no chunk of another file can open under it).
 * 3. Each chunk's tag, under that key and its position's nonce: the chunk was
 *    written for this place in this file by someone who holds the file key.
 *    When the reader is the only recipient, that is the sender alone.
 * 4. The payload signature over the header and every chunk's hash: the
 *    sender wrote these very chunks, and not another recipient, who also
 *    holds the file key. It comes last because a stream is signed at its
 *    end; the last chunk is held back until it verifies, so a file of one
 *    chunk (64 KiB) releases nothing before it, and a longer file's reader
 *    writing to a file keeps the output hidden until then (see
 *    {@linkcode writeFileAtomically}).
 *
 * @module
 */

import type { Identity, PublicKey } from "../identity/keys.ts";
import type { ByteReader } from "./_byte_reader.ts";
import type { Done } from "./_chunk_runner.ts";
import { SealedError } from "./errors.ts";
import { CHUNK_CIPHERTEXT_SIZE, CHUNK_SIZE, TRAILER_SIZE } from "./format.ts";
import { type Header, readHeader, unwrapPayloadKey } from "./_header.ts";
import { END_WINDOW, findEnd } from "./_end.ts";
import { binaryInput } from "./_input.ts";
import { type Lease, leaseStream } from "./_lease_stream.ts";
import {
  BATCH_CHUNKS,
  batchesInFlight,
  defaultWorkers,
  keptPool,
  RunnerSwitch,
} from "./_pipeline.ts";
import { Transcript } from "./_transcript.ts";

/**
 * What a sealed file says about itself, readable without a key.
 *
 * @example Which form a file is in
 * ```ts
 * import { generateIdentity, inspectSealed, type SealedInfo, sealStream } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const seal = (armor: boolean) =>
 *   sealStream(ReadableStream.from([new Uint8Array(5)]), alice, {
 *     recipients: [alice.publicKey],
 *     armor,
 *   });
 * const binary: SealedInfo = await inspectSealed(seal(false));
 * const text: SealedInfo = await inspectSealed(seal(true));
 * assert.deepEqual([binary.armored, text.armored], [false, true]);
 * ```
 */
export interface SealedInfo {
  /** The sender, whose header signature has been verified. */
  sender: PublicKey;
  /** The recipients, in header order. */
  recipients: PublicKey[];
  /** Whether the input was the armored text form. */
  armored: boolean;
}

/**
 * A sealed file being opened.
 *
 * @example Write the plaintext to a file
 * ```ts
 * import { generateIdentity, type OpenedSealed, openSealed, sealStream } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const data = new TextEncoder().encode("quarterly numbers");
 * const sealed = sealStream(ReadableStream.from([data]), alice, { recipients: [bob.publicKey] });
 *
 * const dir = await Deno.makeTempDir();
 * const opened: OpenedSealed = await openSealed(sealed, bob);
 * const file = await Deno.open(`${dir}/report.txt`, { write: true, createNew: true });
 * await opened.plaintext.pipeTo(file.writable); // Rejects if any check fails.
 * assert.deepEqual(await Deno.readFile(`${dir}/report.txt`), data);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface OpenedSealed extends SealedInfo {
  /**
   * The plaintext. It errors with a {@linkcode SealedError} when a chunk, the
   * end of the file or the payload signature fails; it closes only after the
   * payload signature has verified.
   */
  plaintext: ReadableStream<Uint8Array>;
}

/**
 * Options of {@linkcode openSealed}.
 *
 * @example Accept files from one sender only
 * ```ts
 * import {
 *   generateIdentity,
 *   openSealed,
 *   type OpenSealedOptions,
 *   samePublicKey,
 *   SealedError,
 *   sealStream,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [alice, bob, mallory] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
 * const options: OpenSealedOptions = {
 *   from: (sender) => samePublicKey(sender, alice.publicKey),
 *   workers: 0,
 * };
 * const sealed = sealStream(ReadableStream.from([new Uint8Array(5)]), mallory, {
 *   recipients: [bob.publicKey],
 * });
 * await assert.rejects(
 *   openSealed(sealed, bob, options),
 *   (error) => error instanceof SealedError && error.reason === "sender",
 * );
 * ```
 */
export interface OpenSealedOptions {
  /**
   * Accepts or refuses the sender, after the header signature verifies and
   * before anything is decrypted; a refusal is a `sender` failure.
   */
  from?: (sender: PublicKey) => boolean | Promise<boolean>;
  /**
   * Worker threads for large inputs; 0 keeps everything in this thread.
   * @default the number of cores, at most 4
   */
  workers?: number;
}

/**
 * Opens a sealed file (binary or armored) for `identity`. The promise
 * settles once the header is checked and the file key unwrapped; it rejects
 * with a {@linkcode SealedError} (`malformed`, `truncated`, `armor`,
 * `header-signature`, `sender`, `not-recipient`, `wrapped-key`).
 *
 * @param source The sealed file.
 * @param identity The recipient's identity.
 * @param options A sender check and the worker count.
 * @returns The sender, the recipients and the plaintext stream.
 *
 * @example Open a file sealed for you
 * ```ts
 * import { generateIdentity, openSealed, samePublicKey, sealStream } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const source = ReadableStream.from([new TextEncoder().encode("the plan")]);
 * const sealed = sealStream(source, alice, { recipients: [bob.publicKey] });
 *
 * const opened = await openSealed(sealed, bob);
 * assert.ok(samePublicKey(opened.sender, alice.publicKey));
 * assert.equal(await new Response(opened.plaintext).text(), "the plan");
 * ```
 */
export async function openSealed(
  source: ReadableStream<Uint8Array>,
  identity: Identity,
  options: OpenSealedOptions = {},
): Promise<OpenedSealed> {
  const { reader, armored } = await binaryInput(source);
  try {
    const header = await readHeader(reader);
    if (options.from && !await options.from(header.sender)) {
      throw new SealedError("sender", "The file was sealed by another sender than expected");
    }
    const payloadKey = unwrapPayloadKey(header, identity);
    const workers = options.workers ?? defaultWorkers();
    return {
      sender: header.sender,
      recipients: header.recipients,
      armored,
      plaintext: leaseStream(openParts(reader, header, payloadKey, workers)),
    };
  } catch (error) {
    await reader.cancel();
    throw error;
  }
}

/**
 * Reads a sealed file's header and checks its signature, without any key
 * and without reading the payload.
 *
 * @param source The sealed file (binary or armored); it is cancelled after the header.
 * @returns The sender, the recipients and the form.
 *
 * @example List who can open a file
 * ```ts
 * import { generateIdentity, inspectSealed, samePublicKey, sealStream } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
 * const sealed = sealStream(ReadableStream.from([new Uint8Array(100)]), alice, {
 *   recipients: [bob.publicKey, carol.publicKey],
 * });
 * const info = await inspectSealed(sealed); // No key needed.
 * assert.ok(samePublicKey(info.sender, alice.publicKey));
 * assert.equal(info.recipients.length, 2);
 * assert.ok(samePublicKey(info.recipients[1], carol.publicKey));
 * ```
 */
export async function inspectSealed(source: ReadableStream<Uint8Array>): Promise<SealedInfo> {
  const { reader, armored } = await binaryInput(source);
  try {
    const header = await readHeader(reader);
    return { sender: header.sender, recipients: header.recipients, armored };
  } finally {
    await reader.cancel();
  }
}

/** A batch given to the runner, with where it starts. */
interface Dispatched {
  first: number;
  count: number;
  result: Promise<Done>;
}

const BATCH_CIPHERTEXT = BATCH_CHUNKS * CHUNK_CIPHERTEXT_SIZE;

/**
 * The payload, released as batches verify. A chunk is opened as a middle
 * chunk when more than a trailer's worth of bytes follows it; otherwise,
 * or when it fails as a middle chunk, the end of the file is looked for
 * there (findEnd), which tells the last chunk, truncation, trailing data
 * and a damaged chunk apart.
 */
async function* openParts(
  reader: ByteReader,
  header: Header,
  payloadKey: Uint8Array,
  workers: number,
): AsyncGenerator<Lease> {
  const transcript = new Transcript(header.bytes);
  const inputs = keptPool(BATCH_CIPHERTEXT);
  const outputs = keptPool(BATCH_CHUNKS * CHUNK_SIZE);
  const runners = new RunnerSwitch(workers);
  const inFlight: Dispatched[] = [];
  const read = () => reader.readInto(inputs.take());
  let ahead: Promise<Uint8Array> | undefined;
  try {
    let current = await read();
    let next = current.length === BATCH_CIPHERTEXT ? await read() : EMPTY;
    ahead = next.length === BATCH_CIPHERTEXT ? read() : undefined;
    let index = 0;
    while (true) {
      const count = middleChunks(current, next);
      const rest = current.subarray(count * CHUNK_CIPHERTEXT_SIZE);
      const restCopy = rest.length > 0 && count > 0 ? rest.slice() : rest;
      if (count > 0) {
        const result = runners.next().open(payloadKey, {
          first: index,
          input: current.subarray(0, count * CHUNK_CIPHERTEXT_SIZE),
          output: outputs.take(),
        });
        result.catch(() => {}); // Awaited below, in order.
        inFlight.push({ first: index, count, result });
        index += count;
      }
      // The input ended within a trailer after `current`: the end is here.
      const atEnd = count === 0 || next.length <= TRAILER_SIZE;
      const keep = atEnd ? 0 : batchesInFlight(workers);
      while (inFlight.length > keep) {
        const dispatched = inFlight.shift()!;
        const done = await dispatched.result;
        if (done.verified > 0) {
          transcript.add(done.digests);
          yield { bytes: done.output, release: () => outputs.give(done.output) };
        } else {
          outputs.give(done.output);
        }
        if (done.verified < dispatched.count) {
          const tail = [restCopy, next, ...(ahead ? [ahead] : [])];
          ahead = undefined;
          const window = await endWindow(readAfter(done, inFlight.splice(0), tail), reader);
          const failed = dispatched.first + done.verified;
          yield* lastChunk(window, failed, header, payloadKey, transcript);
          return;
        }
        inputs.give(done.input);
      }
      if (atEnd) {
        const window = await endWindow([restCopy, next], reader);
        yield* lastChunk(window, index, header, payloadKey, transcript);
        return;
      }
      // Not at the end: `current` was a whole batch, dispatched above.
      current = next;
      next = ahead ? await ahead : EMPTY;
      ahead = next.length === BATCH_CIPHERTEXT ? read() : undefined;
    }
  } finally {
    runners.close();
    await reader.cancel();
    await ahead?.catch(() => {});
  }
}

/**
 * How many whole chunks at the start of `current` to open as middle chunks:
 * those followed, in `current` and `next`, by more than a trailer.
 */
function middleChunks(current: Uint8Array, next: Uint8Array): number {
  const whole = Math.floor(current.length / CHUNK_CIPHERTEXT_SIZE);
  const followed = Math.floor(
    (current.length + next.length - TRAILER_SIZE - 1) / CHUNK_CIPHERTEXT_SIZE,
  );
  return Math.max(0, Math.min(whole, followed));
}

/**
 * Everything read after the chunk that failed in `done`, in order: the
 * rest of its batch, the batches dispatched after it, then `tail`.
 */
function readAfter(
  done: Done,
  later: Dispatched[],
  tail: (Uint8Array | Promise<Uint8Array>)[],
): (Uint8Array | Promise<Uint8Array>)[] {
  return [
    done.input.subarray(done.verified * CHUNK_CIPHERTEXT_SIZE).slice(),
    ...later.map((dispatched) => {
      const input = dispatched.result.then((done) => done.input);
      input.catch(() => {}); // Awaited by endWindow() only as far as it needs.
      return input;
    }),
    ...tail,
  ];
}

/** The first END_WINDOW bytes of `parts` (awaited in order), then of the reader. */
async function endWindow(
  parts: (Uint8Array | Promise<Uint8Array>)[],
  reader: ByteReader,
): Promise<Uint8Array> {
  const window = new Uint8Array(END_WINDOW);
  let filled = 0;
  for (const part of parts) {
    if (filled >= END_WINDOW) break;
    const bytes = await part;
    const piece = bytes.subarray(0, END_WINDOW - filled);
    window.set(piece, filled);
    filled += piece.length;
  }
  if (filled < END_WINDOW) {
    const more = await reader.readInto(window.subarray(filled));
    return new Uint8Array(more.buffer, 0, filled + more.length);
  }
  return window;
}

/** Finds the last chunk at the start of `window`, checks it, and releases it. */
async function* lastChunk(
  window: Uint8Array,
  index: number,
  header: Header,
  payloadKey: Uint8Array,
  transcript: Transcript,
): AsyncGenerator<Lease> {
  const plaintext = await findEnd(window, index, header, payloadKey, transcript);
  yield { bytes: plaintext, release() {} };
}

const EMPTY = new Uint8Array(0);
