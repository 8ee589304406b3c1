/**
 * The ovtp server over TCP: listens, accepts connections within its limits
 * (in total, per address, handshakes in progress) and hands each to a
 * stream server (streams.ts), which knows nothing of TCP. The types
 * a server program uses live in types.ts and are re-exported here.
 *
 * @module
 */

import { formatHostPort } from "../io/files.ts";
import {
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HANDSHAKES,
  DEFAULT_MAX_PER_ADDRESS,
} from "./defaults.ts";
import { closeQuietly, createStreamServer } from "./streams.ts";
import { DEFAULT_PORT } from "./defaults.ts";
import type { ServeOptions } from "./types.ts";

export type {
  AuthorizeOptions,
  Authorizer,
  FunctionCall,
  FunctionHandler,
  Grant,
  ReceivedFile,
  Reply,
  Request,
  RequestHandler,
  ServeOptions,
} from "./types.ts";
export { requestText } from "./types.ts";
export { createStreamServer, type StreamServer } from "./streams.ts";
export { DEFAULT_PORT } from "./defaults.ts";

/**
 * A running server, as {@linkcode serve} returns it.
 *
 * @example Finding the port picked, then stopping
 * ```ts
 * import { generateIdentity, type OvtpServer, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const server: OvtpServer = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0, // Any free port: addr tells which.
 *   authorize: () => Promise.resolve(undefined),
 *   handler: () => ({}),
 * });
 * assert.equal(server.addr.hostname, "127.0.0.1");
 * assert.ok(server.addr.port > 0);
 *
 * await server.close(1000); // Up to a second for work in flight.
 * await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
 * ```
 */
export interface OvtpServer {
  /** The address it listens on (with the real port when 0 was asked). */
  readonly addr: { hostname: string; port: number };
  /**
   * Stops accepting, lets work in flight (requests, transfers) finish for up
   * to `graceMs`, then closes every connection. Interrupted uploads keep
   * their data, to be resumed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a server; it is listening when this returns.
 *
 * @example An echo server and a client
 * ```ts
 * import {
 *   generateIdentity,
 *   OvtpClient,
 *   requestText,
 *   responseText,
 *   samePublicKey,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const serverIdentity = await generateIdentity();
 * const server = serve({
 *   identity: serverIdentity,
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   // Anyone may connect: a real server checks authorized_keys (authorizedKeysAuthorizer).
 *   authorize: () => Promise.resolve({ name: "guest" }),
 *   handler: (request) => ({ response: `${request.peer.name}: ${requestText(request)}` }),
 * });
 *
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: (key) => assert.ok(samePublicKey(key, serverIdentity.publicKey)),
 * });
 * const response = await client.request("hello");
 * assert.equal(response.status, "ok");
 * assert.equal(responseText(response), "guest: hello");
 * client.close();
 * await server.close();
 * ```
 */
export function serve(options: ServeOptions): OvtpServer {
  const listener = Deno.listen({
    hostname: options.hostname ?? DEFAULT_HOSTNAME,
    port: options.port ?? DEFAULT_PORT,
  });
  const server = createStreamServer(options);
  const admit = admission(options, server);
  let stopped = false;
  const acceptLoop = (async () => {
    while (!stopped) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopped || error instanceof Deno.errors.BadResource) break;
        // Out of file descriptors, or a connection reset before accept:
        // log, pause briefly, and keep serving.
        options.logger?.warn(`accept failed: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      conn.setNoDelay(true);
      const release = admit(conn);
      if (release) {
        server.serveStream(conn, formatHostPort(conn.remoteAddr.hostname, conn.remoteAddr.port))
          .finally(release);
      }
    }
  })();

  const addr = listener.addr;
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    async close(graceMs = 0) {
      stopped = true;
      listener.close();
      await acceptLoop;
      await server.close(graceMs);
    },
  };
}

/**
 * The listener's limits: returns, for a connection it may serve, the
 * function to call once it ends; otherwise closes it, logged, and returns
 * undefined.
 */
function admission(
  options: ServeOptions,
  server: { connections: number; handshaking: number },
): (conn: Deno.TcpConn) => (() => void) | undefined {
  const perAddress = new Map<string, number>();
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const maxPerAddress = options.maxPerAddress ?? DEFAULT_MAX_PER_ADDRESS;
  const maxHandshakes = options.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES;
  return (conn) => {
    const address = conn.remoteAddr.hostname;
    const fromAddress = perAddress.get(address) ?? 0;
    const refusal = server.connections >= maxConnections
      ? "too many open connections"
      : fromAddress >= maxPerAddress
      ? "too many connections from this address"
      : server.handshaking >= maxHandshakes
      ? "too many handshakes in progress"
      : undefined;
    if (refusal) {
      options.logger?.warn(`refused connection: ${refusal}`, {
        remote: formatHostPort(conn.remoteAddr.hostname, conn.remoteAddr.port),
      });
      closeQuietly(conn);
      return undefined;
    }
    perAddress.set(address, fromAddress + 1);
    return () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    };
  };
}
