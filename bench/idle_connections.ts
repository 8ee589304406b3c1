/**
 * Idle connections: for each N in BENCH_COUNTS (default 1000,5000,10000),
 * a fresh `ovtp listen` takes N authenticated `OvtpClient` connections,
 * opened by BENCH_PROCESSES client processes (default 4, each at most
 * BENCH_CONCURRENCY handshakes at a time, default 16), that then sit idle.
 * Prints the server's RSS before, with the connections open, and
 * BENCH_AFTER_SECONDS (default 40) after they close, the KiB each idle
 * connection costs, and the handshake rate while connecting.
 *
 * The server's limits are raised to fit N (--max-connections,
 * --max-per-address); each process needs a file descriptor per connection,
 * so `ulimit -n` must exceed N (the server) and N / BENCH_PROCESSES.
 *
 * Usage: deno run -A bench/idle_connections.ts
 *
 * @module
 */

import { Keystore, OvtpClient } from "../mod.ts";
import { envNumber } from "./_harness.ts";
import { startServer } from "./_listen.ts";

/**
 * How long after the connections close the RSS is read (BENCH_AFTER_SECONDS):
 * V8 gives its emptied heap pages back when its memory reducer runs, about
 * 20 s after the heap stops changing.
 */
const AFTER_MS = envNumber("BENCH_AFTER_SECONDS", 40, 0, 600) * 1000;

if (import.meta.main) {
  if (Deno.args[0] === "--client") await client(Deno.args.slice(1));
  else await main();
}

async function main(): Promise<void> {
  const counts = (Deno.env.get("BENCH_COUNTS") ?? "1000,5000,10000").split(",").map((text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) {
      throw new RangeError(`Invalid BENCH_COUNTS entry "${text}": expected 1 to 100000`);
    }
    return n;
  });
  const processes = envNumber("BENCH_PROCESSES", 4, 1, 64);
  const concurrency = envNumber("BENCH_CONCURRENCY", 16, 1, 1024);
  const rows: string[] = [];
  for (const n of counts) rows.push(await measure(n, processes, concurrency));
  console.log(
    `| connections | server RSS before | with them open | per connection | ${
      AFTER_MS / 1000
    } s after close | handshakes/s |
|---|---|---|---|---|---|
${rows.join("\n")}`,
  );
}

async function measure(n: number, processes: number, concurrency: number): Promise<string> {
  const server = await startServer([
    "--max-connections",
    String(n + 64),
    "--max-per-address",
    String(n + 64),
    "--idle-timeout",
    "3600",
  ]);
  const clients: Deno.ChildProcess[] = [];
  try {
    await settle(server.rssKiB, 1000);
    const before = server.rssKiB();
    const started = performance.now();
    const share = Math.ceil(n / processes);
    for (let p = 0, left = n; left > 0; p++, left -= share) {
      clients.push(
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            import.meta.filename!,
            "--client",
            String(server.port),
            server.clientHome,
            String(Math.min(share, left)),
            String(concurrency),
          ],
          stdin: "piped",
          stdout: "piped",
          stderr: "inherit",
        }).spawn(),
      );
    }
    // Each client prints one line once all its connections are open.
    const readies = await Promise.all(clients.map((child) => firstLine(child.stdout)));
    for (const line of readies) {
      if (line !== "ready") throw new Error(`A client process failed: ${line}`);
    }
    const seconds = (performance.now() - started) / 1000;
    await settle(server.rssKiB, 2000);
    const open = server.rssKiB();
    await Promise.all(clients.map(async (child) => {
      await child.stdin.close();
      await child.status;
    }));
    await new Promise((resolve) => setTimeout(resolve, AFTER_MS));
    const after = server.rssKiB();
    const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
    return `| ${n} | ${mib(before)} | ${mib(open)} | ${((open - before) / n).toFixed(1)} KiB | ${
      mib(after)
    } | ${(n / seconds).toFixed(0)} |`;
  } finally {
    for (const child of clients) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await server.stop();
  }
}

/** Waits until the RSS stops changing (by more than 1%) over 500 ms, at most `ms`. */
async function settle(rss: () => number, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  let last = rss();
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = rss();
    if (Math.abs(now - last) <= last / 100) return;
    last = now;
  }
}

async function firstLine(stdout: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.includes("\n")) break;
  }
  return text.trim() || "exited without a word";
}

/** A client process: opens COUNT connections, says "ready", waits for stdin to close. */
async function client([port, home, count, concurrency]: string[]): Promise<void> {
  const identity = await new Keystore(home).loadIdentity(() => Promise.resolve(""));
  const connections: OvtpClient[] = [];
  let next = 0;
  const total = Number(count);
  try {
    await Promise.all(Array.from({ length: Number(concurrency) }, async () => {
      while (next < total) {
        next++;
        connections.push(
          await OvtpClient.connect({
            hostname: "127.0.0.1",
            port: Number(port),
            identity,
            verifyHost: () => {}, // The bench's own server.
            timeoutMs: 60_000,
          }),
        );
      }
    }));
  } catch (error) {
    console.log(`error: ${(error as Error).message}`);
    Deno.exit(1);
  }
  console.log("ready");
  // Idle until the parent closes stdin.
  for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
  for (const connection of connections) connection.close();
  Deno.exit(0);
}
