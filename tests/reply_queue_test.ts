import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { OvtpClient, responseText } from "../lib/client/client.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import { encodeJson, type Message } from "../lib/channel/messages.ts";
import { serve } from "../lib/server/server.ts";
import { DownloadMessageType } from "../lib/services/transfer/download_messages.ts";
import { MAX_HELD_REPLIES, ReplyQueue } from "../lib/client/message_link.ts";
import { ServedFolder } from "../lib/services/transfer/served_folder.ts";

function reply(n: number): Message {
  return { type: DownloadMessageType.Data, id: 1, body: new Uint8Array([n]) };
}

Deno.test("ReplyQueue pushes back once MAX_HELD_REPLIES wait, until one is taken", async () => {
  const queue = new ReplyQueue();
  for (let n = 1; n < MAX_HELD_REPLIES; n++) assert.equal(queue.push(reply(n)), undefined);
  const paused = queue.push(reply(MAX_HELD_REPLIES));
  assert.ok(paused, "the queue did not ask the reader to wait");
  let resumed = false;
  paused.then(() => resumed = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(resumed, false);
  assert.equal(queue.held, MAX_HELD_REPLIES);
  assert.deepEqual((await queue.next()).body, new Uint8Array([1]));
  await paused;
  // A reply handed straight to a waiting reader never pushes back.
  const empty = new ReplyQueue();
  const waiting = empty.next();
  assert.equal(empty.push(reply(9)), undefined);
  assert.deepEqual((await waiting).body, new Uint8Array([9]));
});

Deno.test("ReplyQueue resumes a paused reader when the connection fails", async () => {
  const queue = new ReplyQueue();
  let paused: Promise<void> | undefined;
  for (let n = 1; n <= MAX_HELD_REPLIES; n++) paused = queue.push(reply(n));
  assert.ok(paused);
  queue.fail(new Error("gone"));
  await paused;
  assert.equal(queue.push(reply(0)), undefined);
});

Deno.test("a client whose subscriber stops reading pauses, and resumes once it unsubscribes", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/a.txt`, "hello");
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({ response: "pong" }),
    served: new ServedFolder(dir),
  });
  const client = await OvtpClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    identity: await generateIdentity(),
    verifyHost: () => {},
  });
  try {
    const link = client.link;
    const id = link.nextId();
    const got = Promise.withResolvers<void>();
    // A subscriber that never lets go of its first message: reading pauses.
    const unsubscribe = link.subscribe(id, () => {
      got.resolve();
      return new Promise(() => {});
    }, () => {});
    await link.send({
      type: DownloadMessageType.Get,
      id,
      body: encodeJson({ path: "a.txt", offset: 0, prefix_sha256: null }),
    });
    await got.promise;
    const answer = client.request("ping");
    let answered = false;
    answer.then(() => answered = true, () => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(answered, false, "the client kept reading past a paused subscriber");
    // The rest of the download goes to a subscriber that takes it.
    unsubscribe();
    link.subscribe(id, () => {}, () => {});
    assert.equal(responseText(await answer), "pong");
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
