/**
 * Sealing: a stream of any length in, a sealed file out, with memory that
 * stays flat whatever the size.
 *
 * @module
 */

import { concat } from "../bytes.ts";
import type { Identity, PublicKey } from "../identity/keys.ts";
import { armorEncoder } from "./armor.ts";
import type { BufferPool } from "../io/buffer_pool.ts";
import { ByteReader } from "./_byte_reader.ts";
import type { Done } from "./_chunk_runner.ts";
import { CHUNK_SIZE, END_MARK, TAG_SIZE } from "./format.ts";
import { createHeader, SEALED_RECIPIENTS } from "./_header.ts";
import { checkRecipientCount } from "../recipients/entries.ts";
import { type Lease, leaseStream } from "./_lease_stream.ts";
import {
  BATCH_CHUNKS,
  batchesInFlight,
  defaultWorkers,
  keptPool,
  RunnerSwitch,
} from "./_pipeline.ts";
import { chunkCount } from "./stream.ts";
import { Transcript } from "./_transcript.ts";

const BATCH_BYTES = BATCH_CHUNKS * CHUNK_SIZE;

/**
 * Options of {@linkcode sealStream}.
 *
 * @example Armored text for two recipients
 * ```ts
 * import { generateIdentity, inspectSealed, type SealStreamOptions, sealStream } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
 * const options: SealStreamOptions = {
 *   recipients: [bob.publicKey, carol.publicKey, bob.publicKey], // The duplicate is dropped.
 *   armor: true,
 * };
 * const text = await new Response(sealStream(ReadableStream.from([]), alice, options)).text();
 * assert.match(text, /^-----BEGIN OVTP SEALED FILE-----\n/);
 * const info = await inspectSealed(ReadableStream.from([new TextEncoder().encode(text)]));
 * assert.equal(info.recipients.length, 2);
 * ```
 */
export interface SealStreamOptions {
  /** Who can open the file (duplicates are dropped); 1 to 1024 keys. */
  recipients: PublicKey[];
  /** Write the armored text form instead of binary. @default false */
  armor?: boolean;
  /**
   * Worker threads for large inputs (they start after the first 4 MiB);
   * 0 keeps everything in this thread.
   * @default the number of cores, at most 4
   */
  workers?: number;
}

/**
 * Seals `source` for the recipients, signed by `sender`. The header goes
 * out first, then the chunks as they are sealed, then the payload
 * signature; an error (from the source too) errors the returned stream.
 * The result is a byte stream: a BYOB reader avoids an allocation per
 * piece.
 *
 * @param source The plaintext.
 * @param sender The identity that signs the file.
 * @param options The recipients and the form.
 * @returns The sealed file.
 *
 * @example Seal a file for a recipient
 * ```ts
 * import { generateIdentity, openSealed, sealStream } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/notes.txt`, "meet at noon");
 *
 * const input = await Deno.open(`${dir}/notes.txt`);
 * const sealed = sealStream(input.readable, alice, { recipients: [bob.publicKey] });
 * const bytes = new Uint8Array(await new Response(sealed).arrayBuffer());
 * assert.ok(!new TextDecoder().decode(bytes).includes("meet at noon"));
 *
 * const opened = await openSealed(ReadableStream.from([bytes]), bob);
 * assert.equal(await new Response(opened.plaintext).text(), "meet at noon");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function sealStream(
  source: ReadableStream<Uint8Array>,
  sender: Identity,
  options: SealStreamOptions,
): ReadableStream<Uint8Array> {
  const recipients = unique(options.recipients);
  checkRecipientCount(SEALED_RECIPIENTS, recipients.length);
  const workers = options.workers ?? defaultWorkers();
  const sealed = leaseStream(sealParts(source, sender, recipients, workers));
  return options.armor ? sealed.pipeThrough(armorEncoder()) : sealed;
}

async function* sealParts(
  source: ReadableStream<Uint8Array>,
  sender: Identity,
  recipients: PublicKey[],
  workers: number,
): AsyncGenerator<Lease> {
  const reader = new ByteReader(source);
  const inputs = keptPool(BATCH_BYTES);
  const outputs = keptPool(BATCH_BYTES + BATCH_CHUNKS * TAG_SIZE);
  const runners = new RunnerSwitch(workers);
  const inFlight: Promise<Done>[] = [];
  try {
    const { bytes: header, payloadKey } = await createHeader(sender, recipients);
    yield { bytes: header, release() {} };
    const transcript = new Transcript(header);
    let first = 0;
    for await (const { input, last } of batches(reader, inputs)) {
      const runner = runners.next();
      const count = chunkCount(input.length); // Before a worker takes the buffer.
      const sealing = runner.seal(payloadKey, { first, input, last, output: outputs.take() });
      sealing.catch(() => {}); // Awaited below, in order.
      inFlight.push(sealing);
      first += count;
      const keep = last ? 0 : batchesInFlight(workers);
      while (inFlight.length > keep) {
        const done = await inFlight.shift()!;
        inputs.give(done.input);
        transcript.add(done.digests);
        yield { bytes: done.output, release: () => outputs.give(done.output) };
      }
    }
    yield { bytes: concat(END_MARK, await transcript.sign(sender.ed25519Private)), release() {} };
  } finally {
    runners.close();
    await reader.cancel();
  }
}

/**
 * The plaintext in batches, each flagged when it holds the last chunk. The
 * read after the next one is started before a batch is handed out, so
 * reading overlaps sealing; a batch is known to be the last when the read
 * after it comes back empty.
 */
async function* batches(
  reader: ByteReader,
  pool: BufferPool,
): AsyncGenerator<{ input: Uint8Array; last: boolean }> {
  const read = () => reader.readInto(pool.take());
  let current = await read();
  let ahead = current.length === BATCH_BYTES ? read() : undefined;
  while (true) {
    const next = ahead ? await ahead : new Uint8Array(0);
    ahead = next.length === BATCH_BYTES ? read() : undefined;
    const last = next.length === 0;
    yield { input: current, last };
    if (last) {
      pool.give(next);
      return;
    }
    current = next;
  }
}

function unique(keys: PublicKey[]): PublicKey[] {
  const seen = new Set<string>();
  return keys.filter((key) => {
    const id = key.x25519.join(",");
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
