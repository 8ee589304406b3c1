import assert from "node:assert/strict";
import { MAX_BULK_PLAINTEXT, SecureChannel } from "../lib/channel/channel.ts";
import { Connection, MAX_FRAGMENT_BODY } from "../lib/channel/connection.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import type { Message } from "../lib/channel/messages.ts";

const [ALICE, BOB] = await Promise.all([generateIdentity(), generateIdentity()]);

/** A body whose bytes depend on its length and seed, so mix-ups show. */
function body(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed + (i >> 12)) & 0xff);
}

/**
 * Two Connections over a real loopback socket; the server's side records
 * what it receives and how many bytes came over the wire.
 */
async function connectionPair(): Promise<{
  client: Connection;
  received: Message[];
  done: Promise<void>;
  close(): void;
}> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const [serverConn, clientConn] = await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port }),
  ]);
  listener.close();
  const [serverChannel, clientChannel] = await Promise.all([
    SecureChannel.respond(serverConn, { identity: BOB }),
    SecureChannel.initiate(clientConn, { identity: ALICE }),
  ]);
  const received: Message[] = [];
  const server = new Connection(serverChannel, {
    onMessage: (message) => void received.push({ ...message, body: message.body.slice() }),
  });
  const client = new Connection(clientChannel, { onMessage: () => {} });
  const done = server.run();
  client.run().catch(() => {});
  return {
    client,
    received,
    done,
    close() {
      client.close();
      server.close();
    },
  };
}

Deno.test("Connection delivers small, bulk and fragmented messages in the order they were sent", async () => {
  const pair = await connectionPair();
  const sizes = [
    5,
    MAX_FRAGMENT_BODY, // one fragment
    MAX_FRAGMENT_BODY + 1, // the smallest bulk record
    0,
    MAX_BULK_PLAINTEXT, // the largest bulk record
    MAX_BULK_PLAINTEXT + 1, // too large for one: fragments
    300_000,
  ];
  const messages = sizes.map((size, i) => ({ type: 0x23, id: i + 1, body: body(size, i) }));
  await Promise.all(messages.map((message) => pair.client.send(message)));
  pair.client.close();
  await pair.done;
  assert.deepEqual(
    pair.received.map((m) => [m.id, m.body.length]),
    sizes.map((n, i) => [i + 1, n]),
  );
  pair.received.forEach((m, i) => assert.deepEqual(m, messages[i], `message ${i + 1}`));
});

Deno.test("Connection.send() refuses 0x7f, the bulk notice's type, with RangeError", async () => {
  const pair = await connectionPair();
  await assert.rejects(pair.client.send({ type: 0x7f, id: 1, body: body(1, 0) }), {
    name: "RangeError",
    message: "Invalid message type 127",
  });
  pair.close();
  await pair.done.catch(() => {});
});

Deno.test("Connection sends a message that fits one bulk record as a bulk notice and that record", async () => {
  // A stand-in channel that records what the connection hands it.
  const sent: { record: Uint8Array; bulk: Uint8Array[] }[] = [];
  const channel = {
    send(record: Uint8Array, bulk: readonly Uint8Array[] = []) {
      sent.push({ record: record.slice(), bulk: [...bulk] });
      return Promise.resolve();
    },
    close() {},
  } as unknown as SecureChannel;
  const connection = new Connection(channel, { onMessage: () => {} });
  const bulk = body(70_000, 1);
  await connection.send({ type: 0x23, id: 9, body: bulk });
  await connection.send({ type: 0x23, id: 10, body: body(MAX_BULK_PLAINTEXT + 1, 2) });
  assert.equal(sent.length, 1 + 17);
  assert.deepEqual(
    sent[0].record,
    new Uint8Array([0x7f, 0, 0, 0, 9, 0, 5, 0x23, 0, 1, 0x11, 0x70]),
  );
  assert.deepEqual(sent[0].bulk, [bulk]);
  // 1 MiB + 1 byte is 17 fragments of at most MAX_FRAGMENT_BODY, no bulk record.
  assert.ok(sent.slice(1).every(({ bulk }) => bulk.length === 0));
  assert.deepEqual(sent[1].record.subarray(0, 7), new Uint8Array([0xa3, 0, 0, 0, 10, 0xff, 0xe8]));
  connection.close();
});
