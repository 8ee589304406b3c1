import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  ChatRelay,
  generateIdentity,
  type Identity,
  OvtpClient,
  type PublicKey,
  RoomStore,
  serve,
  SILENT_LOGGER,
} from "../mod.ts";
import { ChatMessageType } from "../lib/services/chat/chat_messages.ts";
import {
  ChangeAction,
  changeHash,
  MAX_CHANGE_LENGTH,
  MAX_CHANGES,
  MAX_LOG_MEMBERS,
  parseChange,
  RoomLog,
  RoomLogError,
  type RoomLogFailure,
  signChange,
} from "../lib/services/chat/room_log.ts";
import { decodeJson, encodeJson, type Message } from "../lib/channel/messages.ts";

const ROOM = "club";

function sign(
  signer: Identity,
  log: RoomLog,
  action: number,
  subject: PublicKey,
  name = "x",
): Promise<Uint8Array> {
  return signChange(signer, {
    room: log.room,
    version: log.length,
    previous: log.head?.hash ?? new Uint8Array(32),
    timestamp: 1_700_000_000_000,
    action: action as 1 | 2 | 3,
    subject,
    name,
  });
}

async function refusal(log: RoomLog, bytes: Uint8Array): Promise<RoomLogFailure> {
  const before = { length: log.length, members: log.members.length };
  const error = await log.append(bytes).then(() => undefined, (e) => e);
  assert.ok(error instanceof RoomLogError, `accepted, or ${error}`);
  // A refused change leaves nothing behind.
  assert.deepEqual({ length: log.length, members: log.members.length }, before);
  return error.reason;
}

async function started() {
  const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
  const log = new RoomLog(ROOM);
  await log.append(await sign(alice, log, ChangeAction.Create, alice.publicKey, "alice"));
  return { alice, bob, carol, log };
}

Deno.test("parseChange() reads back what signChange() wrote, at most MAX_CHANGE_LENGTH bytes", async () => {
  const alice = await generateIdentity();
  const bytes = await signChange(alice, {
    room: "r".repeat(64),
    version: 7,
    previous: new Uint8Array(32).fill(9),
    timestamp: 123,
    action: ChangeAction.Add,
    subject: alice.publicKey,
    name: "é".repeat(32),
  });
  assert.equal(bytes.length, MAX_CHANGE_LENGTH);
  const change = parseChange(bytes);
  assert.equal(change.room, "r".repeat(64));
  assert.equal(change.version, 7);
  assert.equal(change.timestamp, 123);
  assert.equal(change.name, "é".repeat(32));
  assert.deepEqual(change.previous, new Uint8Array(32).fill(9));
});

Deno.test("RoomLog.append() refuses every flipped byte and every truncation of a change", async () => {
  const { alice, bob, log } = await started();
  const good = await sign(alice, log, ChangeAction.Add, bob.publicKey, "bob");
  const reasons = new Set<RoomLogFailure>();
  for (let i = 0; i < good.length; i++) {
    const bad = good.slice();
    bad[i] ^= 0x01;
    reasons.add(await refusal(log, bad));
  }
  for (let n = 0; n < good.length; n++) {
    assert.equal(await refusal(log, good.subarray(0, n)), "malformed");
  }
  assert.equal(await refusal(log, new Uint8Array([...good, 0])), "malformed");
  // Each field's flip is caught by what guards it.
  assert.deepEqual([...reasons].sort(), ["malformed", "order", "rule", "signature", "signer"]);
  await log.append(good);
  assert.deepEqual(log.members.map((m) => m.name), ["alice", "bob"]);
});

Deno.test("RoomLog.append() enforces who may sign what, and the order", async () => {
  const { alice, bob, carol, log } = await started();
  // A non-member (the relay, or someone uninvited) cannot add anyone, itself included.
  assert.equal(await refusal(log, await sign(bob, log, ChangeAction.Add, bob.publicKey)), "signer");
  assert.equal(
    await refusal(log, await sign(alice, log, ChangeAction.Add, alice.publicKey)),
    "rule",
  );
  assert.equal(
    await refusal(log, await sign(alice, log, ChangeAction.Remove, bob.publicKey)),
    "rule",
  );
  assert.equal(
    await refusal(log, await sign(alice, log, ChangeAction.Create, alice.publicKey)),
    "rule",
  );
  const addBob = await sign(alice, log, ChangeAction.Add, bob.publicKey, "bob");
  const addCarol = await sign(alice, log, ChangeAction.Add, carol.publicKey, "carol");
  await log.append(addBob);
  // Signed for the same place: a fork, refused once the other is in.
  assert.equal(await refusal(log, addCarol), "order");
  assert.equal(await refusal(log, addBob), "order"); // replayed
  // Bob, a member now, removes alice; alice can then sign nothing.
  await log.append(await sign(bob, log, ChangeAction.Remove, alice.publicKey));
  assert.equal(
    await refusal(log, await sign(alice, log, ChangeAction.Add, carol.publicKey)),
    "signer",
  );
  const other = new RoomLog("other");
  assert.equal(
    await refusal(other, await sign(alice, log, ChangeAction.Create, alice.publicKey)),
    "malformed",
  );
  const fresh = new RoomLog(ROOM);
  assert.equal(
    await refusal(fresh, await sign(alice, fresh, ChangeAction.Create, bob.publicKey)),
    "rule",
  );
  assert.equal(
    await refusal(fresh, await sign(alice, fresh, ChangeAction.Add, bob.publicKey)),
    "rule",
  );
});

Deno.test("a log holds at most MAX_LOG_MEMBERS members and MAX_CHANGES changes", async () => {
  const { alice, log } = await started();
  const keys = await Promise.all(
    Array.from({ length: MAX_LOG_MEMBERS }, () => generateIdentity().then((i) => i.publicKey)),
  );
  for (const key of keys.slice(0, MAX_LOG_MEMBERS - 1)) {
    await log.append(await sign(alice, log, ChangeAction.Add, key), false);
  }
  assert.equal(log.members.length, MAX_LOG_MEMBERS);
  const over = await sign(alice, log, ChangeAction.Add, keys[MAX_LOG_MEMBERS - 1]);
  assert.equal(await refusal(log, over), "rule");
  // Removing and adding again fills the log itself.
  const key = keys[0];
  while (log.length < MAX_CHANGES) {
    const action = log.memberOf(key) ? ChangeAction.Remove : ChangeAction.Add;
    await log.append(await sign(alice, log, action, key), false);
  }
  const action = log.memberOf(key) ? ChangeAction.Remove : ChangeAction.Add;
  assert.equal(await refusal(log, await sign(alice, log, action, key)), "rule");
});

/** A client speaking chat directly: what a hostile or buggy client could send. */
async function rawClient(port: number, identity: Identity) {
  const client = await OvtpClient.connect({
    hostname: "127.0.0.1",
    port,
    identity,
    verifyHost: () => {}, // A test server.
  });
  const id = client.link.nextId();
  const received: Message[] = [];
  client.link.subscribe(id, (message) => void received.push(message), () => {});
  const next = async (type: number) => {
    const deadline = Date.now() + 5_000;
    while (true) {
      const index = received.findIndex((m) => m.type === type);
      if (index >= 0) return received.splice(index, 1)[0];
      if (Date.now() > deadline) throw new Error(`No message of type ${type}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const send = (type: number, body: Uint8Array) => client.link.send({ type, id, body });
  return { client, next, send };
}

Deno.test("the relay keeps the log: it appends and forwards valid changes, refuses the others", async () => {
  const dir = await tempDir();
  const [alice, mallory] = await Promise.all([1, 2].map(() => generateIdentity()));
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "someone" }),
    handler: () => ({}),
    chat: new ChatRelay(new RoomStore(dir), SILENT_LOGGER),
  });
  const a = await rawClient(server.addr.port, alice);
  const m = await rawClient(server.addr.port, mallory);
  try {
    const join = (room: string, inviteOnly: boolean) =>
      encodeJson({ room, display: "x", ...(inviteOnly ? { invite_only: true } : {}) });
    await a.send(ChatMessageType.Join, join(ROOM, true));
    assert.deepEqual(decodeJson((await a.next(ChatMessageType.Joined)).body).changes, []);
    const log = new RoomLog(ROOM);
    const create = await sign(alice, log, ChangeAction.Create, alice.publicKey, "alice");
    await a.send(ChatMessageType.Change, create);
    assert.deepEqual((await a.next(ChatMessageType.Change)).body, create);
    await log.append(create);

    // Mallory joins and tries to add herself: refused, nothing stored or sent.
    await m.send(ChatMessageType.Join, join(ROOM, true));
    const joined = decodeJson((await m.next(ChatMessageType.Joined)).body);
    assert.equal((joined.changes as string[]).length, 1);
    await m.send(
      ChatMessageType.Change,
      await sign(mallory, log, ChangeAction.Add, mallory.publicKey),
    );
    const refused = decodeJson((await m.next(ChatMessageType.Refused)).body);
    assert.equal(refused.message, "Change 1 is signed by a non-member");
    // A change that is not one, and a second creation.
    await m.send(ChatMessageType.Change, new Uint8Array(10));
    assert.match(
      String(decodeJson((await m.next(ChatMessageType.Refused)).body).message),
      /^Malformed/,
    );
    await m.send(ChatMessageType.Change, create);
    assert.match(
      String(decodeJson((await m.next(ChatMessageType.Refused)).body).message),
      /does not follow/,
    );

    // Alice adds mallory: both get it; mallory's stored log has two changes.
    const add = await sign(alice, log, ChangeAction.Add, mallory.publicKey, "mallory");
    await a.send(ChatMessageType.Change, add);
    assert.deepEqual((await a.next(ChatMessageType.Change)).body, add);
    assert.deepEqual((await m.next(ChatMessageType.Change)).body, add);
    assert.deepEqual(
      (await new RoomStore(dir).changes(ROOM))?.map((c) => changeHash(c)),
      [changeHash(create), changeHash(add)],
    );

    // In an ordinary room there is no log to change.
    await a.send(ChatMessageType.Leave, encodeJson({}));
    const b = await rawClient(server.addr.port, alice);
    await b.send(ChatMessageType.Join, join("plain", false));
    await b.next(ChatMessageType.Joined);
    await b.send(ChatMessageType.Change, add);
    assert.equal(
      decodeJson((await b.next(ChatMessageType.Refused)).body).message,
      'The room "plain" is not invite-only',
    );
    b.client.close();
  } finally {
    a.client.close();
    m.client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
