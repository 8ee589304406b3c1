/**
 * The load test shared by bench/load.ts (200 connections, 20 s) and
 * tests/load_test.ts (a small version): starts the real `ovtp listen` in a
 * child process with a temporary home, opens many connections at once,
 * each sending requests back to back until the time is up, checks that
 * every request got its own response, and samples the server's RSS.
 *
 * @module
 */

import { OvtpClient } from "../mod.ts";
import { startServer } from "./_listen.ts";

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** Connections opened at once. */
  connections: number;
  /** How long each sends, in seconds. */
  seconds: number;
}

/** What a load run measured. */
export interface LoadResult {
  /** Requests answered ok, with their own id. */
  answered: number;
  /** Requests that failed or got another id or status. */
  wrong: number;
  /** Requests per second over the run. */
  perSecond: number;
  /** The server's RSS before the load, in KiB. */
  rssBeforeKiB: number;
  /** The server's highest RSS during the load, in KiB. */
  rssPeakKiB: number;
}

/** Runs the load test; always stops the server and removes its home. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  // Every limit the load needs, raised to fit it.
  const room = String(options.connections + 16);
  const server = await startServer([
    "--max-connections",
    room,
    "--max-per-address",
    room,
    "--max-handshakes",
    room,
  ]);
  const clients: OvtpClient[] = [];
  try {
    const port = server.port;
    const identity = server.clientIdentity;
    const rssBeforeKiB = server.rssKiB();
    let rssPeakKiB = rssBeforeKiB;
    const sampler = setInterval(() => rssPeakKiB = Math.max(rssPeakKiB, server.rssKiB()), 100);
    try {
      for (let i = 0; i < options.connections; i += 16) {
        const batch = Math.min(16, options.connections - i);
        clients.push(
          ...await Promise.all(
            Array.from(
              { length: batch },
              () =>
                OvtpClient.connect({ hostname: "127.0.0.1", port, identity, timeoutMs: 30_000 }),
            ),
          ),
        );
      }
      const started = performance.now();
      const deadline = started + options.seconds * 1000;
      let answered = 0;
      let wrong = 0;
      await Promise.all(clients.map(async (connection, c) => {
        for (let i = 0; performance.now() < deadline; i++) {
          try {
            const response = await connection.request(`connection ${c} request ${i}`);
            if (response.status === "ok" && response.requestId === i + 1) answered++;
            else wrong++;
          } catch {
            wrong++;
            return;
          }
        }
      }));
      const seconds = (performance.now() - started) / 1000;
      return { answered, wrong, perSecond: answered / seconds, rssBeforeKiB, rssPeakKiB };
    } finally {
      clearInterval(sampler);
    }
  } finally {
    for (const connection of clients) connection.close();
    await server.stop();
  }
}
