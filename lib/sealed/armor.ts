/**
 * The armored form of a sealed file: text that survives e-mail and
 * copy-paste.
 *
 * ```
 * -----BEGIN OVTP SEALED FILE-----
 * <standard padded base64 of the binary file, 64 characters per line>
 * -----END OVTP SEALED FILE-----
 * ```
 *
 * Reading is strict, so that one file has one text form and damage is
 * reported where it is: every line but the last base64 line holds exactly 64
 * characters of the base64 alphabet; the last holds 4 to 64, with padding
 * only at its end and zero unused bits; lines end in LF or CRLF. Only blank
 * lines may come before the BEGIN line or after the END line. A damaged line
 * is refused with its 1-based line number.
 *
 * @module
 */

import { concat } from "../bytes.ts";
import { SealedError } from "./errors.ts";
import { ARMOR_BEGIN, ARMOR_END, ARMOR_LINE_LENGTH } from "./format.ts";

/** Bytes per full line. */
const LINE_BYTES = (ARMOR_LINE_LENGTH / 4) * 3;
/** Full lines decoded together. */
const LINES_PER_BATCH = 8192;
/** The longest line accepted before the BEGIN line (blank lines can be long). */
const MAX_PREAMBLE_LINE = 4096;
const NEWLINE = 0x0a;

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const BEGIN_BYTES = encoder.encode(ARMOR_BEGIN);
const END_BYTES = encoder.encode(ARMOR_END);

/**
 * A stream that turns a binary sealed file into its armored form.
 *
 * @returns A TransformStream from binary to armored bytes.
 *
 * @example Armor bytes for e-mail
 * ```ts
 * import { armorEncoder } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const binary = ReadableStream.from([new Uint8Array([1, 2]), new Uint8Array([3])]);
 * const text = await new Response(binary.pipeThrough(armorEncoder())).text();
 * assert.equal(
 *   text,
 *   "-----BEGIN OVTP SEALED FILE-----\nAQID\n-----END OVTP SEALED FILE-----\n",
 * );
 * ```
 */
export function armorEncoder(): TransformStream<Uint8Array, Uint8Array> {
  let pending = new Uint8Array(0);
  return new TransformStream({
    start(controller) {
      controller.enqueue(encoder.encode(ARMOR_BEGIN + "\n"));
    },
    transform(chunk, controller) {
      let bytes = chunk;
      if (pending.length > 0) {
        const joined = new Uint8Array(
          pending.length + Math.min(chunk.length, LINE_BYTES - pending.length),
        );
        joined.set(pending);
        joined.set(chunk.subarray(0, joined.length - pending.length), pending.length);
        bytes = chunk.subarray(joined.length - pending.length);
        if (joined.length < LINE_BYTES) {
          pending = joined;
          return;
        }
        controller.enqueue(lines(joined));
      }
      const whole = bytes.length - (bytes.length % LINE_BYTES);
      if (whole > 0) controller.enqueue(lines(bytes.subarray(0, whole)));
      pending = bytes.slice(whole);
    },
    flush(controller) {
      const last = pending.length > 0 ? pending.toBase64() + "\n" : "";
      controller.enqueue(encoder.encode(last + ARMOR_END + "\n"));
    },
  });
}

/** Base64 of whole lines' worth of bytes, a newline after every 64 characters. */
function lines(bytes: Uint8Array): Uint8Array {
  const text = bytes.toBase64();
  const count = text.length / ARMOR_LINE_LENGTH;
  const width = ARMOR_LINE_LENGTH + 1;
  const out = new Uint8Array(text.length + count);
  encoder.encodeInto(text, out);
  // Spread the lines out from the last, in place, each followed by LF.
  for (let i = count - 1; i >= 0; i--) {
    out.copyWithin(i * width, i * ARMOR_LINE_LENGTH, (i + 1) * ARMOR_LINE_LENGTH);
    out[i * width + ARMOR_LINE_LENGTH] = NEWLINE;
  }
  return out;
}

type Stage = "preamble" | "body" | "after";

/**
 * A stream that turns an armored sealed file back into binary, strictly.
 * It errors with a {@linkcode SealedError}: `armor` (with the line) for a
 * damaged line, `malformed` when the text does not start with the BEGIN
 * line, `truncated` when the END line is missing, `trailing-data` for text
 * after it.
 *
 * @returns A TransformStream from armored to binary bytes.
 *
 * @example Decode, and report a damaged line
 * ```ts
 * import { armorDecoder, SealedError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const decode = (text: string) =>
 *   new Response(
 *     ReadableStream.from([new TextEncoder().encode(text)]).pipeThrough(armorDecoder()),
 *   ).bytes();
 * const begin = "-----BEGIN OVTP SEALED FILE-----\n";
 * const end = "-----END OVTP SEALED FILE-----\n";
 * assert.deepEqual(await decode(`${begin}AQID\r\n${end}`), new Uint8Array([1, 2, 3]));
 *
 * await assert.rejects(decode(`${begin}AQ!D\n${end}`), (error) => {
 *   assert.ok(error instanceof SealedError);
 *   assert.deepEqual([error.reason, error.line], ["armor", 2]);
 *   return true;
 * });
 * ```
 */
export function armorDecoder(): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new Dearmor();
  return new TransformStream({
    transform: (chunk, controller) => decoder.push(chunk, (bytes) => controller.enqueue(bytes)),
    flush: (controller) => decoder.end((bytes) => controller.enqueue(bytes)),
  });
}

/**
 * The decoder's state. Base64 lines are gathered in a batch and decoded
 * together; the batch's most recent line is held back until the next line
 * says whether it was the last (the only one that may be short or padded).
 */
class Dearmor {
  #stage: Stage = "preamble";
  /** Lines completed so far. */
  #line = 0;
  #partial: Uint8Array[] = [];
  #partialLength = 0;
  #batch = new Uint8Array(LINES_PER_BATCH * ARMOR_LINE_LENGTH);
  /** Lines in the batch, the held one included. */
  #lines = 0;
  /** The line number of the batch's first line. */
  #first = 0;
  /** The length of the held (last) line. */
  #heldLength = 0;

  push(chunk: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    let start = 0;
    while (start < chunk.length) {
      start = this.#fullLines(chunk, start, emit);
      if (start >= chunk.length) break;
      const newline = chunk.indexOf(NEWLINE, start);
      if (newline < 0) {
        this.#partial.push(chunk.slice(start));
        this.#partialLength += chunk.length - start;
        this.#checkPartial();
        return;
      }
      let line = chunk.subarray(start, newline);
      if (this.#partialLength > 0) {
        line = concat(...this.#partial, line);
        this.#partial = [];
        this.#partialLength = 0;
      }
      this.#onLine(line, emit);
      start = newline + 1;
    }
  }

  /**
   * The fast path: a run of full LF-ended lines in the body is decoded in
   * one call (fromBase64 skips the newlines), all but its last line, which
   * is held as usual. Anything unusual in the run (a space, padding, a bad
   * character) makes the decoded length differ, and the run goes through
   * the line-by-line path, which names the line. Returns where to go on.
   */
  #fullLines(chunk: Uint8Array, start: number, emit: (bytes: Uint8Array) => void): number {
    const width = ARMOR_LINE_LENGTH + 1;
    if (this.#stage !== "body" || this.#partialLength > 0) return start;
    if (this.#lines > 0 && this.#heldLength < ARMOR_LINE_LENGTH) return start;
    let count = 0;
    while (
      start + (count + 1) * width <= chunk.length &&
      chunk[start + count * width + ARMOR_LINE_LENGTH] === NEWLINE
    ) count++;
    if (count < 2) return start;
    const confirmed = count - 1;
    const text = latin1.decode(chunk.subarray(start, start + confirmed * width));
    let bytes: Uint8Array | undefined;
    try {
      bytes = Uint8Array.fromBase64(text, { lastChunkHandling: "strict" });
    } catch {
      bytes = undefined;
    }
    if (!bytes || bytes.length !== confirmed * LINE_BYTES || text.includes("\r")) {
      // Line by line, to name the damaged line (and not to try this run again).
      for (let i = 0; i < confirmed; i++) {
        this.#onLine(
          chunk.subarray(start + i * width, start + i * width + ARMOR_LINE_LENGTH),
          emit,
        );
      }
      return start + confirmed * width;
    }
    // The held line, and the batch before it, are confirmed by the run.
    this.#lines++;
    this.#decodeConfirmed(emit);
    this.#lines = 0;
    emit(bytes);
    this.#line += confirmed;
    return start + confirmed * width;
  }

  end(emit: (bytes: Uint8Array) => void): void {
    if (this.#partialLength > 0) {
      // The last line has no newline: take it as a line.
      const line = concat(...this.#partial);
      this.#partial = [];
      this.#partialLength = 0;
      this.#onLine(line, emit);
    }
    if (this.#stage === "preamble") throw new SealedError("malformed", "Not an ovtp sealed file");
    if (this.#stage === "body") {
      throw new SealedError(
        "truncated",
        `The armored file ends at line ${this.#line} without its END line`,
      );
    }
  }

  #checkPartial(): void {
    const limit = this.#stage === "body" ? ARMOR_LINE_LENGTH + 1 : MAX_PREAMBLE_LINE;
    if (this.#partialLength <= limit) return;
    if (this.#stage === "preamble") throw new SealedError("malformed", "Not an ovtp sealed file");
    if (this.#stage === "after") {
      throw new SealedError("trailing-data", `Text after the END line, at line ${this.#line + 1}`);
    }
    throw damaged(this.#line + 1, `more than ${ARMOR_LINE_LENGTH} characters`);
  }

  #onLine(raw: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    const line = ++this.#line;
    const bytes = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw;
    if (this.#stage === "preamble") {
      if (isBlank(bytes)) return;
      if (!same(bytes, BEGIN_BYTES)) {
        throw new SealedError(
          "malformed",
          `Not an ovtp sealed file: line ${line} is not "${ARMOR_BEGIN}"`,
        );
      }
      this.#stage = "body";
      return;
    }
    if (this.#stage === "after") {
      if (!isBlank(bytes)) {
        throw new SealedError("trailing-data", `Text after the END line, at line ${line}`);
      }
      return;
    }
    if (same(bytes, END_BYTES)) {
      this.#finish(line, emit);
      this.#stage = "after";
      return;
    }
    if (this.#lines > 0 && this.#heldLength < ARMOR_LINE_LENGTH) {
      throw damaged(line - 1, "a short line before the last");
    }
    if (bytes.length === 0) throw damaged(line, "an empty line");
    if (bytes.length > ARMOR_LINE_LENGTH) {
      throw damaged(line, `${bytes.length} characters, more than ${ARMOR_LINE_LENGTH}`);
    }
    if (this.#lines === LINES_PER_BATCH) this.#decodeConfirmed(emit);
    if (this.#lines === 0) this.#first = line;
    this.#batch.set(bytes, this.#lines * ARMOR_LINE_LENGTH);
    this.#lines++;
    this.#heldLength = bytes.length;
  }

  /** Decodes every line but the held one, which moves to the batch's start. */
  #decodeConfirmed(emit: (bytes: Uint8Array) => void): void {
    const count = this.#lines - 1;
    if (count === 0) return;
    const chars = this.#batch.subarray(0, count * ARMOR_LINE_LENGTH);
    let bytes: Uint8Array | undefined;
    try {
      bytes = Uint8Array.fromBase64(latin1.decode(chars), { lastChunkHandling: "strict" });
    } catch {
      bytes = undefined;
    }
    // fromBase64 skips spaces: a line holding one decodes short.
    if (!bytes || bytes.length !== count * LINE_BYTES) {
      for (let i = 0; i < count; i++) {
        const text = latin1.decode(
          chars.subarray(i * ARMOR_LINE_LENGTH, (i + 1) * ARMOR_LINE_LENGTH),
        );
        if (!/^[A-Za-z0-9+/]*$/.test(text)) {
          throw damaged(
            this.#first + i,
            /=/.test(text) ? "padding before the last line" : "a character outside base64",
          );
        }
      }
      throw damaged(this.#first, "invalid base64");
    }
    emit(bytes);
    this.#batch.copyWithin(0, count * ARMOR_LINE_LENGTH, this.#lines * ARMOR_LINE_LENGTH);
    this.#first += count;
    this.#lines = 1;
  }

  /** The END line: decodes the batch, the held line as the last one. */
  #finish(line: number, emit: (bytes: Uint8Array) => void): void {
    if (this.#lines === 0) throw damaged(line, "no base64 before the END line");
    this.#decodeConfirmed(emit);
    const text = latin1.decode(this.#batch.subarray(0, this.#heldLength));
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      throw damaged(line - 1, "not valid base64");
    }
    try {
      emit(Uint8Array.fromBase64(text, { lastChunkHandling: "strict" }));
    } catch {
      throw damaged(line - 1, "non-canonical base64");
    }
    this.#lines = 0;
  }
}

function damaged(line: number, why: string): SealedError {
  return new SealedError("armor", `The armor is damaged at line ${line}: ${why}`, { line });
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isBlank(bytes: Uint8Array): boolean {
  for (const byte of bytes) {
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  }
  return true;
}
