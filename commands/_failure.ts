/**
 * What a failed command reports: its kind, message, hint and exit code, one
 * meaning per code (README.md's "Exit codes and errors" lists them, and
 * tests/cli_output_test.ts checks that the two agree). main.ts prints it.
 *
 * @module
 */

import { type ErrorKind, OvtpError } from "../lib/errors.ts";
import { jsonLine } from "./_printable.ts";

/** Exit codes, one meaning each, documented in README.md. */
export const EXIT = {
  /** Success (the server answered `ok`). */
  ok: 0,
  /** The server answered a status other than `ok`, or refused the request. */
  remote: 1,
  /** A bad command line: an unknown command or option, a missing or malformed argument. */
  usage: 2,
  /** Network or protocol: unreachable, refused, dropped, timed out, corrupted in transit. */
  network: 3,
  /** Trust: an unknown host with --strict, a changed host key, an unauthorized client. */
  trust: 4,
  /** Keys: no identity, a wrong or mismatched passphrase, a malformed key or key file. */
  key: 5,
  /** A local file or folder could not be read or written. */
  io: 6,
  /** A name or fingerprint matches no authorized key (or several), or a host no known host. */
  notFound: 7,
  /** An input is over a size limit (a message over 16 MiB: use sendfile). */
  tooLarge: 8,
  /** An unexpected error: a bug in ovtp. */
  internal: 70,
  /** Interrupted at a prompt (Ctrl-C), as a shell reports SIGINT. */
  interrupted: 130,
  /** stdout was closed by its reader; nothing is printed, as a shell reports SIGPIPE. */
  stdoutClosed: 141,
} as const;

/** The kind reported for an error that is not an OvtpError. */
export type FailureKind = ErrorKind | "internal";

/** A failure as it is reported. */
export interface Failure {
  /** What went wrong, as in {@linkcode ErrorKind}, or `internal`. */
  kind: FailureKind;
  /** The error line's text, after `ovtp: error: `. */
  message: string;
  /** The next step, if there is one. */
  hint: string | undefined;
  /** The exit code. */
  exitCode: number;
}

const CODE_OF_KIND: Record<FailureKind, number> = {
  remote: EXIT.remote,
  usage: EXIT.usage,
  network: EXIT.network,
  protocol: EXIT.network,
  trust: EXIT.trust,
  key: EXIT.key,
  io: EXIT.io,
  "not-found": EXIT.notFound,
  "too-large": EXIT.tooLarge,
  interrupted: EXIT.interrupted,
  internal: EXIT.internal,
};

/** Deno's errors for local files, reported as `io`. */
const FILE_ERRORS = [
  Deno.errors.NotFound,
  Deno.errors.PermissionDenied,
  Deno.errors.AlreadyExists,
  Deno.errors.IsADirectory,
  Deno.errors.NotADirectory,
  Deno.errors.FilesystemLoop,
  Deno.errors.WriteZero,
];

/** Deno's errors for sockets, reported as `network`. */
const NETWORK_ERRORS = [
  Deno.errors.AddrInUse,
  Deno.errors.AddrNotAvailable,
  Deno.errors.ConnectionRefused,
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.NotConnected,
  Deno.errors.TimedOut,
  Deno.errors.BrokenPipe,
  Deno.errors.NetworkUnreachable,
];

/** Describes any error thrown by a command. */
export function describeFailure(error: unknown): Failure {
  if (error instanceof OvtpError) {
    return {
      kind: error.kind,
      message: error.message,
      hint: error.hint,
      exitCode: CODE_OF_KIND[error.kind] ?? EXIT.internal,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  if (FILE_ERRORS.some((type) => error instanceof type)) {
    const text = error instanceof Deno.errors.PermissionDenied
      ? `Permission denied: ${message}`
      : message;
    return { kind: "io", message: text, hint: undefined, exitCode: EXIT.io };
  }
  if (NETWORK_ERRORS.some((type) => error instanceof type)) {
    return { kind: "network", message, hint: undefined, exitCode: EXIT.network };
  }
  // The library throws these for input it cannot take (text it cannot
  // parse, a value out of bounds): the input is at fault, not ovtp.
  if (error instanceof SyntaxError || error instanceof RangeError) {
    return { kind: "usage", message, hint: undefined, exitCode: EXIT.usage };
  }
  return {
    kind: "internal",
    message,
    hint: "this is a bug in ovtp: please report it with the command that caused it",
    exitCode: EXIT.internal,
  };
}

/** The failure as the one JSON object printed on stdout with --json. */
export function failureJson(failure: Failure): string {
  return jsonLine({
    event: "error",
    kind: failure.kind,
    message: failure.message,
    hint: failure.hint ?? null,
    exit_code: failure.exitCode,
  }) + "\n";
}

/** The failure as a log line of `--log-format json` (on stderr). */
export function failureLogLine(failure: Failure): string {
  return jsonLine({
    time: new Date().toISOString(),
    level: "error",
    msg: failure.message,
    kind: failure.kind,
    hint: failure.hint ?? null,
    exit_code: failure.exitCode,
  }) + "\n";
}
