// The bounds a lone relay keeps on rooms (rooms per server, rooms per key)
// hold in a cluster too: counted over the shared room entries in NATS, so
// that a key cannot make NATS hold rooms without end through any relay.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { fingerprint, formatPublicKey, generateIdentity } from "../mod.ts";
import type { StoredMember } from "../lib/services/chat/room_store.ts";
import { NatsCluster, PRESENCE_SUBJECTS } from "../lib/cluster/nats_cluster.ts";
import { NatsRooms } from "../lib/cluster/nats_rooms.ts";
import { SILENT_LOGGER } from "../lib/logger.ts";
import { toBase64Url, toHex, utf8 } from "../lib/bytes.ts";
import type { KvEntry } from "@nats-io/kv";
import { encodeRoom, type KeptRoom, parseRoom } from "../lib/cluster/members.ts";
import { MAX_CHANGE_LENGTH, MAX_CHANGES } from "../lib/services/chat/room_log.ts";
import { hasNats, startNats } from "./_nats.ts";

async function member(name: string): Promise<StoredMember> {
  const { publicKey } = await generateIdentity();
  return {
    name,
    display: name,
    fingerprint: await fingerprint(publicKey),
    key: formatPublicKey(publicKey),
  };
}

Deno.test({
  name: "a cluster refuses a new room past its room bound, and a key past its rooms per key",
  ignore: !hasNats,
  async fn() {
    const dir = await tempDir();
    const nats = await startNats(`${dir}/nats`);
    const cluster = await NatsCluster.start({ servers: [nats.url], logger: SILENT_LOGGER });
    // Two relays over one NATS: what one admitted counts for the other.
    const [a, b] = [1, 2].map(() =>
      new NatsRooms(cluster, SILENT_LOGGER, { maxRooms: 3, maxRoomsPerKey: 2 })
    );
    try {
      const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map(member));
      assert.equal(await a.addMember("one", alice), undefined);
      assert.equal(await b.addMember("two", alice), undefined);
      assert.equal(
        await b.addMember("three", alice),
        "Your key is a member of too many chat rooms (2)",
      );
      assert.deepEqual(await a.members("three"), [], "the refused join made no room");
      // Joining again where it is a member is no new membership.
      assert.equal(await a.addMember("two", alice), undefined);
      assert.equal(await a.addMember("three", bob), undefined);
      assert.equal(
        await b.addMember("four", carol),
        "This server has too many chat rooms (3)",
      );
      // An existing room still takes a newcomer.
      assert.equal(await b.addMember("one", carol), undefined);
      assert.deepEqual((await a.members("one")).map((m) => m.name), ["alice", "carol"]);
    } finally {
      a.close();
      b.close();
      await cluster.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "an invite-only room in a cluster: its kind and log are shared, appends race by compare-and-set, the other relays are told",
  ignore: !hasNats,
  async fn() {
    const dir = await tempDir();
    const nats = await startNats(`${dir}/nats`);
    // A connection each, as two relays have: NATS does not echo a relay's own messages.
    const clusters = await Promise.all(
      [1, 2].map(() => NatsCluster.start({ servers: [nats.url], logger: SILENT_LOGGER })),
    );
    const [a, b] = clusters.map((cluster) => new NatsRooms(cluster, SILENT_LOGGER));
    const heard = { a: [] as string[], b: [] as string[] };
    a.onChange((room) => heard.a.push(room));
    b.onChange((room) => heard.b.push(room));
    try {
      const [alice, bob] = await Promise.all(["alice", "bob"].map(member));
      assert.equal(await a.changes("club"), undefined, "no room yet");
      assert.equal(await a.addMember("club", alice, { inviteOnly: true }), undefined);
      assert.deepEqual(await b.changes("club"), [], "created invite-only, with an empty log");
      assert.equal(await b.addMember("club", bob), 'The room "club" is invite-only');
      assert.equal(await b.addMember("ops", bob), undefined);
      assert.equal(await a.changes("ops"), undefined);
      assert.equal(
        await a.addMember("ops", alice, { inviteOnly: true }),
        'The room "ops" is not invite-only',
      );

      // Two relays append change 0 at once: one wins, the other is told the log moved.
      const [first, second] = [utf8("change 0 from a"), utf8("change 0 from b")];
      const won = await Promise.all([
        a.appendChange("club", first, 0),
        b.appendChange("club", second, 0),
      ]);
      assert.equal(won.filter(Boolean).length, 1, `exactly one append wins: ${won}`);
      const log = (await a.changes("club"))!;
      assert.deepEqual(log, [won[0] ? first : second]);
      // A join rewriting the entry keeps the log; an append with a stale count is refused.
      assert.equal(await b.addMember("club", bob, { inviteOnly: true }), undefined);
      assert.equal(await b.appendChange("club", utf8("stale"), 0), false);
      assert.ok(await b.appendChange("club", utf8("change 1"), 1));
      assert.deepEqual(await a.changes("club"), [...log, utf8("change 1")]);
      assert.deepEqual((await a.members("club")).map((m) => m.name), ["alice", "bob"]);
      assert.equal(await a.appendChange("ops", utf8("x"), 0), false, "an ordinary room has no log");

      // Each successful append is announced to the other relays, never to itself.
      const told = { a: won[1] ? ["club", "club"] : ["club"], b: won[0] ? ["club"] : [] };
      const deadline = Date.now() + 10_000;
      while (heard.a.length < told.a.length || heard.b.length < told.b.length) {
        if (Date.now() > deadline) throw new Error(`not told: ${JSON.stringify(heard)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 200)); // Nothing more is on its way.
      assert.deepEqual(heard, told);

      // What another relay says is checked: a notice without a valid length is
      // ignored. A room without members here is passed on as it comes (the relay
      // ignores it); for one with members here, a notice ahead of the log this relay
      // reads (a replica behind) is passed on once the log reaches its length.
      const say = (body: unknown) =>
        clusters[0].state().nc.publish(
          `${PRESENCE_SUBJECTS}.${toHex(utf8("club"))}`,
          JSON.stringify({ relay: "elsewhere", event: "change", ...body as object }),
        );
      const heardOnce = async (what: string) => {
        const deadline = Date.now() + 10_000;
        while (heard.b.length === 0) {
          if (Date.now() > deadline) throw new Error(`never told: ${what}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(heard.b, ["club"], `${what}: only the notice with a length was heard`);
        heard.b.length = 0;
      };
      heard.b.length = 0;
      for (const length of [0, -1, 1.5, "2", null, MAX_CHANGES + 1]) say({ length });
      say({});
      say({ length: 99 });
      await heardOnce("a room without members here");

      await b.attach("club", bob, () => Promise.resolve());
      const { rooms } = clusters[0].state();
      const entry = (await rooms.get(toHex(utf8("club"))))!;
      const room = parseRoom(entry);
      say({ length: room.changes!.length + 1 });
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(heard.b, [], "told before the log reached the length said");
      const changes = [...room.changes!, utf8("change 2")];
      await rooms.update(entry.key, encodeRoom({ ...room, changes }), entry.revision);
      await heardOnce("a room with members here, once the log caught up");
      await b.detach("club", bob);
    } finally {
      a.close();
      b.close();
      for (const cluster of clusters) await cluster.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a shared room's entry: both kinds read back as written, a damaged log is refused", async () => {
  const entry = (value: unknown) =>
    ({ key: "636c7562", operation: "PUT", json: () => value }) as unknown as KvEntry;
  const kept = { ...(await member("alice")), seen: 1 };
  const read = (room: KeptRoom) => parseRoom(entry(JSON.parse(encodeRoom(room))));
  assert.deepEqual(read({ members: [kept] }), { members: [kept] });
  const changes = [utf8("one"), utf8("two")];
  assert.deepEqual(read({ members: [kept], changes }), { members: [kept], changes });
  assert.deepEqual(read({ members: [], changes: [] }), { members: [], changes: [] });
  const damaged = [
    { members: [kept], changes: [1] },
    { members: [kept], changes: ["a+b/"] }, // base64, not base64url
    { members: [kept], changes: ["YQ=="] }, // padded
    { members: [kept], changes: [""] }, // an empty change
    { members: [kept], changes: new Array(MAX_CHANGES + 1).fill("YQ") },
    { members: [kept], changes: [toBase64Url(new Uint8Array(MAX_CHANGE_LENGTH + 1))] },
    { members: [{ ...kept, key: "ovtp1 nonsense" }], changes: [] },
    { members: [kept] }, // an object without a log
    { changes: [] },
    "[]",
  ];
  for (const value of damaged) {
    assert.throws(() => parseRoom(entry(value)), /damaged/, JSON.stringify(value).slice(0, 80));
  }
});

Deno.test("a listing of the members on other relays that never ends is cut short, and said", async () => {
  const room = "ops";
  const listed = `${toHex(utf8(room))}.${toHex(utf8("SHA256:bob"))}.other-relay`;
  // One key, then nothing and no end: a listing stuck as @nats-io/kv's may be.
  const stopped = Promise.withResolvers<void>();
  const endless = {
    stop: () => stopped.resolve(),
    async *[Symbol.asyncIterator]() {
      yield listed;
      await stopped.promise;
    },
  };
  const cluster = {
    connected: false,
    onReady() {},
    state: () => ({ presence: { keys: () => Promise.resolve(endless) } }),
  } as unknown as NatsCluster;
  const warnings: string[] = [];
  const rooms = new NatsRooms(cluster, { ...SILENT_LOGGER, warn: (m) => warnings.push(m) });
  try {
    assert.deepEqual(await rooms.online(room), new Set(["SHA256:bob"]));
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /the members of room ops on other relays were not all listed/);
  } finally {
    rooms.close();
  }
});
