/**
 * The transport-agnostic half of a server: it serves byte streams it is
 * handed, each as one connection (session.ts), keeps count of them
 * for the listener's limits, and closes them gracefully. serve() in
 * server.ts feeds it TCP connections; a test can feed it an in-memory pipe.
 *
 * @module
 */

import type { ByteStream } from "../channel/channel.ts";
import { SILENT_LOGGER } from "../logger.ts";
import { TrimScheduler } from "./_malloc_trim.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { type LiveConnection, runConnection, type ServerContext } from "./session.ts";
import type { ServeOptions } from "./types.ts";

/**
 * How long a connection must have sent nothing before shutdown closes it:
 * longer than a request takes to cross a link, so that one sent just before
 * the shutdown is answered rather than cut off.
 */
const QUIET_BEFORE_CLOSE_MS = 500;

/**
 * A server that serves the streams it is handed; see {@linkcode createStreamServer}.
 *
 * @example Counting the connections being served
 * ```ts
 * import { createStreamServer, generateIdentity, OvtpClient, type StreamServer } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/ovtp.sock`;
 * const listener = Deno.listen({ transport: "unix", path });
 * const server: StreamServer = createStreamServer({
 *   identity: await generateIdentity(),
 *   authorize: () => Promise.resolve({ name: "local" }),
 *   handler: () => ({}),
 * });
 * const served = listener.accept().then((conn) => server.serveStream(conn, "unix"));
 * const client = await OvtpClient.connect({
 *   hostname: "localhost",
 *   port: 0,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 *   stream: await Deno.connect({ transport: "unix", path }),
 * });
 * assert.equal(server.connections, 1);
 * client.close();
 * await served; // Returns once the connection has ended.
 * assert.equal(server.connections, 0);
 * listener.close();
 * await server.close();
 * ```
 */
export interface StreamServer {
  /**
   * Serves one open stream (handshake, authorization, messages) until it
   * ends; never rejects: one client's failure closes only its own stream.
   * `remote` names the peer in logs.
   */
  serveStream(stream: ByteStream, remote?: string): Promise<void>;
  /** Connections being served now. */
  readonly connections: number;
  /** Handshakes in progress now. */
  readonly handshaking: number;
  /** Whether close() was called. */
  readonly closing: boolean;
  /**
   * Refuses new requests from now on, lets work in flight finish for up to
   * `graceMs`, then closes every stream.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Creates a server that serves streams it is handed rather than listening
 * itself: a Unix socket, a pipe, an in-memory stream in a test.
 * {@linkcode serve} is this behind a TCP listener. The options' `hostname`,
 * `port` and connection limits are the listener's business, unused here.
 *
 * @example Serving over a Unix socket
 * ```ts
 * import { createStreamServer, generateIdentity, OvtpClient, responseText } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/ovtp.sock`;
 * const listener = Deno.listen({ transport: "unix", path });
 * const server = createStreamServer({
 *   identity: await generateIdentity(),
 *   // Anyone who can open the socket may connect: a real server checks authorized_keys.
 *   authorize: () => Promise.resolve({ name: "local" }),
 *   handler: (request) => ({ response: `${request.body.length} bytes` }),
 * });
 * (async () => {
 *   for await (const conn of listener) server.serveStream(conn, "unix");
 * })();
 *
 * const client = await OvtpClient.connect({
 *   hostname: "localhost",
 *   port: 0,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 *   stream: await Deno.connect({ transport: "unix", path }),
 * });
 * assert.equal(responseText(await client.request("hello")), "5 bytes");
 * client.close();
 * listener.close();
 * await server.close();
 * ```
 */
export function createStreamServer(options: ServeOptions): StreamServer {
  const context: ServerContext = {
    options,
    logger: options.logger ?? SILENT_LOGGER,
    limiter: options.limiter ?? new RateLimiter(),
    closing: false,
    handshaking: 0,
  };
  const connections = new Set<LiveConnection>();
  // Closed connections leave their C memory in malloc's free lists: give it
  // back once many have closed (only with --allow-ffi on glibc).
  const trimmer = new TrimScheduler();
  return {
    async serveStream(stream, remote = "stream") {
      const live: LiveConnection = {
        stream,
        busy: 0,
        lastActive: Date.now(),
        idle: () => closeQuietly(stream),
      };
      connections.add(live);
      try {
        await runConnection(context, live, remote);
      } catch (error) {
        // One client's failure must never stop the server.
        context.logger.warn(`connection failed: ${(error as Error).message}`, { remote });
        closeQuietly(stream);
      } finally {
        connections.delete(live);
        trimmer.closed();
      }
    },
    get connections() {
      return connections.size;
    },
    get handshaking() {
      return context.handshaking;
    },
    get closing() {
      return context.closing;
    },
    async close(graceMs = 0) {
      context.closing = true;
      trimmer.stop();
      await closeConnections(connections, graceMs);
    },
  };
}

// Idle connections go once quiet for a moment (a request already on its
// way is answered "unavailable", not lost with the connection); busy ones
// as soon as their work is done.
async function closeConnections(connections: Set<LiveConnection>, graceMs: number) {
  const deadline = Date.now() + graceMs;
  while (connections.size > 0 && Date.now() < deadline) {
    const quietSince = Date.now() - QUIET_BEFORE_CLOSE_MS;
    for (const live of connections) {
      if (live.busy === 0 && live.lastActive <= quietSince) live.idle();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const live of connections) closeQuietly(live.stream);
  // Closed streams end their connections promptly; do not wait forever for
  // one stuck in a handler.
  const last = Date.now() + 2000;
  while (connections.size > 0 && Date.now() < last) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Closes a stream that may already be closed. */
export function closeQuietly(stream: ByteStream): void {
  try {
    stream.close();
  } catch {
    // Already closed.
  }
}
