import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  type ChatEvents,
  ChatRelay,
  ChatSession,
  fingerprint,
  formatPublicKey,
  generateIdentity,
  type Identity,
  OvtpClient,
  RoomStore,
  type RoomStoreOptions,
  samePublicKey,
  serve,
  SILENT_LOGGER,
  type StoredMember,
} from "../mod.ts";

async function member(name: string): Promise<StoredMember> {
  const { publicKey } = await generateIdentity();
  return {
    name,
    display: name,
    fingerprint: await fingerprint(publicKey),
    key: formatPublicKey(publicKey),
  };
}

async function withStore(
  options: RoomStoreOptions,
  test: (store: RoomStore, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await tempDir();
  try {
    await test(new RoomStore(dir, options), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function queueFile(dir: string, room: string): string {
  const names = [...Deno.readDirSync(`${dir}/${room}`)].map((e) => e.name);
  const queues = names.filter((n) => n.endsWith(".queue"));
  assert.equal(queues.length, 1, names.join(" "));
  return `${dir}/${room}/${queues[0]}`;
}

/** Counts Deno.readFile calls while `work` runs. */
async function countReads(work: () => Promise<void>): Promise<number> {
  const original = Deno.readFile;
  let reads = 0;
  // deno-lint-ignore no-explicit-any
  (Deno as any).readFile = (...args: Parameters<typeof Deno.readFile>) => {
    reads++;
    return original(...args);
  };
  try {
    await work();
  } finally {
    // deno-lint-ignore no-explicit-any
    (Deno as any).readFile = original;
  }
  return reads;
}

Deno.test("RoomStore.enqueue() appends: the queue is read once, not on every envelope", async () => {
  await withStore({}, async (store, dir) => {
    const bob = await member("bob");
    await store.addMember("ops", bob);
    const envelope = new Uint8Array(1000).fill(7);
    const reads = await countReads(async () => {
      for (let i = 0; i < 200; i++) await store.enqueue("ops", bob.key, envelope);
    });
    assert.ok(reads <= 1, `the queue was read ${reads} times for 200 envelopes`);
    assert.equal((await Deno.stat(queueFile(dir, "ops"))).size, 200 * (12 + 1000));
    assert.equal((await store.takeQueued("ops", bob.key)).length, 200);
  });
});

Deno.test("RoomStore.enqueue() bounds a queue in bytes: the oldest go, down to three quarters", async () => {
  await withStore({ maxQueuedBytes: 10_000 }, async (store, dir) => {
    const bob = await member("bob");
    await store.addMember("ops", bob);
    let rewrites = 0;
    let before = 0;
    for (let n = 1; n <= 50; n++) {
      await store.enqueue("ops", bob.key, new Uint8Array(988).fill(n)); // 1000 bytes a record
      const size = (await Deno.stat(queueFile(dir, "ops"))).size;
      assert.ok(size <= 10_000, `the queue holds ${size} bytes`);
      if (size < before) rewrites++;
      before = size;
    }
    // 10 records fit; each rewrite keeps 7 (3/4 of the bytes, the new one included).
    assert.ok(rewrites <= 15, `${rewrites} rewrites for 50 envelopes`);
    const kept = await store.takeQueued("ops", bob.key);
    assert.ok(kept.length >= 7 && kept.length <= 10);
    assert.deepEqual(kept.map((e) => e[0]), kept.map((_, i) => 50 - kept.length + 1 + i));
  });
});

Deno.test("RoomStore.enqueue() bounds a queue in count, and drops an envelope larger than the byte bound", async () => {
  await withStore({ maxQueued: 8, maxQueuedBytes: 4096 }, async (store) => {
    const bob = await member("bob");
    await store.addMember("ops", bob);
    for (let n = 1; n <= 20; n++) await store.enqueue("ops", bob.key, new Uint8Array([n]));
    await store.enqueue("ops", bob.key, new Uint8Array(5000)); // can never fit
    const kept = await store.takeQueued("ops", bob.key);
    assert.ok(kept.length <= 8 && kept.length >= 6, `${kept.length} kept`);
    assert.deepEqual(kept.at(-1), new Uint8Array([20]));
  });
});

Deno.test("RoomStore.enqueue() after a torn last record keeps both the earlier and the new envelopes", async () => {
  await withStore({}, async (store, dir) => {
    const bob = await member("bob");
    await store.addMember("ops", bob);
    await store.enqueue("ops", bob.key, new Uint8Array([1]));
    // A crash mid-append: a header that promises 100 bytes, then 3.
    const path = queueFile(dir, "ops");
    const torn = new Uint8Array(15);
    new DataView(torn.buffer).setUint32(8, 100);
    await Deno.writeFile(path, torn, { append: true });
    const restarted = new RoomStore(dir);
    await restarted.enqueue("ops", bob.key, new Uint8Array([2]));
    assert.deepEqual(await restarted.takeQueued("ops", bob.key), [
      new Uint8Array([1]),
      new Uint8Array([2]),
    ]);
  });
});

Deno.test("RoomStore.addMember() refuses past the room, per-key and member bounds, naming which", async () => {
  const options = { maxRooms: 3, maxRoomsPerKey: 2, maxMembers: 2 };
  await withStore(options, async (store, dir) => {
    const [alice, bob, carol] = [await member("alice"), await member("bob"), await member("carol")];
    assert.equal(await store.addMember("a", alice), undefined);
    assert.equal(await store.addMember("a", bob), undefined);
    assert.equal(await store.addMember("a", carol), 'The room "a" is full (2 members)');
    // A member already there may come back (a new display name, say).
    assert.equal(await store.addMember("a", { ...bob, display: "Bob" }), undefined);
    assert.equal(await store.addMember("b", alice), undefined);
    assert.equal(
      await store.addMember("c", alice),
      "Your key is a member of too many chat rooms (2)",
    );
    assert.equal(await store.addMember("c", carol), undefined);
    assert.equal(await store.addMember("d", carol), "This server has too many chat rooms (3)");
    assert.deepEqual((await store.members("a")).map((m) => m.display), ["alice", "Bob"]);
    assert.deepEqual(await store.members("d"), []);
    // The same counts after a restart, read from the disk.
    const restarted = new RoomStore(dir, options);
    assert.equal(await restarted.addMember("d", bob), "This server has too many chat rooms (3)");
    assert.equal(
      await restarted.addMember("c", alice),
      "Your key is a member of too many chat rooms (2)",
    );
  });
});

Deno.test("RoomStore.addMember() removes rooms idle past maxIdleMs, unless someone is in them", async () => {
  await withStore({ maxRooms: 2, maxIdleMs: 3600_000 }, async (store, dir) => {
    const [alice, bob] = [await member("alice"), await member("bob")];
    assert.equal(await store.addMember("old", alice), undefined);
    assert.equal(await store.addMember("busy", alice), undefined);
    await store.enqueue("old", alice.key, new Uint8Array([1]));
    const longAgo = new Date(Date.now() - 2 * 3600_000);
    for (const room of ["old", "busy"]) {
      await Deno.utime(`${dir}/${room}/members.json`, longAgo, longAgo);
    }
    const restarted = new RoomStore(dir, { maxRooms: 2, maxIdleMs: 3600_000 });
    const inUse = (room: string) => room === "busy";
    assert.equal(await restarted.addMember("new", bob, { inUse }), undefined);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["busy", "new"]);
    assert.deepEqual(await restarted.members("old"), []);
    // The busy room, idle on disk, was kept: the server is full again.
    assert.equal(
      await restarted.addMember("other", bob, { inUse }),
      "This server has too many chat rooms (2)",
    );
  });
});

const quiet: ChatEvents = { onMessage() {}, onPresence() {}, onDropped() {} };

Deno.test("the relay refuses a join past a bound with its reason, and still serves", async () => {
  const dir = await tempDir();
  const people: Identity[] = [];
  for (let i = 0; i < 3; i++) people.push(await generateIdentity());
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: (key) =>
      Promise.resolve({ name: `p${people.findIndex((p) => samePublicKey(p.publicKey, key))}` }),
    handler: () => ({}),
    chat: new ChatRelay(new RoomStore(dir, { maxMembers: 2, maxRooms: 2 }), SILENT_LOGGER),
  });
  const clients: OvtpClient[] = [];
  const join = async (who: number, room: string) => {
    const client = await OvtpClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      identity: people[who],
      verifyHost: () => {},
    });
    clients.push(client);
    return await ChatSession.join(client, people[who], { room, display: `p${who}` }, quiet);
  };
  try {
    await join(0, "ops");
    await join(1, "ops");
    await assert.rejects(
      join(2, "ops"),
      /The server refused: The room "ops" is full \(2 members\)/,
    );
    await join(2, "dev");
    await assert.rejects(
      join(2, "third"),
      /The server refused: This server has too many chat rooms \(2\)/,
    );
    // Still serving: a member comes back, a refused key joins a room with space.
    const back = await join(1, "ops");
    assert.deepEqual(back.members.map((m) => m.name).sort(), ["p0", "p1"]);
    const dev = await join(0, "dev");
    assert.equal(await dev.send("hello"), 1);
  } finally {
    for (const client of clients) client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("members who join a room at the same moment can all be sealed to", async () => {
  // Invariant: every member the relay admitted is routable. Joins that arrive
  // together each load the room's member map; a later load used to replace
  // the one an earlier joiner had added itself to, and the relay then refused
  // every post naming that member ("not a member of room").
  const dir = await tempDir();
  const people: Identity[] = [];
  for (let i = 0; i < 8; i++) people.push(await generateIdentity());
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: (key) =>
      Promise.resolve({ name: `p${people.findIndex((p) => samePublicKey(p.publicKey, key))}` }),
    handler: () => ({}),
    chat: new ChatRelay(new RoomStore(dir), SILENT_LOGGER),
  });
  const clients: OvtpClient[] = [];
  const warnings: string[] = [];
  const received = people.map(() => 0);
  const { promise: allReceived, resolve } = Promise.withResolvers<void>();
  const expected = people.length * (people.length - 1);
  let total = 0;
  let presence = () => {};
  try {
    const sessions = await Promise.all(people.map(async (person, who) => {
      const client = await OvtpClient.connect({
        hostname: "127.0.0.1",
        port: server.addr.port,
        identity: person,
        verifyHost: () => {},
      });
      clients.push(client);
      return await ChatSession.join(client, person, { room: "ops", display: `p${who}` }, {
        onMessage() {
          received[who]++;
          if (++total === expected) resolve();
        },
        onPresence: () => presence(),
        onDropped: (claimed, reason) => warnings.push(`dropped from ${claimed}: ${reason}`),
        onWarning: (message) => warnings.push(message),
      });
    }));
    // Each session seals for the members it sees online: wait until all see all.
    const everyoneSeen = () =>
      sessions.every((s) => s.members.filter((m) => m.online).length === 8);
    if (!everyoneSeen()) {
      await new Promise<void>((done) => (presence = () => everyoneSeen() && done()));
    }
    for (const session of sessions) assert.equal(await session.send("hello"), 7);
    const timer = setTimeout(resolve, 10_000);
    await allReceived;
    clearTimeout(timer);
    assert.deepEqual(warnings, []);
    assert.deepEqual(received, people.map(() => 7));
  } finally {
    for (const client of clients) client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RoomStore.addMember() removes members idle past maxIdleMs who are not online, with their queues", async () => {
  await withStore({ maxMembers: 3, maxIdleMs: 3600_000 }, async (store, dir) => {
    const [alice, bob, carol, dave] = [
      await member("alice"),
      await member("bob"),
      await member("carol"),
      await member("dave"),
    ];
    for (const m of [alice, bob, carol]) assert.equal(await store.addMember("ops", m), undefined);
    await store.enqueue("ops", bob.key, new Uint8Array([1]));
    assert.equal(await store.addMember("ops", dave), 'The room "ops" is full (3 members)');
    // Two months pass; alice and carol were seen long ago, carol is online now.
    const path = `${dir}/ops/members.json`;
    const stored = JSON.parse(await Deno.readTextFile(path));
    for (const m of stored) m.seen = Date.now() - 60 * 24 * 3600_000;
    await Deno.writeTextFile(path, JSON.stringify(stored));
    const online = (fp: string) => fp === carol.fingerprint;
    const restarted = new RoomStore(dir, { maxMembers: 3, maxIdleMs: 3600_000 });
    assert.equal(await restarted.addMember("ops", dave, { online }), undefined);
    assert.deepEqual((await restarted.members("ops")).map((m) => m.name).sort(), ["carol", "dave"]);
    assert.deepEqual(await restarted.takeQueued("ops", bob.key), []);
    assert.deepEqual([...Deno.readDirSync(`${dir}/ops`)].map((e) => e.name), ["members.json"]);
  });
});
