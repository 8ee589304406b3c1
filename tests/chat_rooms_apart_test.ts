/**
 * Rooms never wait for each other on a relay: a member that stops reading
 * holds up the changes of its own invite-only room (each session gets each
 * change once, in order, after its Joined), never another room's joins,
 * changes or posts.
 *
 * Invariant: the relay runs an invite-only room's changes and Joined logs
 * one at a time per room; its work for one room never waits on another
 * room's members.
 *
 * Built on the relay's connection seam (what the server calls), so that a
 * member's writes can be held for as long as the test likes: over a real
 * socket that takes megabytes of unread data.
 */

import assert from "node:assert/strict";
import {
  ChatRelay,
  fingerprint,
  generateIdentity,
  type Identity,
  RoomStore,
  sealEnvelope,
  SILENT_LOGGER,
} from "../mod.ts";
import { ChatMessageType, roomContext } from "../lib/services/chat/chat_messages.ts";
import { ChangeAction, signChange } from "../lib/services/chat/room_log.ts";
import { encodeJson, type Message } from "../lib/channel/messages.ts";
import { tempDir } from "./_tmp.ts";
import { within } from "./_within.ts";

/** A member's side of the relay: what it was sent, and whether its writes are held. */
async function member(relay: ChatRelay, identity: Identity, name: string) {
  const sent: Message[] = [];
  let held: PromiseWithResolvers<void> | undefined;
  const connection = relay.connect(
    { name, fingerprint: await fingerprint(identity.publicKey), key: identity.publicKey },
    async (message) => {
      sent.push(message);
      await held?.promise;
    },
  );
  return {
    sent,
    types: () => sent.map((m) => m.type),
    /** From now on, every write waits until release(). */
    hold: () => held = Promise.withResolvers(),
    release: () => held?.resolve(),
    handle: (message: Message) => connection.handle(message),
  };
}

function join(room: string, display: string, inviteOnly: boolean): Message {
  const body = { room, display, ...(inviteOnly ? { invite_only: true } : {}) };
  return { type: ChatMessageType.Join, id: 1, body: encodeJson(body) };
}

async function creation(identity: Identity, room: string, name: string): Promise<Message> {
  const body = await signChange(identity, {
    room,
    version: 0,
    previous: new Uint8Array(32),
    timestamp: Date.now(),
    action: ChangeAction.Create,
    subject: identity.publicKey,
    name,
  });
  return { type: ChatMessageType.Change, id: 1, body };
}

Deno.test("a member that stops reading holds up its own room's changes, never another room", async () => {
  const dir = await tempDir();
  const relay = new ChatRelay(new RoomStore(dir), SILENT_LOGGER);
  const [alice, bob, carol, dave] = await Promise.all([1, 2, 3, 4].map(() => generateIdentity()));
  const a = await member(relay, alice, "alice");
  const b = await member(relay, bob, "bob");
  const c = await member(relay, carol, "carol");
  const d = await member(relay, dave, "dave");

  // Alice creates invite-only room x, then stops reading: the change's echo to her waits.
  await a.handle(join("x", "alice", true));
  assert.deepEqual(a.types(), [ChatMessageType.Joined]);
  a.hold();
  const stuck = a.handle(await creation(alice, "x", "alice"));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(a.types(), [ChatMessageType.Joined, ChatMessageType.Change]);

  // Meanwhile: an invite-only room's join and change, an ordinary room's join and post.
  await within(
    b.handle(join("y", "bob", true)),
    "an invite-only join waited for another room",
    5_000,
  );
  await within(
    b.handle(await creation(bob, "y", "bob")),
    "a change waited for another room",
    5_000,
  );
  assert.deepEqual(b.types(), [ChatMessageType.Joined, ChatMessageType.Change]);
  await within(c.handle(join("z", "carol", false)), "a join waited for another room", 5_000);
  await within(d.handle(join("z", "dave", false)), "a join waited for another room", 5_000);
  const envelope = await sealEnvelope(carol, [dave.publicKey], new TextEncoder().encode("hi"), {
    context: roomContext("z"),
  });
  await within(
    c.handle({ type: ChatMessageType.Post, id: 1, body: envelope }),
    "a post waited for another room",
    5_000,
  );
  assert.ok(d.types().includes(ChatMessageType.Deliver), `dave got ${d.types()}`);

  // Room x itself waits for alice: a second join there gets its log after her change.
  const late = await member(relay, bob, "bob");
  let joined = false;
  const joining = late.handle(join("x", "bob", true)).then(() => joined = true);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(joined, false, "a join of room x ran beside the change it was waiting for");
  a.release();
  await stuck;
  await joining;
  // The late session's log has the change (in Joined), and nothing is sent twice.
  assert.deepEqual(late.types(), [ChatMessageType.Joined]);
  const { changes } = JSON.parse(new TextDecoder().decode(late.sent[0].body));
  assert.equal(changes.length, 1);
});
