/**
 * Chat throughput through one room of `BENCH_MEMBERS` (10) members on one
 * server, over loopback.
 *
 * Processes: the server is a child, `deno run -A main.ts listen --host
 * 127.0.0.1 --port 0` (stdout to /dev/null, its stderr log drained), or with
 * `BENCH_SERVER=lib` this file in its `server` role (library `serve()` with a
 * `ChatRelay`, no logging: the CLI's per-message log line left out). The
 * members are `ChatSession`s from ../mod.ts spread over `BENCH_CLIENT_PROCS`
 * (2) child processes running this file in its `clients` role, so that ten
 * members do not need ten Deno processes on a two-core machine
 * (`BENCH_SENDER_ALONE=1` gives member 0, the fan-out sender, the first of
 * them to itself, as a member on its own machine would have). This process
 * only coordinates: it creates the identities (in temporary homes, with the
 * same Keystore calls as `ovtp keygen` and `ovtp add-key`), starts everything,
 * sends each client process a JSON command line on stdin and reads its JSON
 * event lines on stdout.
 *
 * Measured, `BENCH_REPS` (3) times each after one untimed warm-up of each:
 *
 * - **fan-out**: member 0 posts `BENCH_MESSAGES` (300) messages as fast as it
 *   can (each `send()` awaited: sealed for the 9 others, then written); the
 *   time runs from its first send until all 9 receivers have opened all of
 *   them. Messages per second and deliveries (message × receiver) per second.
 * - **fan-out paced**: the same, with member 0 posting at `BENCH_PACE`
 *   (100) messages per second (0 leaves the row out). Unpaced, the poster
 *   outruns the receivers and the latency measures the queue it builds; paced
 *   below the room's capacity, it measures one post's way through.
 * - **all send**: the 10 members post `BENCH_MESSAGES_EACH` (50) messages
 *   each, concurrently; until every member has received all the others'.
 * - **all send, paced**: the same, each member posting at `BENCH_PACE`
 *   divided by the members (the room's total at `BENCH_PACE`).
 *
 * Every message carries its run, its sender's index, its sequence number and
 * the sender's clock just before sealing, so receivers check that each
 * sender's messages arrive complete and in order, and measure the delivery
 * latency (same machine, same clock). The table shows median, min and max
 * over the repetitions, the latency, the CPU of the server and of the client
 * processes per wall second, and what else ran on the machine meanwhile
 * (other CPU, hypervisor steal): this machine is shared and figures taken
 * with other CPU or steal far above 0% are not clean.
 *
 * Every run is bounded by `BENCH_RUN_TIMEOUT`, the whole benchmark by
 * `BENCH_TIMEOUT`; it stops exactly the processes it started and removes its
 * temporary directory.
 *
 * Run: `deno run -A bench/chat_room.ts` (knobs: see `readConfig`).
 *
 * @module
 */

import {
  Child,
  cpuSeconds,
  envNumber,
  fmt,
  guardRun,
  initClockTicks,
  lines,
  loadAverage,
  machineSeconds,
  median,
  medianMinMax,
  medianPercent,
  peakRssKib,
  percent,
  quantile,
  runMain,
  startChildServer,
  within,
} from "./_harness.ts";
import { MAIN } from "../tests/_listen_process.ts";
import { writeAllSync } from "../lib/io/files.ts";
import {
  authorizedKeysAuthorizer,
  ChatRelay,
  ChatSession,
  Keystore,
  knownHostsVerifier,
  OvtpClient,
  RoomStore,
  serve,
  SILENT_LOGGER,
} from "../mod.ts";
import { fileURLToPath } from "node:url";

/** Only loopback is ever a target. */
const HOST = "127.0.0.1";
const SELF = fileURLToPath(import.meta.url);
const ROOM = "bench";

// --- configuration ---------------------------------------------------------------------------

interface Config {
  members: number;
  clientProcs: number;
  /**
   * Member 0, the fan-out sender, in a client process of its own, as a
   * member on its own machine would be (the others spread over the rest).
   */
  senderAlone: boolean;
  messages: number;
  messagesEach: number;
  messageBytes: number;
  /** Messages per second for the paced fan-out row; 0 leaves it out. */
  pace: number;
  reps: number;
  warmup: boolean;
  server: "child" | "lib";
  runTimeoutSeconds: number;
  timeoutSeconds: number;
  jsonPath: string | undefined;
}

function readConfig(): Config {
  const server = Deno.env.get("BENCH_SERVER") ?? "child";
  if (server !== "child" && server !== "lib") {
    throw new RangeError(`Invalid BENCH_SERVER "${server}": expected "child" or "lib"`);
  }
  const members = Math.round(envNumber("BENCH_MEMBERS", 10, 2, 256));
  const senderAlone = envNumber("BENCH_SENDER_ALONE", 0, 0, 1) === 1;
  const clientProcs = Math.round(envNumber("BENCH_CLIENT_PROCS", 2, 1, members));
  if (senderAlone && clientProcs < 2) {
    throw new RangeError("BENCH_SENDER_ALONE=1 needs BENCH_CLIENT_PROCS of 2 or more");
  }
  return {
    members,
    clientProcs,
    senderAlone,
    messages: Math.round(envNumber("BENCH_MESSAGES", 300, 1, 1e6)),
    messagesEach: Math.round(envNumber("BENCH_MESSAGES_EACH", 50, 1, 1e6)),
    messageBytes: Math.round(envNumber("BENCH_MSG_BYTES", 100, 48, 60_000)),
    pace: envNumber("BENCH_PACE", 100, 0, 1e5),
    reps: Math.round(envNumber("BENCH_REPS", 3, 1, 100)),
    warmup: envNumber("BENCH_WARMUP", 1, 0, 1) === 1,
    server,
    runTimeoutSeconds: envNumber("BENCH_RUN_TIMEOUT", 120, 5, 3600),
    timeoutSeconds: envNumber("BENCH_TIMEOUT", 900, 10, 7200),
    jsonPath: Deno.env.get("BENCH_JSON") || undefined,
  };
}

// --- messages between the coordinator and the client processes ------------------------------

interface MemberSpec {
  index: number;
  home: string;
  name: string;
}

interface ClientsInit {
  port: number;
  members: MemberSpec[];
  total: number;
}

/** Coordinator → clients, one JSON object per stdin line. */
type Command =
  | { cmd: "run"; run: number; senders: number[]; count: number; bytes: number; pace: number }
  | { cmd: "quit" };

/** Clients → coordinator, one JSON object per stdout line. */
type ClientEvent =
  | { event: "ready" }
  | {
    event: "done";
    run: number;
    /** Epoch ms (sub-ms): the first local send began; null when no local sender. */
    firstSendAt: number | null;
    /** Epoch ms: the last local send resolved. */
    lastSendAt: number | null;
    /** Epoch ms: the last expected message was opened by a local member. */
    lastReceiveAt: number;
    /** Delivery latencies in ms (receiver's clock minus the sender's just before sealing). */
    latencies: number[];
    received: number;
    outOfOrder: number;
    /** Messages that failed verification during the run. */
    dropped: number;
  }
  | { event: "error"; message: string };

/** Epoch milliseconds with sub-millisecond resolution. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

// --- the clients role ------------------------------------------------------------------------

/**
 * Connects and joins the given members, reports "ready" once each sees every
 * member online, then runs the coordinator's commands.
 */
async function clientsRole(init: ClientsInit): Promise<void> {
  const encoder = new TextEncoder();
  const emit = (event: ClientEvent) => {
    // A pipe may take a long line in several writes.
    writeAllSync(Deno.stdout, encoder.encode(JSON.stringify(event) + "\n"));
  };

  interface RunState {
    received: Map<number, number>;
    lastSeq: Map<string, number>;
    latencies: number[];
    outOfOrder: number;
    lastReceiveAt: number;
    /** Resolves the run's wait once every local member has received `expectedFor(index)`. */
    complete?: () => void;
    expectedFor?: (index: number) => number;
  }
  const runs = new Map<number, RunState>();
  const runState = (run: number): RunState => {
    let state = runs.get(run);
    if (!state) {
      state = {
        received: new Map(),
        lastSeq: new Map(),
        latencies: [],
        outOfOrder: 0,
        lastReceiveAt: 0,
      };
      runs.set(run, state);
    }
    return state;
  };
  let dropped = 0;
  const checkComplete = (state: RunState) => {
    if (!state.complete || !state.expectedFor) return;
    for (const member of init.members) {
      if ((state.received.get(member.index) ?? 0) < state.expectedFor(member.index)) return;
    }
    const complete = state.complete;
    state.complete = undefined;
    complete();
  };

  const presence = new Set<() => void>();
  const sessions = new Map<number, ChatSession>();
  const clients: OvtpClient[] = [];
  await Promise.all(init.members.map(async (member) => {
    const keystore = new Keystore(member.home);
    const identity = await keystore.loadIdentity(() => Promise.resolve(""));
    const client = await OvtpClient.connect({
      hostname: HOST,
      port: init.port,
      identity,
      verifyHost: knownHostsVerifier(keystore, `${HOST}:${init.port}`),
    });
    clients.push(client);
    const session = await ChatSession.join(client, identity, {
      room: ROOM,
      display: member.name,
    }, {
      onMessage(message) {
        const at = now();
        // "<run> <sender> <seq> <sent-at> <padding>"
        const [run, sender, seq, sentAt] = message.text.split(" ", 4);
        const state = runState(Number(run));
        const key = `${member.index}/${sender}`;
        const previous = state.lastSeq.get(key) ?? -1;
        if (Number(seq) !== previous + 1) state.outOfOrder++;
        state.lastSeq.set(key, Number(seq));
        state.latencies.push(at - Number(sentAt));
        state.received.set(member.index, (state.received.get(member.index) ?? 0) + 1);
        state.lastReceiveAt = at;
        checkComplete(state);
      },
      onPresence() {
        for (const check of presence) check();
      },
      // A refused post would otherwise only show as a run that never ends.
      onWarning(message) {
        emit({ event: "error", message: `member ${member.index}: ${message}` });
      },
      onDropped(claimed, reason) {
        dropped++;
        console.error(`bench clients: dropped a message from ${claimed}: ${reason}`);
      },
    });
    sessions.set(member.index, session);
  }));

  // Ready once every local session lists every member online: a message is
  // sealed only for the members its sender knows of.
  await new Promise<void>((resolve) => {
    const check = () => {
      for (const session of sessions.values()) {
        if (session.members.filter((m) => m.online).length < init.total) return;
      }
      presence.delete(check);
      resolve();
    };
    presence.add(check);
    check();
  });
  emit({ event: "ready" });

  const padding = "x".repeat(60_000);
  const runCommand = async (command: Extract<Command, { cmd: "run" }>) => {
    const state = runState(command.run);
    const senders = new Set(command.senders);
    state.expectedFor = (index) => command.count * (senders.size - (senders.has(index) ? 1 : 0));
    const droppedBefore = dropped;
    const received = new Promise<void>((resolve) => (state.complete = resolve));
    checkComplete(state);
    let firstSendAt: number | null = null;
    let lastSendAt: number | null = null;
    await Promise.all(
      init.members.filter((m) => senders.has(m.index)).map(async (member) => {
        const session = sessions.get(member.index)!;
        // Paced senders take turns: the k-th of n starts k/n of an interval
        // late, so that the room's posts are spread, not sent in bursts.
        const order = command.senders.indexOf(member.index) / command.senders.length;
        const start = now() + (command.pace > 0 ? (order * 1000) / command.pace : 0);
        firstSendAt = Math.min(firstSendAt ?? Infinity, now());
        for (let seq = 0; seq < command.count; seq++) {
          const due = command.pace > 0 ? start + (seq * 1000) / command.pace : 0;
          if (due > now()) await new Promise((resolve) => setTimeout(resolve, due - now()));
          const head = `${command.run} ${member.index} ${seq} ${now().toFixed(3)} `;
          const text = head + padding.slice(0, Math.max(0, command.bytes - head.length));
          const recipients = await session.send(text);
          if (recipients !== init.total - 1) {
            throw new Error(`Member ${member.index} sealed for ${recipients} recipients`);
          }
        }
        lastSendAt = Math.max(lastSendAt ?? 0, now());
      }),
    );
    await received;
    emit({
      event: "done",
      run: command.run,
      firstSendAt,
      lastSendAt,
      lastReceiveAt: state.lastReceiveAt,
      latencies: state.latencies.map((l) => Math.round(l * 100) / 100),
      received: [...state.received.values()].reduce((a, b) => a + b, 0),
      outOfOrder: state.outOfOrder,
      dropped: dropped - droppedBefore,
    });
    runs.delete(command.run);
  };

  try {
    for await (const line of lines(Deno.stdin.readable)) {
      const command = JSON.parse(line) as Command;
      if (command.cmd === "quit") break;
      // Not awaited: the next command (quit) must get through while a run waits.
      runCommand(command).catch((error) => emit({ event: "error", message: String(error) }));
    }
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.leave().catch(() => {})));
    for (const client of clients) client.close();
  }
}

// --- the server role (BENCH_SERVER=lib) -----------------------------------------------------

async function serverRole(home: string): Promise<void> {
  const keystore = new Keystore(home);
  const identity = await keystore.loadIdentity(() => Promise.resolve(""));
  const server = serve({
    identity,
    hostname: HOST,
    port: 0,
    // Every member connects from 127.0.0.1, all at once.
    maxPerAddress: 1024,
    maxHandshakes: 1024,
    authorize: authorizedKeysAuthorizer(keystore),
    handler: () => ({ status: "ok" }),
    chat: new ChatRelay(new RoomStore(keystore.path("rooms")), SILENT_LOGGER),
  });
  console.error(`bench chat server: listening on ${HOST}:${server.addr.port}`);
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", () => resolve());
  Deno.addSignalListener("SIGINT", () => resolve());
  await promise;
  await server.close();
}

async function startServer(config: Config, home: string, timeoutMs: number) {
  return await startChildServer(
    config.server === "child"
      ? [
        MAIN,
        "listen",
        "--home",
        home,
        "--host",
        HOST,
        "--port",
        "0",
        // Every member connects from 127.0.0.1, all at once.
        "--max-per-address",
        String(config.members + 16),
        "--max-handshakes",
        String(config.members + 16),
      ]
      : [SELF, "server", home],
    timeoutMs,
  );
}

/** A client process and the events it has sent. */
class ClientProcess {
  readonly child: Child;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #events: ClientEvent[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(init: ClientsInit) {
    const child = new Child([SELF, "clients", JSON.stringify(init)], "piped", "piped");
    this.child = child;
    this.#writer = child.process.stdin.getWriter();
    (async () => {
      for await (const line of lines(child.process.stdout)) {
        try {
          this.#events.push(JSON.parse(line));
        } catch {
          child.log.push(`(stdout) ${line}`);
        }
        this.#wake?.();
      }
    })().catch(() => {}).finally(() => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  async send(command: Command): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
  }

  /** The next event, or an error when the process ends or reports one. */
  async next(): Promise<ClientEvent> {
    while (this.#events.length === 0) {
      if (this.#ended) {
        throw new Error(
          `A client process (pid ${this.child.pid}) ended: ${this.child.log.slice(-5).join(" | ")}`,
        );
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
    const event = this.#events.shift()!;
    if (event.event === "error") throw new Error(`A client process failed: ${event.message}`);
    return event;
  }

  /** Asks it to leave and close; stops it if it does not exit in time. */
  async quit(): Promise<void> {
    await this.send({ cmd: "quit" }).catch(() => {});
    await this.#writer.close().catch(() => {});
    const exited = await within(this.child.process.status, 5000, "quit").then(
      () => true,
      () => false,
    );
    await this.child.stop(exited ? 0 : 2000);
  }
}

// --- measuring -------------------------------------------------------------------------------

interface Sample {
  /** Wall seconds from the first send to the last expected delivery. */
  seconds: number;
  messages: number;
  deliveries: number;
  messagesPerSecond: number;
  deliveriesPerSecond: number;
  /** Messages per second over the senders' posting alone (first send to last resolved send). */
  postingRate: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  outOfOrder: number;
  dropped: number;
  serverCpu: number;
  /** All client processes together. */
  clientCpu: number;
  /** Each client process (the first holds member 0, the fan-out sender). */
  perProcessCpu: number[];
  otherCpu: number;
  stealCpu: number;
}

async function measureRun(
  procs: ClientProcess[],
  serverPid: number,
  run: number,
  { senders, count, pace }: Pick<Row, "senders" | "count" | "pace">,
  config: Config,
): Promise<Sample> {
  const pids = procs.map((p) => p.child.pid);
  const server0 = cpuSeconds(serverPid);
  const clients0 = pids.map((pid) => cpuSeconds(pid));
  const self0 = cpuSeconds("self");
  const machine0 = machineSeconds();
  const wall0 = performance.now();
  await Promise.all(
    procs.map((p) => p.send({ cmd: "run", run, senders, count, bytes: config.messageBytes, pace })),
  );
  const events = await within(
    Promise.all(procs.map(async (p) => {
      const event = await p.next();
      if (event.event !== "done" || event.run !== run) {
        throw new Error(`Unexpected event from a client process: ${JSON.stringify(event)}`);
      }
      return event;
    })),
    config.runTimeoutSeconds * 1000,
    `Run ${run} (${senders.length} sender(s) x ${count})`,
  );
  const wall = (performance.now() - wall0) / 1000;
  const serverCpu = (cpuSeconds(serverPid) - server0) / wall;
  const perProcessCpu = pids.map((pid, i) => (cpuSeconds(pid) - clients0[i]) / wall);
  const clientCpu = perProcessCpu.reduce((a, b) => a + b, 0);
  const selfCpu = (cpuSeconds("self") - self0) / wall;
  const machine1 = machineSeconds();

  const firstSend = Math.min(...events.map((e) => e.firstSendAt ?? Infinity));
  const lastSend = Math.max(...events.map((e) => e.lastSendAt ?? 0));
  const lastReceive = Math.max(...events.map((e) => e.lastReceiveAt));
  const seconds = (lastReceive - firstSend) / 1000;
  const messages = senders.length * count;
  const deliveries = events.reduce((sum, e) => sum + e.received, 0);
  const expectedDeliveries = messages * (config.members - 1);
  if (deliveries !== expectedDeliveries) {
    throw new Error(`Run ${run}: ${deliveries} deliveries, expected ${expectedDeliveries}`);
  }
  const latencies = events.flatMap((e) => e.latencies).sort((a, b) => a - b);
  return {
    seconds,
    messages,
    deliveries,
    messagesPerSecond: messages / seconds,
    deliveriesPerSecond: deliveries / seconds,
    postingRate: messages / ((lastSend - firstSend) / 1000),
    latency: {
      p50: quantile(latencies, 0.5),
      p90: quantile(latencies, 0.9),
      p99: quantile(latencies, 0.99),
      max: latencies[latencies.length - 1],
    },
    outOfOrder: events.reduce((sum, e) => sum + e.outOfOrder, 0),
    dropped: events.reduce((sum, e) => sum + e.dropped, 0),
    serverCpu,
    clientCpu,
    perProcessCpu,
    otherCpu: Math.max(0, (machine1.busy - machine0.busy) / wall - serverCpu - clientCpu - selfCpu),
    stealCpu: (machine1.steal - machine0.steal) / wall,
  };
}

// --- reporting -------------------------------------------------------------------------------

interface Row {
  name: string;
  senders: number[];
  count: number;
  /** Messages per second for each sender; 0 for as fast as it can. */
  pace: number;
  samples: Sample[];
}

function table(rows: Row[]): string {
  const lines = [
    "| scenario | messages | msg/s median | min | max | deliveries/s median | min | max | posting msg/s | latency p50 / p90 / p99 / max ms | out of order | dropped | server CPU | clients CPU (per process) | other CPU | steal |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const s = row.samples;
    const msg = s.map((x) => x.messagesPerSecond);
    const del = s.map((x) => x.deliveriesPerSecond);
    const m = (f: (x: Sample) => number) => median(s.map(f));
    lines.push(
      `| ${row.name} | ${s[0]?.messages ?? "–"} | ${medianMinMax(msg)} | ${medianMinMax(del)} | ${
        fmt(m((x) => x.postingRate))
      } | ${fmt(m((x) => x.latency.p50))} / ${fmt(m((x) => x.latency.p90))} / ${
        fmt(m((x) => x.latency.p99))
      } / ${fmt(m((x) => x.latency.max))} | ${s.reduce((n, x) => n + x.outOfOrder, 0)} | ${
        s.reduce((n, x) => n + x.dropped, 0)
      } | ${medianPercent(s, (x) => x.serverCpu)} | ${medianPercent(s, (x) => x.clientCpu)} (${
        (s[0]?.perProcessCpu ?? []).map((_, i) => percent(m((x) => x.perProcessCpu[i]))).join(" + ")
      }) | ${medianPercent(s, (x) => x.otherCpu)} | ${medianPercent(s, (x) => x.stealCpu)} |`,
    );
  }
  return lines.join("\n");
}

// --- the coordinator -------------------------------------------------------------------------

async function coordinator(): Promise<number> {
  const config = readConfig();
  await initClockTicks();
  const tmp = await Deno.makeTempDir({ prefix: "ovtp-bench-chat-" });
  let server: Child | undefined;
  const procs: ClientProcess[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      await Promise.all(procs.map((p) => p.quit().catch(() => {})));
      await server?.stop().catch(() => {});
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    })();
  const guard = guardRun(config.timeoutSeconds, cleanup);

  try {
    const loadBefore = loadAverage();
    const serverStore = new Keystore(`${tmp}/server`);
    await serverStore.createIdentity({ comment: "bench-server" });
    const members: MemberSpec[] = [];
    for (let index = 0; index < config.members; index++) {
      const name = `m${index}`;
      const home = `${tmp}/${name}`;
      const { identity } = await new Keystore(home).createIdentity({ comment: name });
      await serverStore.addAuthorizedKey(identity.publicKey, name);
      members.push({ index, home, name });
    }

    const started = await startServer(config, serverStore.home, 30_000);
    server = started.server;
    if (guard.code !== undefined) return guard.code;
    const { port } = started;

    // Members spread round-robin, so member 0 (the fan-out sender) shares its
    // process with receivers as every other process does; or, with
    // BENCH_SENDER_ALONE, it has process 0 to itself. Sealing a post for 49
    // takes about 2.7 ms of the event loop its receivers share otherwise.
    const procOf = (index: number): number => {
      if (!config.senderAlone) return index % config.clientProcs;
      return index === 0 ? 0 : 1 + index % (config.clientProcs - 1);
    };
    for (let p = 0; p < config.clientProcs; p++) {
      procs.push(
        new ClientProcess({
          port,
          members: members.filter((m) => procOf(m.index) === p),
          total: config.members,
        }),
      );
    }
    await within(
      Promise.all(procs.map(async (p) => {
        const event = await p.next();
        if (event.event !== "ready") throw new Error(`Expected ready, got ${event.event}`);
      })),
      60_000,
      "The members joining the room",
    );
    console.error(
      `bench: server ${config.server} on ${HOST}:${port}, ${config.members} members in ` +
        `${config.clientProcs} client process(es); load ${loadBefore}`,
    );

    const everyone = members.map((m) => m.index);
    const rows: Row[] = [
      {
        name: `fan-out: 1 sender → ${config.members - 1}`,
        senders: [0],
        count: config.messages,
        pace: 0,
        samples: [],
      },
      ...(config.pace > 0
        ? [{
          name: `fan-out paced at ${fmt(config.pace)} msg/s: 1 sender → ${config.members - 1}`,
          senders: [0],
          count: config.messages,
          pace: config.pace,
          samples: [],
        }]
        : []),
      {
        name: `all ${config.members} send at once`,
        senders: everyone,
        count: config.messagesEach,
        pace: 0,
        samples: [],
      },
      ...(config.pace > 0
        ? [{
          name: `all ${config.members} send, paced at ${fmt(config.pace)} msg/s in all`,
          senders: everyone,
          count: config.messagesEach,
          pace: config.pace / config.members,
          samples: [],
        }]
        : []),
    ];
    let run = 0;
    if (config.warmup) {
      for (const row of rows) {
        await measureRun(procs, server.pid, ++run, {
          ...row,
          count: Math.max(1, Math.ceil(row.count / 5)),
        }, config);
      }
    }
    for (let rep = 1; rep <= config.reps; rep++) {
      for (const row of rows) {
        const sample = await measureRun(procs, server.pid, ++run, row, config);
        row.samples.push(sample);
        console.error(
          `bench: rep ${rep} ${row.name}: ${fmt(sample.messagesPerSecond)} msg/s, ` +
            `${fmt(sample.deliveriesPerSecond)} deliveries/s (${sample.messages} messages in ` +
            `${sample.seconds.toFixed(2)} s; posting ${
              fmt(sample.postingRate)
            } msg/s; latency p50 ` +
            `${fmt(sample.latency.p50)} ms; server CPU ${percent(sample.serverCpu)}, clients CPU ` +
            `${sample.perProcessCpu.map(percent).join(" + ")}, other ${
              percent(sample.otherCpu)
            }, ` +
            `steal ` +
            `${percent(sample.stealCpu)})`,
        );
      }
    }
    const loadAfter = loadAverage();
    const serverRss = peakRssKib(server.pid);
    const clientRss = procs.map((p) => peakRssKib(p.child.pid));
    const warnings = server.log.filter((line) => line.includes("warning"));

    console.log(
      `## ovtp chat: one room of ${config.members} members (loopback, ` +
        `${navigator.hardwareConcurrency} cores, deno ${Deno.version.deno}, ${
          new Date().toISOString()
        })\n`,
    );
    console.log(
      `Server: ${
        config.server === "child"
          ? "child process `deno run -A main.ts listen` (stdout to /dev/null, its stderr log drained)"
          : "child process running this file's server role (library serve() with a ChatRelay, no log)"
      }; members: ChatSession from mod.ts, ${config.members} over ${config.clientProcs} client ` +
        `process(es)${
          config.senderAlone ? ", member 0 alone in the first" : ""
        }, one connection each. ${config.messageBytes}-byte messages, each sealed for ` +
        `the ${config.members - 1} other members. ${config.reps} repetitions` +
        `${config.warmup ? " after an untimed warm-up of each scenario" : ""}. msg/s: messages ` +
        `posted / time from the first send to the last delivery opened; deliveries/s: the same ` +
        `× ${config.members - 1} receivers; posting msg/s: messages / time the senders took to ` +
        `post them (each send() awaited); latency: sender's clock before sealing to the ` +
        `receiver's after opening. CPU: CPU seconds per wall second (100% = one core; clients: ` +
        `all client processes together, then each, the first holding member 0); other CPU: ` +
        `every other process and the kernel's interrupt work; steal: CPU the hypervisor gave to other guests (both near 0% for clean ` +
        `figures). Load average before: ${loadBefore}; after: ${loadAfter}.\n`,
    );
    console.log(table(rows));
    console.log(
      `\nPeak RSS: server ${fmt(serverRss)} KiB, client processes ${
        clientRss.map(fmt).join(", ")
      } KiB.` +
        (warnings.length > 0
          ? ` Server warnings: ${warnings.length} (last: ${warnings.at(-1)}).`
          : ""),
    );
    if (config.jsonPath) {
      await Deno.writeTextFile(
        config.jsonPath,
        JSON.stringify(
          {
            config,
            loadBefore,
            loadAfter,
            rows: rows.map((r) => ({ ...r, samples: r.samples })),
            serverRss,
            clientRss,
            warnings,
          },
          null,
          2,
        ) + "\n",
      );
    }
    return guard.code ?? 0;
  } catch (error) {
    if (guard.code !== undefined) return guard.code;
    const logs = [
      server ? `server: ${server.log.slice(-5).join(" | ")}` : "",
      ...procs.map((p, i) => `clients ${i}: ${p.child.log.slice(-5).join(" | ")}`),
    ].filter(Boolean);
    if (logs.length > 0) console.error(`bench: last log lines:\n${logs.join("\n")}`);
    throw error;
  } finally {
    guard.dispose();
    await cleanup();
  }
}

if (import.meta.main) {
  const [role, arg] = Deno.args;
  await runMain(async () => {
    if (role === "clients") await clientsRole(JSON.parse(arg) as ClientsInit);
    else if (role === "server") await serverRole(arg);
    else return await coordinator();
    return 0;
  });
}
