/**
 * Chat fan-out in one room of `BENCH_MEMBERS` (50) members spread over 1, 2
 * and 3 relays (`ovtp listen --cluster`, one nats-server with JetStream on
 * loopback), all in the same run so that the figures compare. Member 0 (on
 * relay 0) posts `BENCH_MESSAGES` (20) messages, each `send()` awaited; the
 * time runs from its first send until every other member has received all
 * of them. Each message carries the sender's clock, so each delivery's
 * latency is measured (same machine, same clock): p50 and p99.
 *
 * The members are ChatSessions in this process (sealing for 49 recipients
 * and opening are client work on the same machine: the figures are for
 * comparing relay counts, not absolute). Needs nats-server on the PATH.
 *
 * Run: `deno run -A bench/chat_cluster.ts`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import {
  ChatSession,
  formatPublicKey,
  generateIdentity,
  type Identity,
  Keystore,
  OvtpClient,
} from "../mod.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const MEMBERS = Number(Deno.env.get("BENCH_MEMBERS") ?? 50);
const MESSAGES = Number(Deno.env.get("BENCH_MESSAGES") ?? 20);

const children: Deno.ChildProcess[] = [];

/** Starts a process and waits until its stderr shows `ready`. */
async function start(cmd: string, args: string[], ready: RegExp, env = {}) {
  const child = new Deno.Command(cmd, { args, env, stdout: "null", stderr: "piped" }).spawn();
  children.push(child);
  let log = "";
  const found = Promise.withResolvers<RegExpExecArray>();
  (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      log += text;
      const match = ready.exec(log);
      if (match) found.resolve(match);
    }
    found.reject(new Error(`${cmd} ended:\n${log}`));
  })();
  return await found.promise;
}

async function freePort(): Promise<number> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  return await Promise.resolve(port);
}

/** One run: relays on a fresh NATS, members round-robin over them. */
async function run(relays: number, members: Identity[], home: string, dir: string) {
  const natsPort = await freePort();
  await start("nats-server", [
    "-js",
    "-a",
    "127.0.0.1",
    "-p",
    String(natsPort),
    "-sd",
    `${dir}/nats${relays}`,
  ], /Server is ready/);
  const ports: number[] = [];
  for (let i = 0; i < relays; i++) {
    const match = await start(
      Deno.execPath(),
      [
        "run",
        "-A",
        MAIN,
        "listen",
        "-q",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--cluster",
        `nats://127.0.0.1:${natsPort}`,
      ],
      /listening on 127\.0\.0\.1:(\d+)/,
      { OVTP_HOME: home, NO_COLOR: "1" },
    );
    ports.push(Number(match[1]));
  }
  const latencies: number[] = [];
  let received = 0;
  const all = Promise.withResolvers<void>();
  const expected = MESSAGES * (members.length - 1);
  const sessions: ChatSession[] = [];
  const clients: OvtpClient[] = [];
  for (const [i, identity] of members.entries()) {
    const client = await OvtpClient.connect({
      hostname: "127.0.0.1",
      port: ports[i % relays],
      identity,
      verifyHost: () => {}, // Loopback relays this run started.
    });
    clients.push(client);
    sessions.push(
      await ChatSession.join(client, identity, { room: "bench", display: `m${i}` }, {
        onMessage: (message) => {
          latencies.push(Date.now() - Number(message.text.split(" ")[1]));
          if (++received === expected) all.resolve();
        },
        onPresence() {},
        onDropped() {},
      }),
    );
  }
  // Member 0 learns of everyone through presence before posting.
  await new Promise((r) => setTimeout(r, 1000));
  const started = performance.now();
  for (let n = 0; n < MESSAGES; n++) await sessions[0].send(`${n} ${Date.now()}`);
  await all.promise;
  const seconds = (performance.now() - started) / 1000;
  for (const client of clients) client.close();
  for (const child of children.splice(0)) {
    child.kill("SIGKILL");
    await child.status;
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { relays, msgPerS: MESSAGES / seconds, p50: at(0.5), p99: at(0.99) };
}

const dir = await Deno.makeTempDir();
try {
  const home = `${dir}/relay`;
  const keystore = new Keystore(home);
  await keystore.createIdentity({ comment: "relay" });
  const members: Identity[] = [];
  const lines: string[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    const identity = await generateIdentity();
    members.push(identity);
    lines.push(formatPublicKey(identity.publicKey, `m${i}`));
  }
  await Deno.writeTextFile(keystore.path("authorizedKeys"), lines.join("\n") + "\n");
  console.log(`${MEMBERS} members, ${MESSAGES} messages from one of them`);
  console.log("relays  msg/s   p50 ms  p99 ms");
  for (const relays of [1, 2, 3]) {
    const r = await run(relays, members, home, dir);
    console.log(
      `${r.relays}       ${r.msgPerS.toFixed(1).padEnd(7)} ${String(r.p50).padEnd(7)} ${r.p99}`,
    );
  }
} finally {
  for (const child of children) child.kill("SIGKILL");
  await Deno.remove(dir, { recursive: true });
}
