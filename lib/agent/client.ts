/**
 * Asking an `ovtp agent` (see lib/agent/server.ts) for the private keys of
 * a sealed key file, or telling it to stop. The socket's permissions are
 * the only check: whoever can open it gets the keys.
 *
 * @module
 */

import { fromBase64Url } from "../bytes.ts";
import { OvtpError } from "../errors.ts";
import { AGENT_LABEL, readLine, writeLine } from "./_wire.ts";

/**
 * The 64 private bytes the agent at `socket` holds for the key file whose
 * digest is `digest`, or undefined when it holds none for that file (another
 * file, or its lifetime ended). Throws OvtpError `key` when no agent
 * answers there.
 */
export async function askAgent(socket: string, digest: string): Promise<Uint8Array | undefined> {
  const answer = await request(socket, `${AGENT_LABEL} get ${digest}`);
  if (answer === "none") return undefined;
  const keys = /^ok ([A-Za-z0-9_-]{86})$/.exec(answer);
  if (!keys) throw new OvtpError("protocol", "The agent's answer is malformed");
  return fromBase64Url(keys[1]);
}

/** Tells the agent at `socket` to wipe its key and exit. */
export async function stopAgent(socket: string): Promise<void> {
  const answer = await request(socket, `${AGENT_LABEL} stop`);
  if (answer !== "ok") throw new OvtpError("protocol", "The agent's answer is malformed");
}

async function request(socket: string, line: string): Promise<string> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such socket"
      : error instanceof Deno.errors.ConnectionRefused
      ? "nothing listens there"
      : (error as Error).message;
    throw new OvtpError("key", `No agent at "${socket}" (${why})`, {
      hint: "its lifetime may have ended: start one with `ovtp agent`, or unset OVTP_AGENT",
    });
  }
  try {
    await writeLine(conn, line);
    return await readLine(conn);
  } finally {
    // readLine closes it already when the agent does not answer in time.
    try {
      conn.close();
    } catch { /* Closed already. */ }
  }
}
