/**
 * The load test shared by bench/load.ts (200 connections, 20 s) and
 * tests/load_test.ts (a small version): starts the real `ovtp listen` in a
 * child process with a temporary home, opens many connections at once,
 * each sending requests back to back until the time is up, checks that
 * every request got its own response, and samples the server's RSS.
 *
 * @module
 */

import { Keystore, OvtpClient } from "../mod.ts";
import { fileURLToPath } from "node:url";

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

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

async function ovtp(home: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, ...args],
    env: { OVTP_HOME: home, HOME: `${home}.user`, OVTP_ACCEPT_NEW: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

function rssKiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Runs the load test; always stops the server and removes its home. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const dir = await Deno.makeTempDir({ prefix: "ovtp-load-" });
  const server = `${dir}/server`;
  const client = `${dir}/client`;
  await ovtp(server, ["keygen", "--comment", "server"]);
  await ovtp(client, ["keygen", "--comment", "load"]);
  await ovtp(server, ["add-key", (await ovtp(client, ["id"])).trim()]);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "-A",
      MAIN,
      "listen",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "-q",
      "--max-per-address",
      String(options.connections + 16),
      "--max-handshakes",
      String(options.connections + 16),
    ],
    env: { OVTP_HOME: server, HOME: `${server}.user` },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const clients: OvtpClient[] = [];
  try {
    const port = await readPort(child.stderr);
    const identity = await new Keystore(client).loadIdentity(() => Promise.resolve(""));
    const rssBeforeKiB = rssKiB(child.pid);
    let rssPeakKiB = rssBeforeKiB;
    const sampler = setInterval(() => rssPeakKiB = Math.max(rssPeakKiB, rssKiB(child.pid)), 100);
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
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function readPort(stderr: ReadableStream<Uint8Array>): Promise<number> {
  let text = "";
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`listen exited:\n${text}`);
    text += value;
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(text)?.[1];
    if (port) {
      // Keep draining stderr so the server never blocks on it.
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })().catch(() => {});
      return Number(port);
    }
  }
}
