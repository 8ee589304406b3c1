/**
 * Request and handshake throughput of ovtp over loopback.
 *
 * The server is a child process, `deno run -A main.ts listen --host
 * 127.0.0.1 --port 0` (stdout to /dev/null), so that server and client each
 * have their own core; `BENCH_SERVER=inprocess` runs `serve()` in this
 * process instead, with a handler that answers "ok" without printing. The
 * client uses the library from ../mod.ts. Measured, each for
 * `BENCH_SECONDS` and repeated `BENCH_REPS` times:
 *
 * - requests per second of `BENCH_MSG_BYTES`-byte messages over one
 *   connection with 1 request outstanding, then with `BENCH_WINDOW` in flight
 *   (a fresh connection per repetition; the handshake is not timed);
 * - handshakes per second the server completes: `connect()` resolves only
 *   once the server has checked the client's key and sent its welcome, so
 *   every counted connection is one the server finished. Sequential (one
 *   connector), then `BENCH_CONNECTORS` concurrent connectors, all in this
 *   one process.
 *
 * Prints a Markdown table (median, min, max over the repetitions, the
 * target, and the CPU each side used per wall second). Every phase is
 * bounded, and the whole run by `BENCH_TIMEOUT`; the server and the temporary
 * homes are removed at the end.
 *
 * Run: `deno run -A bench/requests.ts` (knobs in bench/README.md).
 *
 * @module
 */

import {
  applyCryptoEnv,
  cpuSeconds,
  envNumber,
  fmt,
  guardRun,
  initClockTicks,
  machineSeconds,
  median,
  medianMinMax,
  medianPercent,
  peakRssKib,
  percent,
  runMain,
  startChildServer,
} from "./_harness.ts";
import {
  authorizedKeysAuthorizer,
  Keystore,
  knownHostsVerifier,
  OvtpClient,
  type OvtpServer,
  serve,
} from "../mod.ts";
import { MAIN } from "../tests/_listen_process.ts";
import { fileURLToPath } from "node:url";

/** Only loopback is ever a target. */
const HOST = "127.0.0.1";
const SERVE = fileURLToPath(new URL("./_serve.ts", import.meta.url));

interface Config {
  seconds: number;
  warmupSeconds: number;
  reps: number;
  window: number;
  connectors: number;
  messageBytes: number;
  timeoutSeconds: number;
  server: "child" | "lib" | "inprocess";
  jsonPath: string | undefined;
}

function readConfig(): Config {
  const server = Deno.env.get("BENCH_SERVER") ?? "child";
  if (server !== "child" && server !== "lib" && server !== "inprocess") {
    throw new RangeError(
      `Invalid BENCH_SERVER "${server}": expected "child", "lib" or "inprocess"`,
    );
  }
  return {
    seconds: envNumber("BENCH_SECONDS", 5, 0.1, 600),
    warmupSeconds: envNumber("BENCH_WARMUP_SECONDS", 1, 0, 60),
    reps: Math.round(envNumber("BENCH_REPS", 3, 1, 100)),
    window: Math.round(envNumber("BENCH_WINDOW", 64, 2, 4096)),
    connectors: Math.round(envNumber("BENCH_CONNECTORS", 8, 2, 256)),
    messageBytes: Math.round(envNumber("BENCH_MSG_BYTES", 16, 0, 1 << 20)),
    timeoutSeconds: envNumber("BENCH_TIMEOUT", 600, 10, 7200),
    server,
    jsonPath: Deno.env.get("BENCH_JSON") || undefined,
  };
}

// --- the server -------------------------------------------------------------------------------

interface RunningServer {
  port: number;
  /** The PID whose CPU is the server's (this process when in-process). */
  pid: number | "self";
  /** The last lines the server wrote on stderr. */
  log: string[];
  stop(): Promise<void>;
}

// A child process (main.ts listen, or _serve.ts) as a RunningServer.
async function startChild(args: string[], timeoutMs: number): Promise<RunningServer> {
  const { server, port } = await startChildServer(args, timeoutMs);
  return { port, pid: server.pid, log: server.log, stop: () => server.stop() };
}

function startInProcessServer(home: string): Promise<RunningServer> {
  const keystore = new Keystore(home);
  return keystore.loadIdentity(() => Promise.resolve("")).then((identity) => {
    const log: string[] = [];
    const server: OvtpServer = serve({
      identity,
      hostname: HOST,
      port: 0,
      authorize: authorizedKeysAuthorizer(keystore),
      handler: () => ({ status: "ok" }),
      logger: {
        info() {},
        warn(message) {
          log.push(`warning: ${message}`);
          if (log.length > 200) log.shift();
        },
      },
    });
    return { port: server.addr.port, pid: "self" as const, log, stop: () => server.close() };
  });
}

// --- the measurements ------------------------------------------------------------------------

interface Sample {
  rate: number;
  count: number;
  failures: number;
  seconds: number;
  serverCpu: number;
  clientCpu: number;
  /** CPU used meanwhile by every other process and the kernel's interrupt work. */
  otherCpu: number;
  /** CPU the hypervisor took from this machine meanwhile: a busy host skews the figures. */
  stealCpu: number;
}

type Connect = () => Promise<OvtpClient>;

/** Runs `workers` loops of `step` until `seconds` have passed; counts completed steps. */
async function runFor(
  seconds: number,
  workers: number,
  serverPid: number | "self",
  step: () => Promise<boolean>,
): Promise<Sample> {
  const serverCpu0 = cpuSeconds(serverPid);
  const clientCpu0 = cpuSeconds("self");
  const machine0 = machineSeconds();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let count = 0;
  let failures = 0;
  let firstError: unknown;
  const loop = async () => {
    while (performance.now() < deadline) {
      try {
        if (await step()) count++;
        else failures++;
      } catch (error) {
        failures++;
        firstError ??= error;
        if (failures > 100) return;
      }
    }
  };
  const guard = Math.max(30_000, seconds * 2000);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`A phase of ${seconds} s did not end within ${guard / 1000} s more`)),
      seconds * 1000 + guard,
    );
  });
  try {
    await Promise.race([Promise.all(Array.from({ length: workers }, loop)), stalled]);
  } finally {
    clearTimeout(timer);
  }
  const elapsed = (performance.now() - start) / 1000;
  if (count === 0 && firstError) throw firstError;
  if (firstError) console.error(`bench: ${failures} failure(s); first: ${firstError}`);
  const serverCpu = (cpuSeconds(serverPid) - serverCpu0) / elapsed;
  const clientCpu = (cpuSeconds("self") - clientCpu0) / elapsed;
  const ours = serverPid === "self" ? clientCpu : serverCpu + clientCpu;
  const machine1 = machineSeconds();
  return {
    rate: count / elapsed,
    count,
    failures,
    seconds: elapsed,
    serverCpu,
    clientCpu,
    otherCpu: Math.max(0, (machine1.busy - machine0.busy) / elapsed - ours),
    stealCpu: (machine1.steal - machine0.steal) / elapsed,
  };
}

async function requestRate(
  connect: Connect,
  window: number,
  seconds: number,
  serverPid: number | "self",
  body: Uint8Array,
): Promise<Sample> {
  const client = await connect();
  try {
    const first = await client.request(body);
    if (first.status !== "ok") throw new Error(`The server answered "${first.status}"`);
    return await runFor(
      seconds,
      window,
      serverPid,
      async () => (await client.request(body)).status === "ok",
    );
  } finally {
    client.close();
  }
}

function handshakeRate(
  connect: Connect,
  connectors: number,
  seconds: number,
  serverPid: number | "self",
): Promise<Sample> {
  return runFor(seconds, connectors, serverPid, async () => {
    const client = await connect();
    client.close();
    return true;
  });
}

// --- reporting -------------------------------------------------------------------------------

interface Row {
  name: string;
  unit: string;
  target?: number;
  samples: Sample[];
}

function table(rows: Row[]): string {
  const lines = [
    "| measurement | median | min | max | unit | target | met | failures | server CPU | client CPU | other CPU | steal |",
    "|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const rates = row.samples.map((s) => s.rate);
    const med = median(rates);
    const target = row.target === undefined ? "" : `≥ ${fmt(row.target)}`;
    const met = row.target === undefined ? "" : med >= row.target ? "yes" : "**no**";
    const failures = row.samples.reduce((sum, s) => sum + s.failures, 0);
    lines.push(
      `| ${row.name} | ${medianMinMax(rates)} | ${row.unit} | ${target} | ${met} | ${failures} | ${
        medianPercent(row.samples, (s) => s.serverCpu)
      } | ${medianPercent(row.samples, (s) => s.clientCpu)} | ${
        medianPercent(row.samples, (s) => s.otherCpu)
      } | ${medianPercent(row.samples, (s) => s.stealCpu)} |`,
    );
  }
  return lines.join("\n");
}

// --- main ------------------------------------------------------------------------------------

/** Runs the benchmark; resolves with the exit code. */
async function main(): Promise<number> {
  const config = readConfig();
  console.error(`bench: ${applyCryptoEnv()}`);
  await initClockTicks();
  const tmp = await Deno.makeTempDir({ prefix: "ovtp-bench-" });
  let server: RunningServer | undefined;
  const clients = new Set<OvtpClient>();
  // One cleanup, however many times it is asked for: every caller awaits the same run.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      for (const client of clients) client.close();
      await server?.stop().catch(() => {});
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    })();
  // The watchdog and the signals stop everything; the measurement then fails
  // fast, and main() returns their exit code once the cleanup has finished.
  const guard = guardRun(config.timeoutSeconds, cleanup);

  try {
    const serverStore = new Keystore(`${tmp}/server`);
    const clientStore = new Keystore(`${tmp}/client`);
    await serverStore.createIdentity({ comment: "bench-server" });
    const { identity } = await clientStore.createIdentity({ comment: "bench-client" });
    await serverStore.addAuthorizedKey(identity.publicKey, "bench-client");

    server = config.server === "inprocess"
      ? await startInProcessServer(serverStore.home)
      : await startChild(
        config.server === "child"
          ? [MAIN, "listen", "--home", serverStore.home, "--host", HOST, "--port", "0"]
          : [SERVE, serverStore.home],
        30_000,
      );
    // Stopped while the server was starting: cleanup() ran before it existed.
    if (guard.code !== undefined) await server.stop();
    const { port, pid } = server;
    const verifyHost = knownHostsVerifier(clientStore, `${HOST}:${port}`);
    const connect: Connect = async () => {
      const client = await OvtpClient.connect({ hostname: HOST, port, identity, verifyHost });
      clients.add(client);
      client.closed.finally(() => clients.delete(client));
      return client;
    };
    const body = new Uint8Array(config.messageBytes).fill(0x61);

    const rows: Row[] = [
      {
        name: `requests, ${config.messageBytes} B, window 1`,
        unit: "req/s",
        target: config.messageBytes === 16 ? 3500 : undefined,
        samples: [],
      },
      {
        name: `requests, ${config.messageBytes} B, window ${config.window}`,
        unit: "req/s",
        target: config.messageBytes === 16 && config.window === 64 ? 20000 : undefined,
        samples: [],
      },
      { name: "handshakes, sequential", unit: "conn/s", samples: [] },
      { name: `handshakes, ${config.connectors} concurrent`, unit: "conn/s", samples: [] },
    ];
    // Phase i measures rows[i] for `seconds`.
    const phase = (i: number, seconds: number): Promise<Sample> => {
      switch (i) {
        case 0:
          return requestRate(connect, 1, seconds, pid, body);
        case 1:
          return requestRate(connect, config.window, seconds, pid, body);
        case 2:
          return handshakeRate(connect, 1, seconds, pid);
        default:
          return handshakeRate(connect, config.connectors, seconds, pid);
      }
    };

    console.error(
      `bench: server ${config.server} on ${HOST}:${port}; ${config.reps} x ${config.seconds} s per measurement`,
    );
    if (config.warmupSeconds > 0) {
      for (let i = 0; i < rows.length; i++) await phase(i, config.warmupSeconds);
    }
    for (let rep = 1; rep <= config.reps; rep++) {
      for (let i = 0; i < rows.length; i++) {
        const sample = await phase(i, config.seconds);
        rows[i].samples.push(sample);
        console.error(
          `bench: rep ${rep} ${rows[i].name}: ${fmt(sample.rate)} ${
            rows[i].unit
          } (${sample.count} in ${sample.seconds.toFixed(2)} s, server CPU ${
            percent(sample.serverCpu)
          }, client CPU ${percent(sample.clientCpu)}, failures ${sample.failures})`,
        );
      }
    }

    const serverRss = peakRssKib(pid);
    const clientRss = peakRssKib("self");
    const warnings = server.log.filter((line) => line.includes("warning"));
    console.log(
      `## ovtp requests and handshakes (loopback, ${navigator.hardwareConcurrency} cores, ` +
        `deno ${Deno.version.deno}, ${new Date().toISOString()})\n`,
    );
    console.log(
      `Server: ${
        {
          child: "child process `deno run -A main.ts listen` (stdout to /dev/null)",
          lib: "child process bench/_serve.ts (library serve(), answers ok, prints nothing)",
          inprocess: "serve() in this process, answers ok, prints nothing",
        }[config.server]
      }; client: OvtpClient from mod.ts in one process. ` +
        `${config.reps} repetitions of ${config.seconds} s each (after a ${config.warmupSeconds} s warm-up). ` +
        `CPU: CPU seconds per wall second (100% = one core); ` +
        `other CPU: every other process and the kernel's interrupt work (loopback TCP) meanwhile; ` +
        `steal: CPU the hypervisor gave to other guests (both should be near 0% for clean figures).\n`,
    );
    console.log(table(rows));
    console.log(
      `\nPeak RSS: server ${fmt(serverRss)} KiB, client ${fmt(clientRss)} KiB.` +
        (warnings.length > 0
          ? ` Server warnings: ${warnings.length} (last: ${warnings.at(-1)}).`
          : ""),
    );
    if (config.jsonPath) {
      await Deno.writeTextFile(
        config.jsonPath,
        JSON.stringify({ config, rows, serverRss, clientRss, warnings }, null, 2) + "\n",
      );
    }
    return guard.code ?? 0;
  } catch (error) {
    if (guard.code !== undefined) return guard.code;
    throw error;
  } finally {
    guard.dispose();
    await cleanup();
  }
}

if (import.meta.main) await runMain(main);
