/**
 * `ovtp chat` against a hostile relay: a server built on the library whose
 * chat relay lies about members, sends the member list twice and replays
 * envelopes. The client must compute every fingerprint from the key it seals
 * to, warn, and never seal for a lying key under another member's identity.
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  ChatRelay,
  fingerprint,
  formatPublicKey,
  generateIdentity,
  type Identity,
  Keystore,
  type Member,
  parseEnvelope,
  RoomStore,
  sealEnvelope,
  serve,
  SILENT_LOGGER,
} from "../mod.ts";
import { ChatMessageType, roomContext } from "../lib/services/chat/chat_messages.ts";
import type { ChatConnection } from "../lib/services/chat/relay.ts";
import { utf8 } from "../lib/bytes.ts";
import { encodeJson, type Message } from "../lib/channel/messages.ts";
import type { Peer } from "../lib/identity/peer.ts";
import { CLI_ENV, homeWithIdentity, MAIN } from "./_cli.ts";

/** What the hostile relay does once a client joined: `send` speaks for it. */
type Script = (
  peer: Peer,
  send: (type: number, body: Uint8Array) => Promise<void>,
) => Promise<void>;

/** A relay that answers each Join with `script` and records every Post. */
class HostileRelay extends ChatRelay {
  readonly posts: Uint8Array[] = [];
  readonly #script: Script;

  constructor(dir: string, script: Script) {
    super(new RoomStore(dir), SILENT_LOGGER);
    this.#script = script;
  }

  override connect(peer: Peer, send: (message: Message) => Promise<void>): ChatConnection {
    const handle = async (message: Message) => {
      if (message.type === ChatMessageType.Join) {
        await this.#script(peer, (type, body) => send({ type, id: message.id, body }));
      } else if (message.type === ChatMessageType.Post) {
        this.posts.push(message.body);
      }
    };
    return { handle, close: () => Promise.resolve() } as unknown as ChatConnection;
  }
}

async function memberOf(name: string, key: Identity["publicKey"], fp?: string): Promise<Member> {
  return {
    name,
    display: name,
    fingerprint: fp ?? await fingerprint(key),
    key: formatPublicKey(key),
    online: true,
  };
}

/** Runs `ovtp chat` for alice against `relay`, saying `lines` once joined. */
async function chatAgainst(relay: HostileRelay, relayIdentity: Identity, options: {
  home: string;
  lines: string[];
  until: RegExp;
}): Promise<{ stdout: string; stderr: string; code: number }> {
  const server = serve({
    identity: relayIdentity,
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({}),
    chat: relay,
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, "chat", `127.0.0.1:${server.addr.port}`, "--room", "ops"],
    env: { ...CLI_ENV, OVTP_HOME: options.home, HOME: `${options.home}.user` },
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
  const wait = async (pattern: RegExp) => {
    const deadline = Date.now() + 15_000;
    while (!pattern.test(out.stdout + out.stderr)) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${pattern}:\n${out.stdout}\n${out.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const writer = child.stdin.getWriter();
  try {
    await wait(/joined room ops as /);
    for (const line of options.lines) await writer.write(utf8(line + "\n"));
    await wait(options.until);
  } finally {
    await writer.close().catch(() => {});
    const status = await child.status;
    await pumps;
    await server.close();
    Object.assign(out, { code: status.code });
  }
  return out as { stdout: string; stderr: string; code: number };
}

async function setup() {
  const alice = await homeWithIdentity("alice");
  const bob = await generateIdentity();
  const relayIdentity = await generateIdentity();
  const bobFp = await fingerprint(bob.publicKey);
  const relayFp = await fingerprint(relayIdentity.publicKey);
  const aliceIdentity = await new Keystore(alice.home).loadIdentity(() => Promise.resolve(""));
  // Alice has chatted with the real bob before.
  assert.equal(await new Keystore(alice.home).pinChatName("bob", bobFp), undefined);
  return { alice, aliceIdentity, bob, bobFp, relayIdentity, relayFp };
}

Deno.test("a relay that lists its own key under bob's name and fingerprint is left out, with a warning", async () => {
  const { alice, bobFp, relayIdentity, relayFp } = await setup();
  const dir = await tempDir();
  const relay = new HostileRelay(dir, async (peer, send) => {
    const liar = await memberOf("bob", relayIdentity.publicKey, bobFp);
    const self = await memberOf("alice", peer.key);
    await send(ChatMessageType.Joined, encodeJson({ room: "ops", members: [self, liar] }));
    // The neighbours: the same lie in a Presence, and a key that does not parse.
    await send(ChatMessageType.Presence, encodeJson({ event: "join", member: liar }));
    await send(
      ChatMessageType.Presence,
      encodeJson({ event: "join", member: { ...liar, key: "ovtp1 AAAA" } }),
    );
    // A message the relay signed itself: shown under its own fingerprint, not as bob.
    const envelope = await sealEnvelope(relayIdentity, [peer.key], utf8("I am bob"), {
      context: roomContext("ops"),
    });
    await send(ChatMessageType.Deliver, envelope);
  });
  try {
    const out = await chatAgainst(relay, relayIdentity, {
      home: alice.home,
      lines: ["secret for bob"],
      until: /^(?=[\s\S]*nobody else is in this room yet)(?=[\s\S]*I am bob)/,
    });
    assert.equal(out.code, 0, out.stderr);
    const lie = `warning: The server listed member "bob" as ${bobFp}, but its key is ${relayFp}; ` +
      "left out: the server may be impersonating this member";
    assert.equal(out.stderr.split(lie).length - 1, 2, out.stderr); // the Joined and the Presence
    assert.match(
      out.stderr,
      /warning: The server listed member "bob" with a key that does not parse/,
    );
    assert.ok(out.stdout.includes(`] ${relayFp}: I am bob\n`), out.stdout);
    // bob's fingerprint is never shown as present, and nothing was sealed for anyone.
    assert.ok(!(out.stdout + out.stderr).includes(`joined (${bobFp}`));
    assert.doesNotMatch(out.stdout, /bob: I am bob/);
    assert.deepEqual(relay.posts, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a relay key under bob's name is shown with its own fingerprint and flagged; a second member list and replays are refused", async () => {
  const { alice, aliceIdentity, bob, bobFp, relayIdentity, relayFp } = await setup();
  const dir = await tempDir();
  const relay = new HostileRelay(dir, async (peer, send) => {
    const self = await memberOf("alice", peer.key);
    const impostor = await memberOf("bob", relayIdentity.publicKey); // honest fingerprint, bob's name
    await send(ChatMessageType.Joined, encodeJson({ room: "ops", members: [self, impostor] }));
    const envelope = await sealEnvelope(relayIdentity, [peer.key], utf8("trust me"), {
      context: roomContext("ops"),
    });
    await send(ChatMessageType.Deliver, envelope);
    await send(ChatMessageType.Deliver, envelope); // replayed
    // A second member list would silently swap who alice seals to: ignored.
    const real = await memberOf("bob", bob.publicKey);
    await send(ChatMessageType.Joined, encodeJson({ room: "ops", members: [self, real] }));
    // A "leave" for a key that was never a member must not make it one.
    await send(ChatMessageType.Presence, encodeJson({ event: "leave", member: real }));
  });
  try {
    const out = await chatAgainst(relay, relayIdentity, {
      home: alice.home,
      lines: ["for whoever bob is"],
      until: /^(?=[\s\S]*was not a member; ignored)(?=[\s\S]*trust me)(?=[\s\S]*now has the key)/,
    });
    assert.equal(out.code, 0, out.stderr);
    assert.ok(
      out.stderr.includes(`WARNING: "bob" now has the key ${relayFp}, not ${bobFp} as before`),
      out.stderr,
    );
    // Flagged: the check of the name runs before the message is shown.
    assert.match(out.stdout, /\] bob \[key changed!\]: trust me\n/);
    assert.equal(out.stdout.split("trust me").length - 1, 1);
    assert.ok(
      out.stderr.includes(`warning: dropped a message claiming to come from ${relayFp}: Message `),
      out.stderr,
    );
    assert.match(out.stderr, /: Message [0-9a-f]{32} was already received\n/);
    assert.match(out.stderr, /warning: The server sent the member list again; ignored/);
    assert.ok(
      out.stderr.includes(`warning: The server said ${bobFp} left, but it was not a member`),
    );
    // What alice sealed went to the key she was warned about, never to another under its name.
    await waitUntil(() => relay.posts.length === 1);
    const header = parseEnvelope(relay.posts[0]);
    assert.equal(header.recipients.length, 1);
    assert.deepEqual(header.recipients[0], relayIdentity.publicKey.x25519);
    assert.deepEqual(header.sender.x25519, aliceIdentity.publicKey.x25519);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function waitUntil(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("Timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
