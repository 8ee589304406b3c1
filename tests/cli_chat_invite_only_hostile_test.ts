/**
 * `ovtp chat --invite-only` against a hostile relay built on the library: a
 * real ChatRelay whose messages to the client are rewritten on the way out.
 * It lists a member no one invited, sends changes it forged, and replays an
 * old log or a forked one. The client must seal only to the signed list,
 * say so once, and refuse a log that does not extend what it saw.
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
  parseEnvelope,
  type PublicKey,
  RoomStore,
  sealEnvelope,
  serve,
  SILENT_LOGGER,
} from "../mod.ts";
import { toBase64Url, toHex, utf8 } from "../lib/bytes.ts";
import { ChatMessageType, roomContext } from "../lib/services/chat/chat_messages.ts";
import type { ChatConnection } from "../lib/services/chat/relay.ts";
import { ChangeAction, changeHash, signChange } from "../lib/services/chat/room_log.ts";
import { decodeJson, encodeJson, type Message } from "../lib/channel/messages.ts";
import type { Peer } from "../lib/identity/peer.ts";
import { homeWithIdentity } from "./_cli.ts";
import { chatChild } from "./_chat_child.ts";

const ROOM = "club";

/** Rewrites one message the relay sends to a client into those it sends instead. */
type Tamper = (message: Message, peer: Peer) => Promise<Message[]>;

/** A real relay whose outgoing messages go through `tamper`, recording every Post. */
class HostileRelay extends ChatRelay {
  readonly posts: Uint8Array[] = [];
  tamper: Tamper = (message) => Promise.resolve([message]);

  override connect(peer: Peer, send: (message: Message) => Promise<void>): ChatConnection {
    const inner = super.connect(peer, async (message) => {
      for (const out of await this.tamper(message, peer)) await send(out);
    });
    const handle = (message: Message) => {
      if (message.type === ChatMessageType.Post) this.posts.push(message.body);
      return inner.handle(message);
    };
    return { handle, close: () => inner.close() } as unknown as ChatConnection;
  }
}

/** A change after `previous` (undefined for the first), signed by `signer`. */
function change(
  signer: Identity,
  version: number,
  previous: Uint8Array | undefined,
  action: number,
  subject: PublicKey,
  name: string,
): Promise<Uint8Array> {
  return signChange(signer, {
    room: ROOM,
    version,
    previous: previous ? changeHash(previous) : new Uint8Array(32),
    timestamp: Date.now(),
    action: action as 1 | 2 | 3,
    subject,
    name,
  });
}

/** Alice's home, and a relay whose room "club" has a log alice signed: alice, then bob. */
async function setup() {
  const alice = await homeWithIdentity("alice");
  const aliceIdentity = await new Keystore(alice.home).loadIdentity(() => Promise.resolve(""));
  const [bob, mallory, relayIdentity] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
  const dir = await tempDir();
  const store = new RoomStore(dir);
  const aliceKey = aliceIdentity.publicKey;
  await store.addMember(ROOM, {
    name: "alice",
    display: "alice",
    fingerprint: await fingerprint(aliceKey),
    key: formatPublicKey(aliceKey),
  }, { inviteOnly: true });
  const created = await change(aliceIdentity, 0, undefined, ChangeAction.Create, aliceKey, "alice");
  const addedBob = await change(aliceIdentity, 1, created, ChangeAction.Add, bob.publicKey, "bob");
  assert.ok(await store.appendChange(ROOM, created, 0));
  assert.ok(await store.appendChange(ROOM, addedBob, 1));
  const relay = new HostileRelay(store, SILENT_LOGGER);
  const server = serve({
    identity: relayIdentity,
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({}),
    chat: relay,
  });
  const target = `127.0.0.1:${server.addr.port}`;
  return {
    alice,
    aliceIdentity,
    bob,
    mallory,
    relay,
    target,
    created,
    addedBob,
    async close() {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The Joined body with its members and changes replaced as `edit` says. */
function editJoined(
  message: Message,
  edit: (body: { members: unknown[]; changes: string[] }) => void,
): Message {
  const body = decodeJson(message.body) as { members: unknown[]; changes: string[] };
  edit(body);
  return { ...message, body: encodeJson(body) };
}

async function listed(key: PublicKey, name: string) {
  return {
    name,
    display: name,
    fingerprint: await fingerprint(key),
    key: formatPublicKey(key),
    online: true,
  };
}

Deno.test("a member the relay adds, or adds with a forged change, is never sealed to; the user is warned once", async () => {
  const t = await setup();
  const malloryFp = await fingerprint(t.mallory.publicKey);
  const forgedAdd = await change(
    t.mallory,
    2,
    t.addedBob,
    ChangeAction.Add,
    t.mallory.publicKey,
    "mallory",
  );
  // Alice's key as signer, mallory's signature: the signature does not verify.
  const signedByAlice = await change(
    t.aliceIdentity,
    2,
    t.addedBob,
    ChangeAction.Add,
    t.mallory.publicKey,
    "mallory",
  );
  const forgedSignature = signedByAlice.slice();
  forgedSignature.set(forgedAdd.subarray(forgedAdd.length - 64), forgedSignature.length - 64);
  t.relay.tamper = async (message, peer) => {
    if (message.type !== ChatMessageType.Joined) return [message];
    const mallory = await listed(t.mallory.publicKey, "mallory");
    const fromMallory = await sealEnvelope(t.mallory, [peer.key], utf8("I am in"), {
      context: roomContext(ROOM),
    });
    const id = message.id;
    return [
      editJoined(message, (body) => body.members.push(mallory)),
      { type: ChatMessageType.Presence, id, body: encodeJson({ event: "join", member: mallory }) },
      { type: ChatMessageType.Change, id, body: forgedAdd },
      { type: ChatMessageType.Change, id, body: forgedSignature },
      { type: ChatMessageType.Deliver, id, body: fromMallory },
    ];
  };
  const chat = chatChild(t.alice.home, t.target, ["--room", ROOM, "--invite-only"]);
  try {
    await chat.err.shows(/dropped a message claiming to come from/);
    await chat.say("for members only");
    await chat.err.shows(/joined room club/);
    const deadline = Date.now() + 10_000;
    while (t.relay.posts.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    assert.equal(await chat.stop(), 0, chat.err.text());
    await t.close();
  }
  const stderr = chat.err.text();
  // Every change shown, with the fingerprints alice computed.
  const aliceFp = await fingerprint(t.aliceIdentity.publicKey);
  const bobFp = await fingerprint(t.bob.publicKey);
  assert.ok(stderr.includes(`ovtp: alice (${aliceFp}) created invite-only room club\n`), stderr);
  assert.ok(stderr.includes(`ovtp: alice (${aliceFp}) added bob (${bobFp})\n`), stderr);
  // Listed twice (the member list and a presence), warned about once.
  const warning =
    `warning: The server lists "mallory" (${malloryFp}) in invite-only room "club", ` +
    "but its signed member list does not: nothing is sealed to it";
  assert.equal(stderr.split(warning).length - 1, 1, stderr);
  assert.match(
    stderr,
    /warning: The server sent a membership change that does not verify: Change 2 is signed by a non-member; refused\n/,
  );
  assert.match(
    stderr,
    /warning: The server sent a membership change that does not verify: The signature of change 2 is not valid; refused\n/,
  );
  assert.ok(
    stderr.includes(
      `dropped a message claiming to come from ${malloryFp}: The sender is not a member of this invite-only room`,
    ),
    stderr,
  );
  assert.doesNotMatch(chat.out.text(), /I am in/);
  // Sealed for bob alone: the one key the signed list adds.
  assert.equal(t.relay.posts.length, 1);
  const recipients = parseEnvelope(t.relay.posts[0]).recipients.map(toHex);
  assert.deepEqual(recipients, [toHex(t.bob.publicKey.x25519)]);
});

Deno.test("a relay that replays an old log, or a forked one, is refused; nothing is sent", async () => {
  const t = await setup();
  try {
    // The first join sees versions 0 and 1, and keeps 1.
    const first = chatChild(t.alice.home, t.target, ["--room", ROOM, "--invite-only"]);
    await first.err.shows(/joined room club/);
    assert.equal(await first.stop(), 0);
    const heads = await Deno.readTextFile(`${t.alice.home}/room_heads`);
    assert.ok(heads.endsWith(` club 1 ${toHex(changeHash(t.addedBob))}\n`), heads);

    // Rolled back to the creation alone: the removal-free past, say.
    t.relay.tamper = (message) =>
      Promise.resolve(
        message.type === ChatMessageType.Joined
          ? [editJoined(message, (body) => body.changes.splice(1))]
          : [message],
      );
    const rolledBack = chatChild(t.alice.home, t.target, ["--room", ROOM]);
    await rolledBack.say("must not be sent");
    assert.equal(await rolledBack.stop(), 4, rolledBack.err.text());
    assert.match(
      rolledBack.err.text(),
      /^ovtp: error: The server's log of room "club" ends at version 0, but this client saw version 1: the server rolled it back\n/m,
    );

    // Forked: another change 1, validly signed by alice (who may sign two branches).
    const fork = await change(
      t.aliceIdentity,
      1,
      t.created,
      ChangeAction.Add,
      t.mallory.publicKey,
      "mallory",
    );
    t.relay.tamper = (message) =>
      Promise.resolve(
        message.type === ChatMessageType.Joined
          ? [editJoined(message, (body) => body.changes.splice(1, 1, toBase64Url(fork)))]
          : [message],
      );
    const forked = chatChild(t.alice.home, t.target, ["--room", ROOM]);
    await forked.say("must not be sent");
    assert.equal(await forked.stop(), 4, forked.err.text());
    assert.match(
      forked.err.text(),
      /^ovtp: error: The server's log of room "club" has another change 1 than the one this client saw: the server forked it\n/m,
    );
    assert.deepEqual(t.relay.posts, []);
    assert.equal(await Deno.readTextFile(`${t.alice.home}/room_heads`), heads);
  } finally {
    await t.close();
  }
});

Deno.test("a log with a forged signature, or a change dropped from its middle, fails the first join", async () => {
  const t = await setup();
  const valid = await change(
    t.aliceIdentity,
    2,
    t.addedBob,
    ChangeAction.Add,
    t.mallory.publicKey,
    "m",
  );
  const forged = valid.slice();
  forged[forged.length - 1] ^= 1;
  const cases: [string, (changes: string[]) => void, RegExp][] = [
    [
      "forged",
      (c) => c.push(toBase64Url(forged)),
      /is not valid: The signature of change 2 is not valid/,
    ],
    [
      "dropped",
      (c) => {
        c.splice(1, 1);
        c.push(toBase64Url(valid));
      },
      /is not valid: The change is version 2, but does not follow the log, whose next is version 1/,
    ],
  ];
  try {
    for (const [what, edit, error] of cases) {
      t.relay.tamper = (message) =>
        Promise.resolve(
          message.type === ChatMessageType.Joined
            ? [editJoined(message, (body) => edit(body.changes))]
            : [message],
        );
      const chat = chatChild(t.alice.home, t.target, ["--room", ROOM, "--invite-only"]);
      await chat.say("must not be sent");
      assert.equal(await chat.stop(), 4, `${what}: ${chat.err.text()}`);
      assert.match(chat.err.text(), error, what);
      assert.match(chat.err.text(), /^ovtp: hint: the relay may be hostile/m, what);
    }
    assert.deepEqual(t.relay.posts, []);
    // Nothing was kept: a first join stays a first join.
    await assert.rejects(Deno.stat(`${t.alice.home}/room_heads`), Deno.errors.NotFound);
  } finally {
    await t.close();
  }
});
