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

/** Options of {@linkcode SealedError}. */
export interface SealedErrorOptions {
  /** The 0-based index of the chunk that failed (`chunk`). */
  chunk?: number;
  /** The 1-based line of armored text that is damaged (`armor`). */
  line?: number;
}

/** A sealed file that could not be read, with the reason. */
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
