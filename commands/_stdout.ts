/**
 * Writing to stdout when its reader may have gone (`ovtp open big | head`).
 * Deno ignores SIGPIPE, so a write to a closed pipe fails with BrokenPipe
 * instead of ending the process as it ends `cat`. The writes here turn that
 * into {@linkcode StdoutClosed}, which main.ts answers with a quiet exit
 * (code 141, what a shell reports for a program ended by SIGPIPE). A
 * BrokenPipe from a socket stays a network error: only stdout's becomes
 * StdoutClosed. Only commands/ and main.ts import this file.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";

/** stdout's reader closed it: nothing more can be written, and nobody reads an error. */
export class StdoutClosed extends Error {
  /** Creates the error. */
  constructor(options?: ErrorOptions) {
    super("stdout was closed", options);
    this.name = "StdoutClosed";
  }
}

/** Whether `error`, or one of its causes, is {@linkcode StdoutClosed}. */
export function isStdoutClosed(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof StdoutClosed) return true;
  }
  return false;
}

/** Whether `error` is the one a write to a closed pipe fails with. */
function isBrokenPipe(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    (error instanceof Error && /broken pipe|os error 32\b|EPIPE/i.test(error.message));
}

/** A failed write to stdout: closed by its reader, or a local I/O error (a full disk). */
function stdoutError(error: unknown): Error {
  if (isBrokenPipe(error)) return new StdoutClosed({ cause: error });
  return new OvtpError("io", `Cannot write to stdout: ${(error as Error).message}`, {
    cause: error,
  });
}

/**
 * stdout as a writer (`write` returns how many bytes went), failing with
 * {@linkcode StdoutClosed} once the reader is gone. Pass it where a
 * `Deno.stdout` would go.
 */
export const STDOUT: { write(p: Uint8Array): Promise<number>; writeSync(p: Uint8Array): number } = {
  async write(p: Uint8Array): Promise<number> {
    try {
      return await Deno.stdout.write(p);
    } catch (error) {
      throw stdoutError(error);
    }
  },
  writeSync(p: Uint8Array): number {
    try {
      return Deno.stdout.writeSync(p);
    } catch (error) {
      throw stdoutError(error);
    }
  },
};
