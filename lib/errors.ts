/**
 * The error class the library throws for failures a user must act on. Its
 * `kind` tells callers (and the CLI's exit code) what went wrong without
 * parsing messages.
 *
 * @module
 */

/**
 * What an {@linkcode OvtpError} is about:
 * - `usage`: a bad argument or option
 * - `network`: unreachable host, refused or dropped connection, timeout
 * - `trust`: an unknown or changed host key, an unauthorized client
 * - `key`: a missing, malformed or locked key or key file
 * - `protocol`: the peer broke the protocol (tampering, malformed data)
 * - `remote`: the server answered with an error
 * - `io`: a local file could not be read or written
 */
export type ErrorKind =
  | "usage"
  | "network"
  | "trust"
  | "key"
  | "protocol"
  | "remote"
  | "io";

/** Options of {@linkcode OvtpError}. */
export interface OvtpErrorOptions {
  /** A next step for the user, printed as `ovtp: hint: ...`. */
  hint?: string;
  /** The underlying error. */
  cause?: unknown;
}

/** An error with a kind and an optional hint for the user. */
export class OvtpError extends Error {
  /** What the error is about. */
  readonly kind: ErrorKind;
  /** A next step for the user, if there is one. */
  readonly hint: string | undefined;

  /** Creates the error. */
  constructor(kind: ErrorKind, message: string, options: OvtpErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "OvtpError";
    this.kind = kind;
    this.hint = options.hint;
  }
}
