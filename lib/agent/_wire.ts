/**
 * The agent's wire format (docs/protocol.md, "The agent socket"): over a
 * Unix socket, the client sends one request line and the agent answers one
 * line, then closes. Lines are UTF-8, end in LF, and are at most
 * {@linkcode MAX_LINE} bytes with the LF.
 *
 * ```
 * ovtp-agent1 get <digest>   ->  ok <base64url of the 64 private bytes> | none
 * ovtp-agent1 stop           ->  ok
 * (anything else)            ->  error <text>
 * ```
 *
 * @module
 */

import { writeAll } from "../io/files.ts";
import { OvtpError } from "../errors.ts";

/** The label that starts every request: the protocol's version. */
export const AGENT_LABEL = "ovtp-agent1";

/** The longest line either side sends, LF included. */
export const MAX_LINE = 256;

/** How long either side waits for the other's line, in ms. */
export const LINE_TIMEOUT_MS = 5000;

/** A connection's byte stream, as Deno.UnixConn has it. */
export interface LineStream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
}

/**
 * Reads one line (without its LF), refusing one over MAX_LINE bytes, one
 * cut short, or one that takes longer than LINE_TIMEOUT_MS.
 */
export async function readLine(conn: LineStream & { close(): void }): Promise<string> {
  const buffer = new Uint8Array(MAX_LINE);
  let length = 0;
  // Closing the connection ends a read that waits too long.
  const timer = setTimeout(() => conn.close(), LINE_TIMEOUT_MS);
  try {
    while (true) {
      const end = buffer.subarray(0, length).indexOf(0x0a);
      if (end >= 0) {
        return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, end));
      }
      if (length === MAX_LINE) throw new OvtpError("protocol", "The agent's line is too long");
      const n = await conn.read(buffer.subarray(length)).catch(() => null);
      if (n === null) throw new OvtpError("protocol", "The agent's connection ended mid-line");
      length += n;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Writes one line, adding its LF. */
export async function writeLine(conn: LineStream, line: string): Promise<void> {
  await writeAll(conn, new TextEncoder().encode(line + "\n"));
}
