/**
 * Tells the binary form from the armored one by the first bytes, and
 * returns a reader of the binary form either way. Only the files in
 * lib/sealed/ import it.
 *
 * @module
 */

import { constantTimeEqual } from "../bytes.ts";
import { armorDecoder } from "./armor.ts";
import { ByteReader } from "./_byte_reader.ts";
import { SEALED_MAGIC } from "./format.ts";

/** A reader of the binary sealed file, and whether it came armored. */
export interface BinaryInput {
  /** Reads the binary form. */
  reader: ByteReader;
  /** Whether the input was armored text. */
  armored: boolean;
}

/**
 * Sniffs `source`: binary when it starts with the magic bytes (read on
 * directly, BYOB when `source` allows), else armored text (decoded on the
 * way).
 */
export async function binaryInput(source: ReadableStream<Uint8Array>): Promise<BinaryInput> {
  const raw = new ByteReader(source);
  await raw.fill(SEALED_MAGIC.length);
  const first = new Uint8Array(Math.min(raw.buffered, SEALED_MAGIC.length));
  raw.peek(first);
  if (first.length === SEALED_MAGIC.length && constantTimeEqual(first, SEALED_MAGIC)) {
    return { reader: raw, armored: false };
  }
  return { reader: new ByteReader(raw.rest().pipeThrough(armorDecoder())), armored: true };
}
