import assert from "node:assert/strict";
import { SecureChannel } from "../lib/channel/channel.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import { MessageType } from "../lib/channel/messages.ts";
import { serve } from "../lib/server/server.ts";
import { MAX_REQUESTS_IN_FLIGHT } from "../lib/server/session.ts";
import { WORK_OVERHEAD, WorkGate } from "../lib/server/_work_gate.ts";
import {
  FRAGMENT_HEADER_LENGTH,
  isBulkNotice,
  MessageAssembler,
} from "../lib/channel/connection.ts";

Deno.test("WorkGate asks to wait at either bound and wakes the reader when work ends", async () => {
  const gate = new WorkGate(2, 10 * WORK_OVERHEAD);
  const first = Promise.withResolvers<void>();
  const second = Promise.withResolvers<void>();
  assert.equal(gate.run(0, first.promise), undefined);
  const wait = gate.run(5, second.promise);
  assert.ok(wait, "two pieces of work reach a count of 2");
  assert.deepEqual(gate.held, { count: 2, bytes: 2 * WORK_OVERHEAD + 5 });
  let woken = false;
  wait.then(() => woken = true);
  first.reject(new Error("a failed piece frees its place too"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(woken);
  assert.deepEqual(gate.held, { count: 1, bytes: WORK_OVERHEAD + 5 });
  second.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(gate.held, { count: 0, bytes: 0 });
  // The byte bound: one large body fills it alone; empty ones are charged the overhead.
  const big = new WorkGate(100, 10 * WORK_OVERHEAD);
  assert.ok(big.run(9 * WORK_OVERHEAD, new Promise(() => {})));
  const small = new WorkGate(100, 10 * WORK_OVERHEAD);
  for (let i = 0; i < 9; i++) assert.equal(small.run(0, new Promise(() => {})), undefined);
  assert.ok(small.run(0, new Promise(() => {})));
});

Deno.test("the server runs at most MAX_REQUESTS_IN_FLIGHT requests of one connection, then answers all", async () => {
  let started = 0;
  const release = Promise.withResolvers<void>();
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "mallory" }),
    handler: async () => {
      started++;
      await release.promise;
      return { response: "done" };
    },
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const channel = await SecureChannel.initiate(conn, { identity: await generateIdentity() });
  try {
    const total = MAX_REQUESTS_IN_FLIGHT + 100;
    // One record of `total` empty Requests, ids 1..total.
    const record = new Uint8Array(total * FRAGMENT_HEADER_LENGTH);
    const view = new DataView(record.buffer);
    for (let i = 0; i < total; i++) {
      view.setUint8(i * FRAGMENT_HEADER_LENGTH, MessageType.Request);
      view.setUint32(i * FRAGMENT_HEADER_LENGTH + 1, i + 1);
    }
    await channel.send(record);
    while (started < MAX_REQUESTS_IN_FLIGHT) await new Promise((r) => setTimeout(r, 10));
    // Reading has paused: no more handlers start while these run.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(started, MAX_REQUESTS_IN_FLIGHT);
    release.resolve();
    const assembler = new MessageAssembler(1 << 20);
    const answered = new Set<number>();
    while (answered.size < total) {
      const plaintext = await channel.receive();
      assert.ok(plaintext, "the server closed the connection");
      for (const item of assembler.push(plaintext)) {
        assert.ok(!isBulkNotice(item));
        if (item.type === MessageType.Response) answered.add(item.id);
      }
    }
    assert.equal(started, total);
  } finally {
    channel.close();
    await server.close();
  }
});
