/**
 * A member whose key the server no longer allows in a room (removed from
 * authorized_keys, or its `allow` narrowed) gets nothing kept for it, and
 * leaves the room's member list at the next join, while a member still
 * allowed keeps getting what is posted while it is away.
 *
 * Invariant: the relay keeps a post for an offline member only if the
 * server's authorizer allows that member's key in the room (checked at most
 * a second before); a key allowed again never receives what was posted
 * while it was not.
 */

import assert from "node:assert/strict";
import {
  authorizedKeysAuthorizer,
  type ChatEvents,
  type ChatMessage,
  ChatRelay,
  ChatSession,
  generateIdentity,
  type Identity,
  Keystore,
  OvtpClient,
  RoomStore,
  serve,
  SILENT_LOGGER,
} from "../mod.ts";
import { tempDir } from "./_tmp.ts";

interface Member {
  session: ChatSession;
  client: OvtpClient;
  received: ChatMessage[];
  warnings: string[];
}

async function room(
  test: (ctx: {
    keystore: Keystore;
    people: Record<"alice" | "bob" | "carol", Identity>;
    join: (who: "alice" | "bob" | "carol") => Promise<Member>;
  }) => Promise<void>,
) {
  const home = await tempDir();
  const keystore = new Keystore(home);
  const people = {
    alice: await generateIdentity(),
    bob: await generateIdentity(),
    carol: await generateIdentity(),
  };
  for (const [name, identity] of Object.entries(people)) {
    await keystore.addAuthorizedKey(identity.publicKey, name);
  }
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: authorizedKeysAuthorizer(keystore),
    handler: () => ({}),
    chat: new ChatRelay(new RoomStore(keystore.path("rooms")), SILENT_LOGGER),
  });
  const clients: OvtpClient[] = [];
  const join = async (who: keyof typeof people): Promise<Member> => {
    const client = await OvtpClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      identity: people[who],
      verifyHost: () => {},
    });
    clients.push(client);
    const received: ChatMessage[] = [];
    const warnings: string[] = [];
    const events: ChatEvents = {
      onMessage: (message) => received.push(message),
      onPresence() {},
      onDropped: (claimed, reason) => warnings.push(`${claimed}: ${reason}`),
      onWarning: (message) => warnings.push(message),
    };
    const session = await ChatSession.join(client, people[who], { room: "ops", display: who }, {
      ...events,
    });
    return { session, client, received, warnings };
  };
  try {
    await test({ keystore, people, join });
  } finally {
    for (const client of clients) client.close();
    await server.close();
    await Deno.remove(home, { recursive: true });
  }
}

/** Waits until `member` has received `count` messages, or 5 s. */
async function receivedCount(member: Member, count: number): Promise<void> {
  for (let i = 0; i < 250 && member.received.length < count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function away(member: Member): Promise<void> {
  await member.session.leave();
  member.client.close();
}

for (
  const [what, revoke, restore] of [
    [
      "removed from authorized_keys",
      (keystore: Keystore) => keystore.removeAuthorizedKey("bob"),
      (keystore: Keystore, bob: Identity) => keystore.addAuthorizedKey(bob.publicKey, "bob"),
    ],
    [
      "whose allow no longer names the room",
      (keystore: Keystore) => keystore.updateAuthorizedKey("bob", { allow: ["upload"] }),
      (keystore: Keystore) => keystore.updateAuthorizedKey("bob", { allow: null }),
    ],
  ] as const
) {
  Deno.test(`a member ${what} gets nothing kept and leaves the member list at the next join`, async () => {
    await room(async ({ keystore, people, join }) => {
      const alice = await join("alice");
      await away(await join("bob"));
      await away(await join("carol"));
      await revoke(keystore);
      // The relay's answers about members are at most a second old.
      await new Promise((resolve) => setTimeout(resolve, 1100));

      // Alice still lists bob: her post names him, and is not refused for it.
      assert.equal(await alice.session.send("while bob is out"), 2);

      // Allowed again before anyone joined, bob gets nothing of the time he
      // was not allowed.
      await restore(keystore, people.bob);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const bob = await join("bob");
      assert.equal(await alice.session.send("welcome back"), 2);
      await receivedCount(bob, 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(bob.received.map((m) => m.text), ["welcome back"]);

      // Carol, allowed all along, got both kept for her.
      const carol = await join("carol");
      await receivedCount(carol, 2);
      assert.deepEqual(carol.received.map((m) => m.text), ["while bob is out", "welcome back"]);

      // Not allowed once more: his connection ends, and the next join leaves
      // him out of the room's member list.
      await revoke(keystore);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const again = await join("alice");
      assert.deepEqual(again.session.members.map((m) => m.name).sort(), ["alice", "carol"]);
      assert.deepEqual([...alice.warnings, ...carol.warnings, ...again.warnings], []);
    });
  });
}
