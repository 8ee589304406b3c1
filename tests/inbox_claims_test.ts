/**
 * The inbox against a hostile sender writing raw file messages: one writer
 * per unfinished upload, internal state out of reach of any sender's name or
 * file name, unguessable partial names, and pruning of abandoned uploads.
 * Also what a slow fsync at End must not break: the connection reads on, and
 * nothing the sender sends meanwhile reaches the verified file.
 */

import { tempDir } from "./_tmp.ts";
import { within } from "./_within.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  fingerprint,
  generateIdentity,
  type Identity,
  Inbox,
  INBOX_STATE_DIR,
  type InboxOptions,
  OvtpClient,
  type ReceivedFile,
  serve,
  streamSource,
} from "../mod.ts";
import { decodeJson, encodeJson, type Message } from "../lib/channel/messages.ts";
import { FileMessageType } from "../lib/services/transfer/engine.ts";
import { ReplyQueue } from "../lib/client/message_link.ts";

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function bytes(fill: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

/** A server whose keys are known by the names in `names` (fingerprint to name). */
async function server(options: InboxOptions = {}) {
  const dir = await tempDir();
  const names = new Map<string, string>();
  const inbox = new Inbox(dir, options);
  const received: ReceivedFile[] = [];
  const srv = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: async (key) => {
      const name = names.get(await fingerprint(key));
      return name === undefined ? undefined : { name };
    },
    handler: () => ({}),
    inbox,
    onFile: (file) => void received.push(file),
  });
  return {
    dir,
    inbox,
    received,
    async client(name: string, identity?: Identity): Promise<OvtpClient> {
      identity ??= await generateIdentity();
      names.set(await fingerprint(identity.publicKey), name);
      return await OvtpClient.connect({
        hostname: "127.0.0.1",
        port: srv.addr.port,
        identity,
        verifyHost: () => {},
      });
    },
    async close() {
      await srv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** One upload driven message by message, as a hostile client would. */
class RawUpload {
  readonly id: number;
  readonly replies = new ReplyQueue();
  #client: OvtpClient;

  constructor(client: OvtpClient) {
    this.#client = client;
    this.id = client.link.nextId();
    client.link.subscribe(this.id, (m) => this.replies.push(m), (e) => this.replies.fail(e));
  }

  send(type: number, body: Uint8Array): Promise<void> {
    return this.#client.link.send({ type, id: this.id, body });
  }

  async offer(name: string, size: number): Promise<{ offset: number; prefix: string | null }> {
    await this.send(
      FileMessageType.Offer,
      encodeJson({ name, size, mode: null, resumable: true }),
    );
    const accept = decodeJson(expectType(await this.replies.next(), FileMessageType.Accept).body);
    return { offset: accept.offset as number, prefix: accept.prefix_sha256 as string | null };
  }

  start(offset: number): Promise<void> {
    return this.send(FileMessageType.Start, encodeJson({ offset }));
  }

  data(data: Uint8Array): Promise<void> {
    return this.send(FileMessageType.Data, data);
  }

  async end(size: number, hash: string): Promise<Record<string, unknown>> {
    await this.send(FileMessageType.End, encodeJson({ size, sha256: hash }));
    return decodeJson(expectType(await this.replies.next(), FileMessageType.Result).body);
  }
}

function expectType(message: Message, type: number): Message {
  assert.equal(message.type, type, new TextDecoder().decode(message.body));
  return message;
}

/** Files under `dir`, relative, `/`-separated. */
async function walk(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) found.push(...await walk(`${dir}/${entry.name}`, rel));
    else found.push(rel);
  }
  return found.sort();
}

async function partials(inbox: string): Promise<string[]> {
  try {
    return (await walk(`${inbox}/${INBOX_STATE_DIR}/partial`));
  } catch {
    return [];
  }
}

async function heldBytes(inbox: string): Promise<number> {
  let total = 0;
  for (const name of await partials(inbox)) {
    total += (await Deno.lstat(`${inbox}/${INBOX_STATE_DIR}/partial/${name}`).catch(() => null))
      ?.size ?? 0;
  }
  return total;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An upload of `data` cut off after `sent` bytes (the connection closes). */
async function interrupted(
  srv: Awaited<ReturnType<typeof server>>,
  identity: Identity,
  name: string,
  file: string,
  data: Uint8Array,
  sent: number,
): Promise<void> {
  const before = await heldBytes(srv.dir);
  const client = await srv.client(name, identity);
  const upload = new RawUpload(client);
  await upload.offer(file, data.length);
  await upload.start(0);
  await upload.data(data.subarray(0, sent));
  client.close();
  // The data reaches the file when the server ends the transfer.
  await waitFor(async () => await heldBytes(srv.dir) >= before + sent, "the partial file");
}

Deno.test("two same-name same-size uploads on one connection each store the bytes reported", async () => {
  const srv = await server();
  try {
    const client = await srv.client("alice");
    const a = new RawUpload(client);
    const b = new RawUpload(client);
    const one = bytes(0x61, 100_000);
    const two = bytes(0x62, 100_000);
    assert.deepEqual(await a.offer("same.bin", one.length), { offset: 0, prefix: null });
    assert.deepEqual(await b.offer("same.bin", two.length), { offset: 0, prefix: null });
    await a.start(0);
    await b.start(0);
    // Interleaved, so that a shared file would mix them.
    for (let at = 0; at < one.length; at += 10_000) {
      await a.data(one.subarray(at, at + 10_000));
      await b.data(two.subarray(at, at + 10_000));
    }
    const first = await a.end(one.length, sha256(one));
    const second = await b.end(two.length, sha256(two));
    assert.equal(first.status, "ok", JSON.stringify(first));
    assert.equal(second.status, "ok", JSON.stringify(second));
    assert.equal(first.sha256, sha256(one));
    assert.equal(second.sha256, sha256(two));
    // What is on disk is what was reported, and stays so.
    for (const result of [first, second]) {
      const stored = await Deno.readFile(`${srv.dir}/${result.path}`);
      assert.equal(sha256(stored), result.sha256, String(result.path));
    }
    await new Promise((r) => setTimeout(r, 50));
    for (const result of [first, second]) {
      assert.equal(sha256(await Deno.readFile(`${srv.dir}/${result.path}`)), result.sha256);
    }
    assert.deepEqual(await partials(srv.dir), []);
    // The connection still serves an ordinary upload.
    const sent = await client.sendFile(streamSource(new Blob(["after"]).stream(), "after.txt"));
    assert.equal(await Deno.readTextFile(`${srv.dir}/${sent.path}`), "after");
    client.close();
  } finally {
    await srv.close();
  }
});

Deno.test("a second upload of a file being resumed gets a file of its own, not the held data", async () => {
  const srv = await server();
  const alice = await generateIdentity();
  const data = bytes(0x41, 50_000);
  try {
    await interrupted(srv, alice, "alice", "doc.bin", data, 20_000);
    const client = await srv.client("alice", alice);
    const first = new RawUpload(client);
    const second = new RawUpload(client);
    assert.deepEqual(await first.offer("doc.bin", data.length), {
      offset: 20_000,
      prefix: sha256(data.subarray(0, 20_000)),
    });
    // The held data is the first upload's: the second starts from nothing.
    assert.deepEqual(await second.offer("doc.bin", data.length), { offset: 0, prefix: null });
    const other = bytes(0x42, 50_000);
    await second.start(0);
    await first.start(20_000);
    await second.data(other);
    await first.data(data.subarray(20_000));
    const r2 = await second.end(other.length, sha256(other));
    const r1 = await first.end(data.length, sha256(data));
    assert.equal(r1.status, "ok", JSON.stringify(r1));
    assert.equal(r2.status, "ok", JSON.stringify(r2));
    assert.deepEqual(await Deno.readFile(`${srv.dir}/${r1.path}`), data);
    assert.deepEqual(await Deno.readFile(`${srv.dir}/${r2.path}`), other);
    client.close();
  } finally {
    await srv.close();
  }
});

Deno.test("no sender name or file name reaches the inbox's internal folder", async () => {
  const srv = await server();
  const alice = await generateIdentity();
  const data = bytes(0x61, 40_000);
  try {
    // Alice's interrupted upload waits in the internal folder.
    await interrupted(srv, alice, "alice", "report.pdf", data, 10_000);
    const [held] = await partials(srv.dir);
    // The name today's attack computed (SHA-256 of fingerprint, name, size)
    // is not the name used, nor anything derived from public values alone.
    const oldKey = sha256(
      new TextEncoder().encode(`${await fingerprint(alice.publicKey)}\0report.pdf\0${data.length}`),
    ).slice(0, 40);
    assert.ok(!held.includes(oldKey), held);
    const senders = [
      ".partial",
      "..",
      ".ovtp",
      INBOX_STATE_DIR,
      INBOX_STATE_DIR.toUpperCase(),
      ` ${INBOX_STATE_DIR} `,
      `${INBOX_STATE_DIR}.`,
      `${INBOX_STATE_DIR}/partial`,
      `../${INBOX_STATE_DIR}`,
      "\uff0e\uff4f\uff56\uff54\uff50-internal", // Full-width ".ovtp".
      ".ovtp\u017ftate", // Long s: "S" once upper-cased.
    ];
    const files = [
      `${held}`,
      `partial/${held}`,
      `${INBOX_STATE_DIR}/partial/${held}`,
      `../${INBOX_STATE_DIR}/secret`,
      `${oldKey}.part`,
      "secret",
    ];
    for (const sender of senders) {
      const client = await srv.client(sender);
      for (const file of files) {
        const result = await client.sendFile(
          streamSource(ReadableStream.from([bytes(0x6d, 1000)]), file),
        );
        const top = result.path.split("/")[0];
        assert.ok(
          !top.toLowerCase().startsWith(".ovtp"),
          `${JSON.stringify(sender)} + ${JSON.stringify(file)} -> ${result.path}`,
        );
      }
      client.close();
    }
    // Internal state is exactly what the server put there.
    const internal = await walk(`${srv.dir}/${INBOX_STATE_DIR}`);
    assert.deepEqual(internal, ["partial/" + held, "secret"]);
    // Alice resumes and gets exactly her bytes.
    const client = await srv.client("alice", alice);
    const upload = new RawUpload(client);
    const accept = await upload.offer("report.pdf", data.length);
    assert.deepEqual(accept, { offset: 10_000, prefix: sha256(data.subarray(0, 10_000)) });
    await upload.start(10_000);
    await upload.data(data.subarray(10_000));
    const result = await upload.end(data.length, sha256(data));
    assert.equal(result.path, "alice/report.pdf");
    assert.deepEqual(await Deno.readFile(`${srv.dir}/alice/report.pdf`), data);
    client.close();
  } finally {
    await srv.close();
  }
});

Deno.test("partial names depend on the inbox's secret: another inbox names the same upload otherwise", async () => {
  const alice = await generateIdentity();
  const names: string[] = [];
  for (let i = 0; i < 2; i++) {
    const srv = await server();
    try {
      await interrupted(srv, alice, "alice", "a.bin", bytes(1, 5000), 1000);
      names.push(...await partials(srv.dir));
      const secret = await Deno.lstat(`${srv.dir}/${INBOX_STATE_DIR}/secret`);
      if (Deno.build.os !== "windows") assert.equal(secret.mode! & 0o777, 0o600);
    } finally {
      await srv.close();
    }
  }
  assert.equal(names.length, 2);
  assert.notEqual(names[0], names[1]);
});

Deno.test("a symlink planted as the internal folder is refused, its target untouched", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const srv = await server();
  const elsewhere = await tempDir();
  try {
    await Deno.symlink(elsewhere, `${srv.dir}/${INBOX_STATE_DIR}`);
    const client = await srv.client("alice");
    const refused = await client.sendFile(
      streamSource(ReadableStream.from([bytes(1, 10)]), "x.bin"),
    ).then(() => null, (error) => error);
    assert.match(String(refused?.message), /it is a symlink or not a folder/);
    assert.deepEqual(await walk(elsewhere), []);
    client.close();
  } finally {
    await srv.close();
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("abandoned uploads beyond a sender's byte cap are pruned, oldest first, at once", async () => {
  const srv = await server({ maxPartialBytes: 25_000 });
  const alice = await generateIdentity();
  const bob = await generateIdentity();
  try {
    await interrupted(srv, alice, "alice", "one.bin", bytes(1, 30_000), 10_000);
    await interrupted(srv, bob, "bob", "b.bin", bytes(3, 30_000), 20_000);
    await new Promise((r) => setTimeout(r, 20)); // Distinct modification times.
    await interrupted(srv, alice, "alice", "two.bin", bytes(2, 30_000), 10_000);
    assert.equal((await partials(srv.dir)).length, 3); // 20,000 each: within the cap.
    await new Promise((r) => setTimeout(r, 20));
    const before = await partials(srv.dir);
    // A third file of alice's: her oldest goes, bob's stays.
    const client = await srv.client("alice", alice);
    const upload = new RawUpload(client);
    await upload.offer("three.bin", 30_000);
    await upload.start(0);
    await upload.data(bytes(4, 10_000));
    client.close();
    await waitFor(async () => {
      const now = await partials(srv.dir);
      return now.length === 3 && now.some((n) => !before.includes(n));
    }, "the oldest to be pruned");
    // alice's one.bin was the oldest: it resumes from nothing.
    const again = await srv.client("alice", alice);
    const one = new RawUpload(again);
    assert.deepEqual(await one.offer("one.bin", 30_000), { offset: 0, prefix: null });
    const two = new RawUpload(again);
    assert.equal((await two.offer("two.bin", 30_000)).offset, 10_000);
    again.close();
    const bobAgain = await srv.client("bob", bob);
    const b = new RawUpload(bobAgain);
    assert.equal((await b.offer("b.bin", 30_000)).offset, 20_000);
    bobAgain.close();
  } finally {
    await srv.close();
  }
});

Deno.test("pruneStale() deletes abandoned uploads older than the age, not those in progress", async () => {
  const srv = await server();
  const alice = await generateIdentity();
  try {
    await interrupted(srv, alice, "alice", "old.bin", bytes(1, 30_000), 10_000);
    const client = await srv.client("alice");
    const running = new RawUpload(client);
    await running.offer("running.bin", 30_000);
    await running.start(0);
    await running.data(bytes(2, 1000));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(await srv.inbox.pruneStale(10), 1);
    assert.equal((await partials(srv.dir)).length, 1); // The upload in progress.
    await running.data(bytes(2, 29_000));
    const done = await running.end(30_000, sha256(bytes(2, 30_000)));
    assert.equal(done.status, "ok");
    client.close();
  } finally {
    await srv.close();
  }
});

/**
 * Holds every call of FsFile's `method` in this process until release(): a
 * disk slow to read or to sync. reached() waits until the first is held,
 * while `answer` (the server's answer to what the test just sent) is still
 * to come; held() counts them.
 */
function holdFileCalls(
  method: "read" | "sync",
): {
  reached: (answer: Promise<unknown>, failure: string) => Promise<void>;
  held: () => number;
  release: () => void;
} {
  const prototype = Deno.FsFile.prototype as unknown as Record<string, unknown>;
  const original = prototype[method] as (...args: unknown[]) => Promise<unknown>;
  const entered = Promise.withResolvers<void>();
  const released = Promise.withResolvers<void>();
  let held = 0;
  prototype[method] = async function (this: Deno.FsFile, ...args: unknown[]) {
    held++;
    entered.resolve();
    await released.promise;
    return await original.apply(this, args);
  };
  return {
    async reached(answer, failure) {
      answer.catch(() => {}); // Awaited by the test, unless it fails first.
      await within(entered.promise, failure);
    },
    held: () => held,
    release() {
      prototype[method] = original;
      released.resolve();
    },
  };
}

Deno.test("while a received file is synced, the server reads on: a Ping is answered before the Result", async () => {
  const srv = await server();
  let syncs: ReturnType<typeof holdFileCalls> | undefined;
  try {
    const client = await srv.client("alice");
    const upload = new RawUpload(client);
    const data = bytes(0x63, 300_000);
    await upload.offer("slow.bin", data.length);
    await upload.start(0);
    await upload.data(data);
    // Held from here: the inbox's secret, made at the first Offer, is synced too.
    syncs = holdFileCalls("sync");
    const result = upload.end(data.length, sha256(data));
    await syncs.reached(result, "the file was not synced");
    // A server that finished End before reading on would answer nothing
    // until the fsync returns, and a client's keep-alive would call it gone.
    await within(client.ping(), "the Ping waited for the fsync");
    assert.deepEqual(srv.received, []);
    syncs.release();
    const answer = await result;
    assert.equal(answer.status, "ok", JSON.stringify(answer));
    assert.equal(sha256(await Deno.readFile(`${srv.dir}/${answer.path}`)), sha256(data));
    assert.equal(srv.received.length, 1);
    assert.deepEqual(await partials(srv.dir), []);
    client.close();
  } finally {
    syncs?.release();
    await srv.close();
  }
});

Deno.test("any message for an upload between its End and its Result closes the connection; the verified bytes are stored", async () => {
  const data = bytes(0x64, 50_000);
  const late: [string, number, Uint8Array][] = [
    ["Data", FileMessageType.Data, bytes(0x78, 1000)],
    ["Start", FileMessageType.Start, encodeJson({ offset: 0 })],
    ["End", FileMessageType.End, encodeJson({ size: data.length, sha256: sha256(data) })],
    ["Abort", FileMessageType.Abort, encodeJson({})],
    [
      "Offer",
      FileMessageType.Offer,
      encodeJson({ name: "x", size: 1, mode: null, resumable: true }),
    ],
  ];
  for (const [what, type, body] of late) {
    const srv = await server();
    let syncs: ReturnType<typeof holdFileCalls> | undefined;
    try {
      const client = await srv.client("alice");
      const upload = new RawUpload(client);
      await upload.offer("ended.bin", data.length);
      await upload.start(0);
      await upload.data(data);
      syncs = holdFileCalls("sync");
      const result = upload.end(data.length, sha256(data));
      await syncs.reached(result, `${what}: the file was not synced`);
      await upload.send(type, body).catch(() => {});
      await within(client.closed, `${what} after End did not close the connection`);
      await assert.rejects(result, /closed/, what);
      syncs.release();
      // The file was verified at End: it is stored, as it was verified.
      await waitFor(() => Promise.resolve(srv.received.length === 1), `${what}: the stored file`);
      const [stored] = srv.received;
      assert.equal(stored.size, data.length, what);
      assert.equal(stored.sha256, sha256(data), what);
      assert.equal(sha256(await Deno.readFile(`${srv.dir}/${stored.path}`)), sha256(data), what);
      assert.deepEqual(await partials(srv.dir), [], what);
    } finally {
      syncs?.release();
      await srv.close();
    }
  }
});

Deno.test("while a held prefix is hashed for a resume, the server reads on: a Ping is answered before the Accept", async () => {
  const srv = await server();
  const alice = await generateIdentity();
  let reads: ReturnType<typeof holdFileCalls> | undefined;
  try {
    const data = bytes(0x65, 200_000);
    await interrupted(srv, alice, "alice", "resumed.bin", data, 120_000);
    const client = await srv.client("alice", alice);
    const upload = new RawUpload(client);
    reads = holdFileCalls("read");
    const accepted = upload.offer("resumed.bin", data.length);
    await reads.reached(accepted, "the held prefix was not read");
    await within(client.ping(), "the Ping waited for the prefix's hash");
    reads.release();
    const { offset, prefix } = await accepted;
    assert.equal(offset, 120_000);
    assert.equal(prefix, sha256(data.subarray(0, offset)));
    await upload.start(offset);
    await upload.data(data.subarray(offset));
    const result = await upload.end(data.length, sha256(data));
    assert.equal(result.status, "ok", JSON.stringify(result));
    assert.equal(sha256(await Deno.readFile(`${srv.dir}/${result.path}`)), sha256(data));
    client.close();
  } finally {
    reads?.release();
    await srv.close();
  }
});

Deno.test("a Start before its Offer is answered closes the connection; the held data stays", async () => {
  const srv = await server();
  const alice = await generateIdentity();
  let reads: ReturnType<typeof holdFileCalls> | undefined;
  try {
    const data = bytes(0x66, 100_000);
    await interrupted(srv, alice, "alice", "early.bin", data, 60_000);
    const client = await srv.client("alice", alice);
    const upload = new RawUpload(client);
    reads = holdFileCalls("read");
    const accepted = upload.offer("early.bin", data.length);
    await reads.reached(accepted, "the held prefix was not read");
    await upload.start(0).catch(() => {});
    await within(client.closed, "a Start before the Accept did not close the connection");
    reads.release();
    await assert.rejects(accepted, /closed/);
    // The resume's data is still held, whole, for the next try.
    await waitFor(async () => (await heldBytes(srv.dir)) === 60_000, "the held data");
    const again = new RawUpload(await srv.client("alice", alice));
    assert.deepEqual(await again.offer("early.bin", data.length), {
      offset: 60_000,
      prefix: sha256(data.subarray(0, 60_000)),
    });
  } finally {
    reads?.release();
    await srv.close();
  }
});

Deno.test("a connection's Offers are answered one after another: one held prefix is hashed at a time", async () => {
  const srv = await server();
  const alice = await generateIdentity();
  let reads: ReturnType<typeof holdFileCalls> | undefined;
  try {
    const one = bytes(0x67, 100_000);
    const two = bytes(0x68, 100_000);
    await interrupted(srv, alice, "alice", "one.bin", one, 40_000);
    await interrupted(srv, alice, "alice", "two.bin", two, 70_000);
    const client = await srv.client("alice", alice);
    const first = new RawUpload(client);
    const second = new RawUpload(client);
    reads = holdFileCalls("read");
    const answers = [first.offer("one.bin", one.length), second.offer("two.bin", two.length)];
    await reads.reached(Promise.all(answers), "the held prefix was not read");
    // Answered after both Offers were read: the second is waiting.
    await within(client.ping(), "the Ping waited for the prefix's hash");
    // The second Offer would read its own prefix within moments if it did
    // not wait for the first: it must not, however long we look.
    for (let look = 0; look < 20; look++) {
      assert.equal(reads.held(), 1, "two prefixes were hashed at once");
      await new Promise((r) => setTimeout(r, 25));
    }
    reads.release();
    assert.deepEqual(await answers[0], { offset: 40_000, prefix: sha256(one.subarray(0, 40_000)) });
    assert.deepEqual(await answers[1], { offset: 70_000, prefix: sha256(two.subarray(0, 70_000)) });
    client.close();
  } finally {
    reads?.release();
    await srv.close();
  }
});

Deno.test("a refused End frees its transfer: 20 bad hashes in a row, then a good upload, on one connection", async () => {
  const srv = await server();
  try {
    const client = await srv.client("alice");
    const data = bytes(0x69, 1000);
    // More than the 16 transfers a connection may have open at once.
    for (let i = 0; i < 20; i++) {
      const upload = new RawUpload(client);
      await upload.offer(`bad${i}.bin`, data.length);
      await upload.start(0);
      await upload.data(data);
      const result = await upload.end(data.length, sha256(bytes(0, 1000)));
      assert.equal(result.code, "bad-hash", JSON.stringify(result));
    }
    const good = new RawUpload(client);
    await good.offer("good.bin", data.length);
    await good.start(0);
    await good.data(data);
    const result = await good.end(data.length, sha256(data));
    assert.equal(result.status, "ok", JSON.stringify(result));
    assert.deepEqual(await walk(`${srv.dir}/alice`), ["good.bin"]);
    assert.deepEqual(await partials(srv.dir), []);
    client.close();
  } finally {
    await srv.close();
  }
});
