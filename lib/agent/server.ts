/**
 * `ovtp agent`'s server: holds one identity's private keys for a set time
 * and hands them, over a Unix socket that only its user can open (0600, and
 * the CLI puts it in a 0700 folder), to a client that names the key file
 * they came from. Handing the keys over, rather than signing and computing
 * DH for a client, keeps the agent a few lines: the Noise handshake, HPKE
 * and envelope signatures would each need a round trip to the agent, and a
 * client of the same user could read the process's memory anyway. What it
 * exposes is in docs/security.md ("The agent").
 *
 * @module
 */

import { dirname } from "node:path";
import { toBase64Url } from "../bytes.ts";
import { OvtpError } from "../errors.ts";
import { privateBytes } from "../identity/key_file.ts";
import type { UnlockedIdentity } from "../identity/keystore.ts";
import { AGENT_LABEL, readLine, writeLine } from "./_wire.ts";

/** Options of {@linkcode serveAgent}. */
export interface AgentOptions {
  /** The socket's path; its folder must exist, be this user's, and be closed to others (0700). */
  socket: string;
  /** The identity to hold, and the key file it came from. */
  unlocked: UnlockedIdentity;
  /** How long to hold it, in ms; the agent then wipes it and stops. */
  lifetimeMs: number;
}

/** A running agent. */
export interface RunningAgent {
  /** Resolves once the agent has stopped and removed its socket. */
  readonly stopped: Promise<void>;
  /** Wipes the keys and stops (a later call does nothing). */
  stop(): void;
}

// setTimeout's delay is a signed 32-bit count of ms: a longer one fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Starts an agent on `options.socket`. A socket there with an agent
 * answering is refused; a dead one (nothing listening) is replaced.
 */
export async function serveAgent(options: AgentOptions): Promise<RunningAgent> {
  if (options.lifetimeMs > MAX_TIMER_MS) {
    throw new RangeError(`The lifetime is over ${MAX_TIMER_MS} ms (24 days)`);
  }
  await checkPrivateFolder(dirname(options.socket));
  await clearDeadSocket(options.socket);
  // The socket is made with the umask's mode, then 0600: the private folder
  // keeps others out in between.
  const listener = Deno.listen({ transport: "unix", path: options.socket });
  await Deno.chmod(options.socket, 0o600);
  const keys = privateBytes(options.unlocked.identity);
  const served = `ok ${toBase64Url(keys)}`;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    // The one copy this module made; the identity's own arrays are the
    // caller's to wipe (the CLI does).
    keys.fill(0);
    listener.close();
  };
  const timer = setTimeout(stop, options.lifetimeMs);
  const stopped = (async () => {
    try {
      for await (const conn of listener) {
        answer(conn, options.unlocked.digest, () => stopping ? "none" : served, stop);
      }
    } catch (error) {
      if (!stopping) throw error;
    } finally {
      stop();
      await Deno.remove(options.socket).catch(() => {});
    }
  })();
  return { stopped, stop };
}

/** Answers one client's one request. */
async function answer(
  conn: Deno.UnixConn,
  digest: string,
  keys: () => string,
  stop: () => void,
): Promise<void> {
  try {
    const request = await readLine(conn);
    if (request === `${AGENT_LABEL} stop`) {
      await writeLine(conn, "ok");
      stop();
    } else if (request.startsWith(`${AGENT_LABEL} get `)) {
      // The digest is not secret: a plain comparison is fine.
      await writeLine(
        conn,
        request.slice(`${AGENT_LABEL} get `.length) === digest ? keys() : "none",
      );
    } else {
      await writeLine(conn, "error unknown request");
    }
  } catch {
    // A client that sends garbage or goes away gets nothing more.
  } finally {
    try {
      conn.close();
    } catch { /* Closed by readLine's timeout. */ }
  }
}

/**
 * Refuses a folder that others may enter or write to: the socket's mode is
 * only set once it exists, and a folder others can write to lets them swap
 * the socket for their own.
 */
async function checkPrivateFolder(folder: string): Promise<void> {
  const info = await Deno.stat(folder);
  if (!info.isDirectory || info.uid !== Deno.uid() || (info.mode ?? 0) & 0o077) {
    throw new OvtpError("usage", `The agent's folder "${folder}" is open to other users`, {
      hint: `use a folder only you can open (chmod 700 "${folder}"), or leave out --socket`,
    });
  }
}

/**
 * Removes a socket nobody listens on (an agent that was killed), and
 * refuses anything else at the path: a live agent, or a file that is not a
 * socket.
 */
async function clearDeadSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new OvtpError("usage", `"${path}" exists and is not a socket`);
  }
  try {
    (await Deno.connect({ transport: "unix", path })).close();
  } catch {
    await Deno.remove(path);
    return;
  }
  throw new OvtpError("usage", `An agent already listens on "${path}"`, {
    hint: `stop it first: OVTP_AGENT='${path}' ovtp agent --stop`,
  });
}
