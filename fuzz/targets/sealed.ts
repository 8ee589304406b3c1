/**
 * Sealed files (lib/sealed), binary and armored: a file travels by e-mail,
 * USB stick or an untrusted server, so any change to it must be refused
 * with a SealedError, and the plaintext released on the way, if any, must
 * be a prefix of what the sender sealed.
 */

import fc from "fast-check";
import { generateIdentity, type Identity, samePublicKey } from "../../lib/identity/keys.ts";
import {
  armorDecoder,
  armorEncoder,
  CHUNK_SIZE,
  inspectSealed,
  openSealed,
  SealedError,
  sealStream,
} from "../../lib/sealed/mod.ts";
import { applyMutations, mutations } from "../_mutate.ts";
import { type FuzzTarget, fuzzTarget, parsesOrRejectsAsync } from "../_target.ts";

const [alice, bob, carol, outsider] = await Promise.all(
  Array.from({ length: 4 }, () => generateIdentity()),
);

function pattern(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 131 + (i >> 8)) & 0xff);
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface Seed {
  plaintext: Uint8Array;
  sealed: Uint8Array;
  recipients: Identity[];
  armored: boolean;
}

// The sizes where chunking has edges: nothing, less than a chunk, exactly
// one, one and a byte, a few.
const SHAPES = [
  { size: 0, recipients: [bob], armored: false },
  { size: 100, recipients: [bob, carol], armored: false },
  { size: CHUNK_SIZE, recipients: [bob], armored: false },
  { size: CHUNK_SIZE + 1, recipients: [carol, bob], armored: false },
  { size: 3 * CHUNK_SIZE + 5, recipients: [bob], armored: false },
  { size: 0, recipients: [bob], armored: true },
  { size: 200, recipients: [bob, carol], armored: true },
  { size: CHUNK_SIZE, recipients: [bob], armored: true },
];

const SEEDS: Seed[] = await Promise.all(SHAPES.map(async ({ size, recipients, armored }) => {
  const plaintext = pattern(size);
  const sealed = await collect(
    sealStream(ReadableStream.from([plaintext]), alice, {
      recipients: recipients.map((r) => r.publicKey),
      armor: armored,
      workers: 0,
    }),
  );
  return { plaintext, sealed, recipients, armored };
}));

function fail(message: string): never {
  throw new Error(message);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function isPrefix(prefix: Uint8Array, of: Uint8Array): boolean {
  return prefix.length <= of.length && prefix.every((byte, i) => byte === of[i]);
}

/** `bytes` as a stream delivered in pieces cut at `cuts` (fractions). */
function streamOf(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const pieces = [0, ...points, bytes.length].slice(1).map((end, i, ends) =>
    bytes.slice(i === 0 ? 0 : ends[i - 1], end)
  );
  return ReadableStream.from(pieces.filter((piece) => piece.length > 0));
}

/** Everything a stream releases before it ends or errors. */
async function drain(
  stream: ReadableStream<Uint8Array>,
): Promise<{ bytes: Uint8Array; error?: unknown }> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  let error: unknown;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value.slice());
    }
  } catch (caught) {
    error = caught;
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, part) => (bytes.set(part, offset), offset + part.length), 0);
  return { bytes, error };
}

const cuts = fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
  maxLength: 3,
});

const open = fuzzTarget(
  "sealed/open",
  fc.asyncProperty(
    fc.nat({ max: SEEDS.length - 1 }),
    fc.option(mutations, { freq: 8, nil: undefined }),
    fc.constantFrom(bob, carol, outsider),
    cuts,
    async (index, damage, reader, cuts) => {
      const seed = SEEDS[index];
      const bytes = damage ? applyMutations(seed.sealed, damage) : seed.sealed;
      const intact = same(bytes, seed.sealed);
      const addressed = seed.recipients.includes(reader);

      // The header alone: its signature covers the sender and recipients.
      const info = await parsesOrRejectsAsync(
        () => inspectSealed(streamOf(bytes, cuts)),
        SealedError,
      );
      if (
        info && (!samePublicKey(info.sender, alice.publicKey) ||
          info.recipients.length !== seed.recipients.length)
      ) {
        fail("inspectSealed() read another sender or recipients than sealed");
      }

      const opened = await parsesOrRejectsAsync(
        () => openSealed(streamOf(bytes, cuts), reader, { workers: 0 }),
        SealedError,
      );
      if (!opened) {
        if (intact && addressed) fail("An intact file for this reader was refused");
        return;
      }
      if (!addressed) fail("A file opened for a reader it is not sealed for");
      const { bytes: plaintext, error } = await drain(opened.plaintext);
      if (error !== undefined && !(error instanceof SealedError)) throw error;
      if (!isPrefix(plaintext, seed.plaintext)) fail("Released plaintext that was never sealed");
      if (error === undefined) {
        // Binary has no slack: only the unchanged file opens. Armor may
        // differ in line endings and blank lines around it.
        if (!seed.armored && !intact) fail("A changed file opened");
        if (!same(plaintext, seed.plaintext)) fail("A file opened to a shorter plaintext");
      } else if (intact && addressed) {
        fail(`An intact file failed: ${(error as Error).message}`);
      }
    },
  ),
  { testRuns: 100 },
);

// --- armor alone ------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ARMOR_SEEDS = SEEDS.filter((seed) => seed.armored).map((seed) => decoder.decode(seed.sealed));
// Armor of random bytes of a few sizes around a line (48 bytes).
const RAW = [1, 2, 3, 47, 48, 49, 96, 500].map((n) => pattern(n));
const RAW_ARMOR = await Promise.all(
  RAW.map(async (bytes) =>
    decoder.decode(await collect(ReadableStream.from([bytes]).pipeThrough(armorEncoder())))
  ),
);

/**
 * The one form an armored text may take once line endings (LF or CRLF)
 * and the blank lines around it are set aside.
 */
function canonical(text: string): string {
  const lines = text.split("\n").map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
  const begin = lines.findIndex((line) => line.trim() !== "");
  let end = lines.length;
  while (end > begin && lines[end - 1].replace(/[ \t\r]/g, "") === "") end--;
  return lines.slice(begin, end).join("\n") + "\n";
}

const armorText = fc.oneof(
  fc.tuple(fc.constantFrom(...ARMOR_SEEDS, ...RAW_ARMOR), mutations).map(([text, list]) =>
    decoder.decode(applyMutations(encoder.encode(text), list))
  ),
  fc.constantFrom(...RAW_ARMOR),
  fc.tuple(fc.constantFrom(...RAW_ARMOR), fc.constantFrom("\r\n", "\n\n", "\n \t\n", "\r")).map((
    [text, eol],
  ) => text.replaceAll("\n", eol)),
);

const armor = fuzzTarget(
  "sealed/armor",
  fc.asyncProperty(armorText, cuts, async (text, cuts) => {
    const input = encoder.encode(text);
    const { bytes, error } = await drain(streamOf(input, cuts).pipeThrough(armorDecoder()));
    if (error !== undefined) {
      if (!(error instanceof SealedError)) throw error;
      const lines = text.split("\n").length;
      if (error.reason === "armor" && !(error.line! >= 1 && error.line! <= lines)) {
        fail(`Armor error at line ${error.line} of ${lines}`);
      }
      return;
    }
    // Strict reading: what decodes re-encodes to the very same text.
    const again = decoder.decode(
      await collect(ReadableStream.from([bytes]).pipeThrough(armorEncoder())),
    );
    if (again !== canonical(text)) {
      fail(`Decoded armor is not canonical: ${JSON.stringify(text.slice(0, 200))}`);
    }
  }),
);

/** The sealed-file targets. */
export const targets: FuzzTarget[] = [open, armor];
