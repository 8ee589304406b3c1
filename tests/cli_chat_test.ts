import assert from "node:assert/strict";
import {
  ChatSession,
  fingerprint,
  generateIdentity,
  Keystore,
  OvtpClient,
  parsePublicKey,
  sealEnvelope,
} from "../mod.ts";
import { ChatMessageType, roomContext } from "../lib/services/chat/chat_messages.ts";
import { utf8 } from "../lib/bytes.ts";
import {
  assertOneError,
  assertStoppedCleanly,
  CLI_ENV,
  homeWithIdentity,
  MAIN,
  ovtp,
  startListen,
} from "./_cli.ts";

/** A running `ovtp chat` driven through its stdin, with its output collected. */
interface ChatClient {
  say(line: string): Promise<void>;
  waitFor(text: string | RegExp, stream?: "stdout" | "stderr"): Promise<void>;
  stdout(): string;
  stderr(): string;
  /** Closes stdin (the client leaves) and returns the exit code. */
  quit(): Promise<number>;
}

function startChat(home: string, target: string, args: string[]): ChatClient {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, "chat", target, ...args],
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
    async say(line) {
      await writer.write(new TextEncoder().encode(line + "\n"));
    },
    async waitFor(text, stream = "stdout") {
      const deadline = Date.now() + 15_000;
      const found = () =>
        typeof text === "string" ? out[stream].includes(text) : text.test(out[stream]);
      while (!found()) {
        if (Date.now() > deadline) {
          throw new Error(
            `Timed out waiting for ${text} in chat ${stream}:\n${out[stream]}\n${out.stderr}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    async quit() {
      await writer.close().catch(() => {});
      const status = await child.status;
      await pumps;
      return status.code;
    },
  };
}

/** A server with `names` authorized, and their homes. */
async function room(names: string[]) {
  const server = await homeWithIdentity("server");
  const people: Record<string, { home: string; line: string }> = {};
  for (const name of names) {
    people[name] = await homeWithIdentity(name);
    const added = await ovtp(["add-key", people[name].line], { home: server.home });
    assert.equal(added.code, 0, added.stderr);
  }
  return { server, people };
}

async function joined(client: ChatClient, room = "ops") {
  await client.waitFor(new RegExp(`joined room ${room} as `), "stderr");
}

Deno.test("three members see each other's messages in order; a stranger is refused", async () => {
  const { server, people } = await room(["alice", "bob", "carol"]);
  const listener = await startListen(server.home);
  const clients: Record<string, ChatClient> = {};
  try {
    for (const name of ["alice", "bob", "carol"]) {
      clients[name] = startChat(people[name].home, listener.target, ["--room", "ops"]);
      await joined(clients[name]);
    }
    await clients.alice.waitFor(/carol joined/, "stderr");
    for (let i = 1; i <= 3; i++) await clients.alice.say(`alice says ${i}`);
    await clients.bob.say("bob here");
    for (const name of ["bob", "carol"]) {
      await clients[name].waitFor("alice: alice says 3");
      const lines = clients[name].stdout().split("\n").filter((l) => l.includes("alice says"));
      assert.deepEqual(lines.map((l) => l.replace(/^\[\d\d:\d\d:\d\d\] /, "")), [
        "alice: alice says 1",
        "alice: alice says 2",
        "alice: alice says 3",
      ]);
    }
    await clients.alice.waitFor("bob: bob here");
    await clients.carol.waitFor("bob: bob here");
    // Nobody sees their own message come back.
    assert.doesNotMatch(clients.alice.stdout(), /alice says/);

    const stranger = await homeWithIdentity("mallory");
    const refused = await ovtp(["chat", listener.target, "--room", "ops"], {
      home: stranger.home,
      stdin: "let me in\n",
    });
    assert.equal(refused.code, 4);
    assertOneError(refused, /Not authorized/);
  } finally {
    for (const client of Object.values(clients)) assert.equal(await client.quit(), 0);
    await listener.stop();
  }
  // The relay printed and stored no word of any message.
  const seen = listener.stdout() + listener.stderr() + await readTree(`${server.home}/rooms`);
  for (const word of ["alice says", "bob here", "let me in"]) {
    assert.ok(!seen.includes(word), `the server saw "${word}"`);
  }
  assert.match(listener.stderr(), /chat: \d+ bytes in room ops/);
});

Deno.test("a member who left gets what was sent meanwhile, also across a server restart", async () => {
  const { server, people } = await room(["alice", "bob"]);
  let listener = await startListen(server.home);
  const bob = startChat(people.bob.home, listener.target, ["--room", "ops", "--json"]);
  await joined(bob);
  assert.equal(await bob.quit(), 0);

  const alice = startChat(people.alice.home, listener.target, ["--room", "ops"]);
  await joined(alice);
  await alice.say("while you were away");
  await alice.say("second note");
  assert.equal(await alice.quit(), 0);
  await listener.waitFor(
    /chat: \d+ bytes in room ops .*kept=1[\s\S]*chat: \d+ bytes in room ops .*kept=1/,
  );

  assertStoppedCleanly(await listener.stop());
  listener = await startListen(server.home);
  try {
    // The server's new port is a new host to bob's known_hosts.
    const back = startChat(people.bob.home, listener.target, ["--room", "ops", "--json"]);
    await back.waitFor("second note");
    const messages = back.stdout().trim().split("\n").map((l) => JSON.parse(l))
      .filter((e) => e.event === "message");
    assert.deepEqual(messages.map((m) => m.message), ["while you were away", "second note"]);
    assert.equal(messages[0].from, "alice");
    assert.match(messages[0].fingerprint, /^SHA256:/);
    assert.equal(await back.quit(), 0);
  } finally {
    await listener.stop();
  }
  const stored = await readTree(`${server.home}/rooms`);
  assert.ok(!stored.includes("while you were away"));
});

Deno.test("a display name that comes back with another key is flagged", async () => {
  const { server, people } = await room(["alice", "bob", "impostor"]);
  const listener = await startListen(server.home);
  try {
    const alice = startChat(people.alice.home, listener.target, ["--room", "ops"]);
    await joined(alice);
    const bob = startChat(people.bob.home, listener.target, ["--room", "ops", "--name", "bob"]);
    await alice.waitFor(/bob joined/, "stderr");
    assert.equal(await bob.quit(), 0);
    await alice.waitFor(/bob left/, "stderr");
    const fake = startChat(people.impostor.home, listener.target, [
      "--room",
      "ops",
      "--name",
      "bob",
    ]);
    await alice.waitFor(
      /WARNING: "bob" now has the key SHA256:\S+, not SHA256:\S+ as before/,
      "stderr",
    );
    await fake.say("trust me");
    await alice.waitFor("bob [key changed!]: trust me");
    assert.equal(await fake.quit(), 0);
    assert.equal(await alice.quit(), 0);
  } finally {
    await listener.stop();
  }
});

async function keyFingerprint(line: string): Promise<string> {
  return await fingerprint(parsePublicKey(line).key);
}

Deno.test("the first join pins names silently; a name two keys use is reported as such", async () => {
  const { server, people } = await room(["alice", "bob", "bob2", "impostor"]);
  const listener = await startListen(server.home);
  const others: ChatClient[] = [];
  try {
    // Already in the room when alice first joins: two keys named bob, and
    // one taking alice's own name.
    for (const [who, name] of [["bob", "bob"], ["bob2", "bob"], ["impostor", "alice"]]) {
      const client = startChat(people[who].home, listener.target, [
        "--room",
        "ops",
        "--name",
        name,
      ]);
      await joined(client);
      others.push(client);
    }
    const alice = startChat(people.alice.home, listener.target, ["--room", "ops"]);
    await joined(alice);
    await alice.say("hi");
    for (const client of others) await client.waitFor(/: hi$/m);
    // Bob had pinned his own name: bob2 taking it is news to him, not a "before".
    await others[0].waitFor(
      `WARNING: another key, ${await keyFingerprint(
        people.bob2.line,
      )}, uses your name "bob": its messages are flagged [name taken!]`,
      "stderr",
    );
    // Leaving waits for the name checks: stderr is then complete.
    assert.equal(await alice.quit(), 0);
    const stderr = alice.stderr();
    assert.doesNotMatch(stderr, /as before/);
    const bobFp = await keyFingerprint(people.bob.line);
    const bob2Fp = await keyFingerprint(people.bob2.line);
    const [first, second] = stderr.includes(`${bobFp} (line `) ? [bobFp, bob2Fp] : [bob2Fp, bobFp];
    assert.ok(
      stderr.includes(
        `WARNING: two keys in this room use the name "bob": ${first} (line `,
      ) && stderr.includes(`and ${second}, whose messages are flagged [name taken!]`),
      stderr,
    );
    // Alice's own key is pinned first: the member taking her name is the one flagged.
    const aliceFp = await keyFingerprint(people.alice.line);
    const impostorFp = await keyFingerprint(people.impostor.line);
    assert.ok(
      stderr.includes(
        `WARNING: another key, ${impostorFp}, uses your name "alice": its messages are flagged`,
      ),
      stderr,
    );
    assert.equal(stderr.match(/WARNING/g)?.length, 2, stderr);
    const names = await Deno.readTextFile(`${people.alice.home}/chat_names`);
    assert.deepEqual(
      names.trim().split("\n").sort(),
      [
        `alice ${aliceFp}`,
        `bob ${first}`,
      ].sort(),
    );
  } finally {
    for (const client of others) await client.quit();
    await listener.stop();
  }
});

Deno.test("no warning about one's own key, even when one's name was pinned to an older key", async () => {
  const { server, people } = await room(["alice", "bob"]);
  const old = await generateIdentity();
  await Deno.writeTextFile(
    `${people.alice.home}/chat_names`,
    `alice ${await fingerprint(old.publicKey)}\n`,
  );
  const listener = await startListen(server.home);
  try {
    const bob = startChat(people.bob.home, listener.target, ["--room", "ops"]);
    await joined(bob);
    const alice = startChat(people.alice.home, listener.target, ["--room", "ops"]);
    await joined(alice);
    await alice.say("new key, same me");
    await bob.waitFor("alice: new key, same me");
    assert.equal(await alice.quit(), 0);
    assert.doesNotMatch(alice.stderr(), /WARNING|warning/);
    assert.equal(await bob.quit(), 0);
  } finally {
    await listener.stop();
  }
});

async function readTree(dir: string): Promise<string> {
  let text = "";
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      text += entry.isDirectory
        ? await readTree(path)
        : new TextDecoder("latin1").decode(await Deno.readFile(path));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return text;
}

Deno.test("a message that fails verification is dropped with a warning naming its claimed sender", async () => {
  const { server, people } = await room(["alice", "bob"]);
  const listener = await startListen(server.home);
  const bob = startChat(people.bob.home, listener.target, ["--room", "ops"]);
  try {
    await joined(bob);
    // Alice's client is replaced by one that posts a damaged envelope: the
    // relay cannot tell (it checks only the routing data) and forwards it.
    const identity = await new Keystore(people.alice.home).loadIdentity(() => Promise.resolve(""));
    const client = await OvtpClient.connect({
      hostname: "127.0.0.1",
      port: listener.port,
      identity,
    });
    const session = await ChatSession.join(client, identity, { room: "ops", display: "alice" }, {
      onMessage() {},
      onPresence() {},
      onDropped() {},
    });
    const bobKey = session.members.find((m) => m.display === "bob")!.key;
    const envelope = await sealEnvelope(identity, [parsePublicKey(bobKey).key], utf8("forged"), {
      context: roomContext("ops"),
    });
    envelope[envelope.length - 70] ^= 0x01; // inside the body: the signature no longer matches
    await client.link.send({ type: ChatMessageType.Post, id: 1, body: envelope });
    const aliceFp = await fingerprint(identity.publicKey);
    await bob.waitFor(
      `warning: dropped a message claiming to come from ${aliceFp}: The envelope's signature is not valid`,
      "stderr",
    );
    await session.send("genuine");
    await bob.waitFor("alice: genuine");
    assert.doesNotMatch(bob.stdout(), /forged/);
    client.close();
  } finally {
    assert.equal(await bob.quit(), 0);
    await listener.stop();
  }
});

Deno.test("a post naming a member twice or a non-member is refused by name; each member gets a post once", async () => {
  const { server, people } = await room(["alice", "bob", "carol"]);
  const listener = await startListen(server.home);
  const bob = startChat(people.bob.home, listener.target, ["--room", "ops"]);
  let carol = startChat(people.carol.home, listener.target, ["--room", "ops", "--json"]);
  const identity = await new Keystore(people.alice.home).loadIdentity(() => Promise.resolve(""));
  const client = await OvtpClient.connect({ hostname: "127.0.0.1", port: listener.port, identity });
  try {
    await joined(bob);
    await joined(carol);
    assert.equal(await carol.quit(), 0); // offline: what is for carol is kept
    const warnings: string[] = [];
    const session = await ChatSession.join(client, identity, { room: "ops", display: "alice" }, {
      onMessage() {},
      onPresence() {},
      onDropped() {},
      onWarning: (message) => warnings.push(message),
    });
    const keyOf = (name: string) => {
      const member = session.members.find((m) => m.name === name)!;
      return { fp: member.fingerprint, key: parsePublicKey(member.key).key };
    };
    const [b, c] = [keyOf("bob"), keyOf("carol")];
    const stranger = (await generateIdentity()).publicKey;
    const attempts: [typeof stranger[], string][] = [
      [Array(1024).fill(b.key), `The envelope names the member ${b.fp} more than once`],
      [Array(1024).fill(c.key), `The envelope names the member ${c.fp} more than once`],
      [[b.key, c.key, b.key], `The envelope names the member ${b.fp} more than once`],
      [[b.key, stranger], `The envelope names a key that is not a member of room "ops"`],
    ];
    for (const [recipients, reason] of attempts) {
      const envelope = await sealEnvelope(identity, recipients, utf8("dup"), {
        context: roomContext("ops"),
      });
      const before = warnings.length;
      await client.link.send({ type: ChatMessageType.Post, id: 1, body: envelope });
      const deadline = Date.now() + 15_000;
      while (warnings.length === before) {
        assert.ok(Date.now() < deadline, `no refusal for a post to ${recipients.length} stanzas`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(
        warnings[before].startsWith(`The server refused a message: ${reason}`),
        warnings[before],
      );
    }
    assert.equal(await session.send("genuine"), 2);
    await bob.waitFor("alice: genuine");
    await listener.waitFor(/chat: \d+ bytes in room ops .*delivered=1 kept=1/);
    // Nothing of the refused posts was kept, and the server still serves carol.
    carol = startChat(people.carol.home, listener.target, ["--room", "ops", "--json"]);
    await carol.waitFor("genuine");
    const messages = carol.stdout().trim().split("\n").map((l) => JSON.parse(l))
      .filter((e) => e.event === "message");
    assert.deepEqual(messages.map((m) => m.message), ["genuine"]);
    assert.equal(bob.stdout().split("\n").filter((l) => l.includes("alice:")).length, 1);
    assert.doesNotMatch(bob.stdout(), /dup/);
    assert.doesNotMatch(listener.stderr(), /does not read/);
  } finally {
    client.close();
    assert.equal(await bob.quit(), 0);
    assert.equal(await carol.quit(), 0);
    await listener.stop();
  }
});

Deno.test("a contact's name is pinned to the contact's key: another key using it is flagged at once", async () => {
  const { server, people } = await room(["alice", "bob", "impostor"]);
  const contact = await ovtp(["contacts", "add", "bob", people.bob.line], {
    home: people.alice.home,
  });
  assert.equal(contact.code, 0, contact.stderr);
  const listener = await startListen(server.home);
  try {
    const alice = startChat(people.alice.home, listener.target, ["--room", "ops"]);
    await joined(alice);
    // The first "bob" alice sees is not her contact: no first-come pinning for it.
    const fake = startChat(people.impostor.home, listener.target, [
      "--room",
      "ops",
      "--name",
      "bob",
    ]);
    const fakeFp = await keyFingerprint(people.impostor.line);
    const bobFp = await keyFingerprint(people.bob.line);
    await alice.waitFor(
      `WARNING: "bob" is your contact with the key ${bobFp}, not ${fakeFp}`,
      "stderr",
    );
    await fake.say("trust me");
    await alice.waitFor("bob [not your contact!]: trust me");
    assert.equal(await fake.quit(), 0);
    const bob = startChat(people.bob.home, listener.target, ["--room", "ops", "--name", "bob"]);
    await bob.waitFor(/joined room ops/, "stderr");
    await bob.say("the real one");
    await alice.waitFor(/\] bob: the real one$/m);
    assert.equal(await bob.quit(), 0);
    assert.equal(await alice.quit(), 0);
    assert.doesNotMatch(alice.stderr(), new RegExp(`WARNING: .*${escapeRe(bobFp)}.*as before`));
  } finally {
    await listener.stop();
  }
});

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

Deno.test("a quiet chat outlives the server's idle timeout: it pings, and messages still flow", async () => {
  // Before: a member quiet for --idle-timeout (300 s by default) was cut
  // off; without a terminal, chat then ended with exit 3.
  const { server, people } = await room(["alice", "bob"]);
  const listener = await startListen(server.home, ["--idle-timeout", "2"]);
  const clients: ChatClient[] = [];
  try {
    const alice = startChat(people.alice.home, listener.target, ["--room", "ops"]);
    clients.push(alice);
    await joined(alice);
    const bob = startChat(people.bob.home, listener.target, ["--room", "ops"]);
    clients.push(bob);
    await joined(bob);
    await alice.waitFor(/bob joined/, "stderr");
    await new Promise((resolve) => setTimeout(resolve, 5000)); // Both quiet for 2.5 timeouts.
    await alice.say("still here");
    await bob.waitFor("alice: still here");
    assert.doesNotMatch(alice.stderr() + bob.stderr(), /closed|lost|error/i);
    assert.doesNotMatch(listener.stderr(), /Idle for/);
  } finally {
    for (const client of clients) assert.equal(await client.quit(), 0);
    await listener.stop();
  }
});
