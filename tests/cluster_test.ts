// `ovtp listen --cluster`: relays sharing rooms, queues and rate limits
// through a real nats-server with JetStream, checked through the real CLI.
// Skips (saying why) where nats-server is not installed; CI installs it.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  assertOneError,
  CLI_ENV,
  homeWithIdentity,
  type Listener,
  MAIN,
  ovtp,
  startListen,
} from "./_cli.ts";

import { hasNats, startNats } from "./_nats.ts";
import { ChatSession, Keystore, OvtpClient, parsePublicKey } from "../mod.ts";

/** A running `ovtp chat --json` driven through its stdin. */
interface ChatClient {
  say(line: string): Promise<void>;
  waitFor(text: string | RegExp, stream?: "stdout" | "stderr"): Promise<void>;
  /** The texts of the messages received, in order. */
  messages(): string[];
  stderr(): string;
  /** Closes stdin (the chat leaves) and resolves with the exit code. */
  quit(): Promise<number>;
  /** Resolves with the exit code once chat ends by itself. */
  exited(): Promise<number>;
}

/**
 * The relays of the cluster running now: a chat that waits in vain says
 * what they logged, since its own output rarely tells why.
 */
let runningRelays: Listener[] = [];

function relayLogs(): string {
  return runningRelays.map((relay, i) =>
    `\n--- relay ${i}, last lines of its log:\n${relay.stderr().split("\n").slice(-15).join("\n")}`
  ).join("");
}

function startChat(home: string, target: string, room = "ops", extra: string[] = []): ChatClient {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, "chat", target, "--room", room, "--json", ...extra],
    env: { ...CLI_ENV, OVTP_HOME: home, HOME: `${home}.user` },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { stdout: "", stderr: "" };
  const pumps = Promise.all(
    (["stdout", "stderr"] as const).map(async (key) => {
      for await (const text of child[key].pipeThrough(new TextDecoderStream())) out[key] += text;
    }),
  );
  const writer = child.stdin.getWriter();
  return {
    say: (line) => writer.write(new TextEncoder().encode(line + "\n")),
    async waitFor(text, stream = "stdout") {
      const deadline = Date.now() + 20_000;
      const found = () =>
        typeof text === "string" ? out[stream].includes(text) : text.test(out[stream]);
      while (!found()) {
        if (Date.now() > deadline) {
          throw new Error(
            `Timed out waiting for ${text} in chat ${stream}:\n${out.stdout}\n${out.stderr}` +
              relayLogs(),
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    messages: () =>
      out.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
        .filter((e) => e.event === "message").map((e) => e.message),
    stderr: () => out.stderr,
    async quit() {
      await writer.close().catch(() => {});
      const status = await child.status;
      await pumps;
      return status.code;
    },
    async exited() {
      const status = await child.status;
      await pumps;
      await writer.close().catch(() => {});
      return status.code;
    },
  };
}

/**
 * One NATS, `relays` relays with the same server key (the second's home a
 * copy of the first's) and `names` authorized on all of them.
 */
async function cluster(names: string[], relays = 2, args: string[] = []) {
  const dir = await tempDir();
  const nats = await startNats(`${dir}/nats`);
  const server = await homeWithIdentity("relay");
  const people: Record<string, { home: string; line: string }> = {};
  for (const name of names) {
    people[name] = await homeWithIdentity(name);
    const added = await ovtp(["add-key", people[name].line], { home: server.home });
    assert.equal(added.code, 0, added.stderr);
  }
  const homes = [server.home];
  for (let i = 1; i < relays; i++) {
    homes.push(`${dir}/relay${i}`);
    await new Deno.Command("cp", { args: ["-a", server.home, homes[i]] }).output();
  }
  const listeners: Listener[] = [];
  const start = async (i: number) => {
    listeners[i] = await startListen(homes[i], ["--cluster", nats.url, ...args]);
    await listeners[i].waitFor("cluster: connected to NATS");
    return listeners[i];
  };
  for (let i = 0; i < relays; i++) await start(i);
  runningRelays = listeners;
  const running = {
    nats,
    dir,
    people,
    listeners,
    start,
    async stop() {
      for (const listener of listeners) await listener?.stop("SIGKILL");
      await running.nats.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
  return running;
}

/** The posts a relay has routed. */
const posts = (relay: Listener) =>
  relay.stderr().match(/chat: \d+ bytes in room ops/g)?.length ?? 0;

async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("Timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const joined = (client: ChatClient) => client.waitFor(/joined room ops as /, "stderr");

Deno.test({
  name: "a room spans two relays; a member away gets what was said through the other relay",
  ignore: !hasNats,
  async fn() {
    const c = await cluster(["alice", "bob"]);
    const [a, b] = c.listeners;
    try {
      const alice = startChat(c.people.alice.home, a.target);
      await joined(alice);
      const bob = startChat(c.people.bob.home, b.target);
      await joined(bob);
      await alice.waitFor(/"event":"join",.*"from":"bob"/);
      await alice.say("hello from relay A");
      await bob.waitFor("hello from relay A");
      await bob.say("hello from relay B");
      await alice.waitFor("hello from relay B");
      assert.equal(await bob.quit(), 0);
      await alice.waitFor(/"event":"leave",.*"from":"bob"/);

      await alice.say("while you were away");
      await alice.say("second note");
      await until(() => posts(a) === 3); // Kept while bob was away.
      const back = startChat(c.people.bob.home, b.target);
      await back.waitFor("second note");
      assert.deepEqual(back.messages(), ["while you were away", "second note"]);
      assert.equal(await back.quit(), 0);
      assert.equal(await alice.quit(), 0);
      // Neither relay printed a word of any message.
      for (const relay of [a, b]) {
        assert.doesNotMatch(relay.stdout() + relay.stderr(), /hello|away|note/);
      }
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name:
    "a member connected to two relays gets every post on both: made beside it, or from a third relay",
  ignore: !hasNats,
  async fn() {
    const c = await cluster(["alice", "bob", "carol"], 3);
    const [a, b, third] = c.listeners;
    try {
      const alice = startChat(c.people.alice.home, a.target);
      await joined(alice);
      const bobs = [startChat(c.people.bob.home, a.target), startChat(c.people.bob.home, b.target)];
      for (const bob of bobs) await joined(bob);
      const carol = startChat(c.people.carol.home, third.target);
      await joined(carol);
      await alice.waitFor(/"event":"join",.*"from":"bob"/);
      // Delivered on relay A, handed to relay B; kept on the queue by relay C,
      // read by A or B, handed to the other.
      await alice.say("made beside one of bob's sessions");
      await carol.say("made on a relay bob is not on");
      for (const bob of bobs) {
        await bob.waitFor("made beside one of bob's sessions");
        await bob.waitFor("made on a relay bob is not on");
      }
      for (const client of [...bobs, carol, alice]) assert.equal(await client.quit(), 0);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name: "one key's rate budget is shared by the relays",
  ignore: !hasNats,
  async fn() {
    const c = await cluster(["alice"], 2, ["--rate", "4/h"]);
    try {
      const statuses = [];
      for (let i = 0; i < 8; i++) {
        const relay = c.listeners[i % 2];
        const sent = await ovtp(["send", relay.target, `m${i}`], { home: c.people.alice.home });
        statuses.push(
          sent.code === 0
            ? "ok"
            : sent.stderr.includes("Too many requests")
            ? "limited"
            : sent.stderr,
        );
      }
      assert.deepEqual(statuses, [
        "ok",
        "ok",
        "ok",
        "ok",
        "limited",
        "limited",
        "limited",
        "limited",
      ]);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name: "a relay killed outright: its member moves to the other and gets what was said, once",
  ignore: !hasNats,
  async fn() {
    const c = await cluster(["alice", "bob"]);
    const [a, b] = c.listeners;
    try {
      const alice = startChat(c.people.alice.home, a.target);
      await joined(alice);
      const bob = startChat(c.people.bob.home, b.target);
      await joined(bob);
      await alice.waitFor(/"event":"join",.*"from":"bob"/);
      await alice.say("before");
      await bob.waitFor("before");
      await b.stop("SIGKILL");
      // Without a terminal a lost connection ends chat with exit 3. Closing
      // its stdin first would race that: end of input is an ordinary exit 0.
      assert.equal(await bob.exited(), 3, bob.stderr());
      // Relay A still lists bob as online until the presence entry expires:
      // these go to JetStream for him either way.
      for (const n of [1, 2, 3]) await alice.say(`meanwhile ${n}`);
      await until(() => posts(a) === 4);
      const moved = startChat(c.people.bob.home, a.target);
      await moved.waitFor("meanwhile 3");
      await new Promise((r) => setTimeout(r, 500)); // Room for a duplicate to show.
      assert.deepEqual(moved.messages(), ["meanwhile 1", "meanwhile 2", "meanwhile 3"]);
      assert.equal(await moved.quit(), 0);
      assert.equal(await alice.quit(), 0);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name:
    "NATS stopped under a running relay: chat is refused as unavailable, requests go on, and it comes back",
  ignore: !hasNats,
  async fn() {
    const c = await cluster(["alice", "bob"], 1);
    const [a] = c.listeners;
    try {
      await c.nats.stop();
      await a.waitFor("cluster: lost NATS");
      const refused = await ovtp(["chat", a.target, "--room", "ops"], {
        home: c.people.alice.home,
        stdin: "hello\n",
      });
      assert.notEqual(refused.code, 0);
      assertOneError(refused, /NATS\) cannot be reached/);
      const sent = await ovtp(["send", a.target, "still here"], { home: c.people.alice.home });
      assert.equal(sent.code, 0, sent.stderr);
      assert.match(a.stdout(), /still here/);

      c.nats = await startNats(`${c.dir}/nats`, c.nats.port);
      await a.waitFor("cluster: reconnected to NATS", "stderr", 30_000);
      const alice = startChat(c.people.alice.home, a.target);
      await joined(alice);
      const bob = startChat(c.people.bob.home, a.target);
      await joined(bob);
      await alice.waitFor(/"event":"join",.*"from":"bob"/);
      await alice.say("back again");
      await bob.waitFor("back again");
      assert.equal(await bob.quit(), 0);
      assert.equal(await alice.quit(), 0);
    } finally {
      await c.stop();
    }
  },
});

Deno.test("bad --cluster settings are refused in one line; credentials never on the command line", async () => {
  const server = await homeWithIdentity("relay");
  const cases: [string[], RegExp][] = [
    [
      ["--cluster", "http://127.0.0.1:4222"],
      /Invalid --cluster address "http:\/\/127\.0\.0\.1:4222"/,
    ],
    [["--cluster", ","], /Invalid --cluster: give nats:\/\/HOST:PORT/],
    [["--cluster", "nats://user:secret@127.0.0.1:4222"], /Refusing credentials in --cluster/],
    [["--cluster-creds", "x.creds"], /--cluster-creds needs --cluster/],
    [
      ["--cluster", "nats://127.0.0.1:1", "--cluster-creds", `${server.home}/missing.creds`],
      /Cannot read NATS credentials/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const result = await ovtp(["listen", "--port", "0", ...args], { home: server.home });
    assert.notEqual(result.code, 0, args.join(" "));
    assertOneError(result, pattern);
    assert.doesNotMatch(result.stderr, /secret/);
  }
});

Deno.test("a relay whose NATS cannot be reached at start serves requests and refuses chat", async () => {
  const server = await homeWithIdentity("relay");
  const alice = await homeWithIdentity("alice");
  await ovtp(["add-key", alice.line], { home: server.home });
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = probe.addr.port;
  probe.close();
  const relay = await startListen(server.home, ["--cluster", `nats://127.0.0.1:${closedPort}`]);
  try {
    await relay.waitFor(/cluster: cannot reach NATS .*chat is unavailable, retrying/);
    const sent = await ovtp(["send", relay.target, "hello"], { home: alice.home });
    assert.equal(sent.code, 0, sent.stderr);
    const refused = await ovtp(["chat", relay.target, "--room", "ops"], {
      home: alice.home,
      stdin: "hi\n",
    });
    assert.notEqual(refused.code, 0);
    assertOneError(refused, /NATS\) cannot be reached/);
  } finally {
    await relay.stop();
  }
});

/**
 * A member of an invite-only room driven through the library: the CLI
 * invites only at a terminal (without one, every line is a message).
 */
async function libraryMember(home: string, target: string, room: string, display: string) {
  const identity = await new Keystore(home).loadIdentity(() => Promise.resolve(""));
  const [hostname, port] = target.split(":");
  const client = await OvtpClient.connect({
    hostname,
    port: Number(port),
    identity,
    verifyHost: () => {}, // The relays' key was checked by the CLI tests; this is about the rooms.
  });
  const seen: string[] = [];
  const session = await ChatSession.join(client, identity, {
    room,
    display,
    inviteOnly: {},
  }, {
    onMessage: (message) => seen.push(`message ${message.text}`),
    onPresence() {},
    onDropped: (_from, reason) => seen.push(`dropped ${reason}`),
    onWarning: (warning) => seen.push(`warning ${warning}`),
    onMembership: (change) => seen.push(`${change.action} ${change.member.name}`),
  });
  return {
    session,
    seen,
    async shows(line: string) {
      const deadline = Date.now() + 20_000;
      while (!seen.includes(line)) {
        if (Date.now() > deadline) {
          throw new Error(`Timed out waiting for ${line}: ${seen.join(", ")}${relayLogs()}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => client.close(),
  };
}

Deno.test({
  name:
    "an invite-only room spans relays: one shared log, each change reaching the members on every relay",
  ignore: !hasNats,
  async fn() {
    const c = await cluster(["alice", "bob", "carol"], 3);
    const [a, b, third] = c.listeners;
    const { alice: aliceHome, bob: bobHome, carol: carolHome } = c.people;
    const keyOf = (line: string) => parsePublicKey(line).key;
    try {
      const alice = await libraryMember(aliceHome.home, a.target, "club", "alice");
      await alice.shows("create alice");
      const bob = await libraryMember(bobHome.home, b.target, "club", "bob");
      const carol = startChat(carolHome.home, third.target, "club", ["--invite-only"]);
      await carol.waitFor(/not a member of invite-only room club yet/, "stderr");
      await carol.waitFor(/"action":"create"/);

      // Alice, on relay A, adds bob, who is on relay B: the change reaches
      // him, and carol on a third relay, through the cluster.
      await alice.session.invite(keyOf(bobHome.line), "bob");
      await alice.shows("add bob");
      await bob.shows("add bob");
      await carol.waitFor(/"action":"add".*"name":"bob"/);
      await bob.session.send("hi from relay B");
      await alice.shows("message hi from relay B");

      // Bob, on relay B, adds carol: appended on another relay than the
      // room's first changes, and checked by alice against her log.
      await bob.session.invite(keyOf(carolHome.line), "carol");
      await alice.shows("add carol");
      await carol.waitFor(/"action":"add".*"name":"carol"/);
      await alice.session.send("to both");
      await bob.shows("message to both");
      await carol.waitFor("to both");
      assert.deepEqual(carol.messages(), ["to both"]); // Nothing from before she was added.
      await carol.say("carol here");
      await alice.shows("message carol here");
      await bob.shows("message carol here");
      for (const member of [alice, bob]) {
        const changes = member.seen.filter((line) => /^(create|add|remove) /.test(line));
        assert.deepEqual(changes, ["create alice", "add bob", "add carol"], member.seen.join(", "));
        assert.ok(!member.seen.some((line) => line.startsWith("dropped ")), member.seen.join(", "));
        member.close();
      }
      assert.doesNotMatch(carol.stderr(), /dropped|refused|does not verify/, carol.stderr());
      assert.equal(await carol.quit(), 0);

      // The room's kind is shared too: joined as the other kind on any relay, refused.
      const ordinary = await ovtp(["chat", third.target, "--room", "club"], {
        home: aliceHome.home,
      });
      assert.equal(ordinary.code, 1, ordinary.stderr);
      assertOneError(ordinary, /The room "club" is invite-only/);
      const ops = startChat(aliceHome.home, a.target);
      await joined(ops);
      assert.equal(await ops.quit(), 0);
      const asInviteOnly = await ovtp(["chat", b.target, "--room", "ops", "--invite-only"], {
        home: bobHome.home,
      });
      assert.equal(asInviteOnly.code, 1, asInviteOnly.stderr);
      assertOneError(asInviteOnly, /The room "ops" is not invite-only/);
    } finally {
      await c.stop();
    }
  },
});
