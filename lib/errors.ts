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
 * - `not-found`: a name or fingerprint given by the user matches no
 *   authorized key (or several), or a host no known host
 * - `too-large`: an input is over a size limit (a message larger than one
 *   message can carry)
 * - `interrupted`: the user interrupted a prompt (Ctrl-C)
 *
 * @example Tell a refused connection from other failures
 * ```ts
 * import { type ErrorKind, generateIdentity, OvtpClient, OvtpError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * // A port that was free a moment ago: nothing listens there now.
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const { port } = listener.addr;
 * listener.close();
 *
 * const identity = await generateIdentity();
 * const error = await OvtpClient.connect({ hostname: "127.0.0.1", port, identity })
 *   .catch((e) => e);
 * assert.ok(error instanceof OvtpError);
 * const kind: ErrorKind = error.kind;
 * assert.equal(kind, "network");
 * ```
 */
export type ErrorKind =
  | "usage"
  | "network"
  | "trust"
  | "key"
  | "protocol"
  | "remote"
  | "io"
  | "not-found"
  | "too-large"
  | "interrupted";

/**
 * Options of {@linkcode OvtpError}.
 *
 * @example Wrap a lower-level error with a hint
 * ```ts
 * import { OvtpError, type OvtpErrorOptions } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const cause = new Deno.errors.PermissionDenied("open");
 * const options: OvtpErrorOptions = { cause, hint: "check the file's owner" };
 * const error = new OvtpError("io", 'Cannot read "notes.txt"', options);
 * assert.equal(error.cause, cause);
 * assert.equal(error.hint, "check the file's owner");
 * ```
 */
export interface OvtpErrorOptions {
  /** A next step for the user, printed as `ovtp: hint: ...`. */
  hint?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * An error with a kind and an optional hint for the user.
 *
 * @example Show a failure and its hint
 * ```ts
 * import { Keystore, OvtpError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home); // Empty: no identity yet.
 * await assert.rejects(() => keystore.loadIdentity(() => Promise.resolve("")), (error) => {
 *   assert.ok(error instanceof OvtpError);
 *   assert.equal(error.name, "OvtpError");
 *   assert.equal(error.kind, "key");
 *   assert.match(error.message, /^No identity in/);
 *   assert.equal(error.hint, "run `ovtp keygen` to create one");
 *   return true;
 * });
 * await Deno.remove(home, { recursive: true });
 * ```
 */
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
