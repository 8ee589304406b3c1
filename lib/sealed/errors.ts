/**
 * Why a sealed file was refused. Callers branch on the reason (the CLI
 * chooses its message and exit code from it); tests assert it.
 *
 * @module
 */

/**
 * What failed:
 * - `malformed`: not a sealed file, or a header field out of range
 * - `header-signature`: the sender's signature over the header is not valid
 * - `sender`: validly sealed, but not by the sender the caller expects
 * - `not-recipient`: no stanza for the reader's key
 * - `wrapped-key`: the reader's stanza does not open, or opens to a file key
 *   that does not match the header's commitment
 * - `chunk`: a chunk fails authentication (damaged, reordered, or from
 *   another file); `chunk` says which
 * - `truncated`: the input ends before the payload signature
 * - `trailing-data`: bytes follow the payload signature
 * - `payload-signature`: the sender's signature over the whole file is not
 *   valid (the chunks were written by another holder of the file key)
 * - `armor`: the armored text is damaged; `line` says where
 *
 * @example Skip files sealed for someone else
 * ```ts
 * import {
 *   generateIdentity,
 *   openSealed,
 *   SealedError,
 *   type SealedFailure,
 *   sealStream,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
 * const sealed = sealStream(ReadableStream.from([new Uint8Array(10)]), alice, {
 *   recipients: [bob.publicKey],
 * });
 * const reason = await openSealed(sealed, carol).then(
 *   (): SealedFailure | undefined => undefined,
 *   (error: SealedError): SealedFailure => error.reason,
 * );
 * assert.equal(reason, "not-recipient");
 * ```
 */
export type SealedFailure =
  | "malformed"
  | "header-signature"
  | "sender"
  | "not-recipient"
  | "wrapped-key"
  | "chunk"
  | "truncated"
  | "trailing-data"
  | "payload-signature"
  | "armor";

/**
 * Options of {@linkcode SealedError}.
 *
 * @example Say which chunk failed
 * ```ts
 * import { SealedError, type SealedErrorOptions } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const options: SealedErrorOptions = { chunk: 2 };
 * const error = new SealedError("chunk", "Chunk 2 fails authentication", options);
 * assert.equal(error.chunk, 2);
 * assert.equal(error.line, undefined);
 * ```
 */
export interface SealedErrorOptions {
  /** The 0-based index of the chunk that failed (`chunk`). */
  chunk?: number;
  /** The 1-based line of armored text that is damaged (`armor`). */
  line?: number;
}

/**
 * A sealed file that could not be read, with the reason. {@linkcode openSealed}
 * rejects with one, and its plaintext stream errors with one.
 *
 * @example A truncated file is refused before its end is released
 * ```ts
 * import { generateIdentity, openSealed, SealedError, sealStream } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const sealed = sealStream(ReadableStream.from([new Uint8Array(1000)]), alice, {
 *   recipients: [bob.publicKey],
 * });
 * const bytes = new Uint8Array(await new Response(sealed).arrayBuffer());
 * const cut = bytes.subarray(0, bytes.length - 10);
 * const opened = await openSealed(ReadableStream.from([cut]), bob);
 * await assert.rejects(new Response(opened.plaintext).arrayBuffer(), (error) => {
 *   assert.ok(error instanceof SealedError);
 *   assert.equal(error.reason, "truncated");
 *   return true;
 * });
 * ```
 */
export class SealedError extends Error {
  /** What failed. */
  readonly reason: SealedFailure;
  /** The chunk that failed, for `chunk`. */
  readonly chunk: number | undefined;
  /** The armored line that is damaged, for `armor`. */
  readonly line: number | undefined;

  /** Creates the error. */
  constructor(reason: SealedFailure, message: string, options: SealedErrorOptions = {}) {
    super(message);
    this.name = "SealedError";
    this.reason = reason;
    this.chunk = options.chunk;
    this.line = options.line;
  }
}
