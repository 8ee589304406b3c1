import assert from "node:assert/strict";
import { SecureChannel } from "../lib/channel/channel.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import { releaseOpened, takeOpened } from "../lib/channel/_bulk_buffers.ts";
import { MAX_BULK_PLAINTEXT } from "../lib/channel/channel.ts";
import { testEachBackend } from "./_backends.ts";

// Two channels over a real loopback TCP connection, through the sockets'
// own read() and write(): the path on which sealed buffers are pooled.
async function tcpPair(): Promise<[SecureChannel, SecureChannel]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
    listener.accept(),
  ]);
  listener.close();
  return await Promise.all([
    SecureChannel.initiate(client, { identity: await generateIdentity() }),
    SecureChannel.respond(server, { identity: await generateIdentity() }),
  ]);
}

function filled(size: number, seed: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * 7 + seed) & 0xff);
}

testEachBackend(
  "a bulk plaintext kept by the receiver is never overwritten by the next records",
  async () => {
    const [a, b] = await tcpPair();
    const bodies = [1, 2, 3, 4, 5, 6].map((seed) => filled(MAX_BULK_PLAINTEXT - seed, seed));
    // The sender reuses one buffer for every body: send() must have sealed
    // it before it resolves, whatever is still being written.
    const reused = new Uint8Array(MAX_BULK_PLAINTEXT);
    const sending = (async () => {
      for (const body of bodies) {
        reused.set(body);
        await a.send(Uint8Array.of(body.length & 0xff), [reused.subarray(0, body.length)]);
        reused.fill(0xee);
      }
    })();
    const kept: Uint8Array[] = [];
    for (const body of bodies) {
      assert.deepEqual(await b.receive(), Uint8Array.of(body.length & 0xff));
      kept.push(await b.receiveBulk(body.length));
    }
    await sending;
    // None given back: every one still holds its own record.
    kept.forEach((plaintext, i) => assert.deepEqual(plaintext, bodies[i]));
    a.close();
    b.close();
  },
);

testEachBackend("a bulk plaintext given back is reused; one never lent is left alone", async () => {
  const [a, b] = await tcpPair();
  await a.send(Uint8Array.of(1), [filled(100_000, 1)]);
  await b.receive();
  const first = await b.receiveBulk(100_000);
  releaseOpened(first);
  releaseOpened(first); // A second release must not put it in the pool twice.
  await a.send(Uint8Array.of(2), [filled(200_000, 2)]);
  await b.receive();
  const second = await b.receiveBulk(200_000);
  assert.equal(second.buffer, first.buffer);
  assert.deepEqual(second, filled(200_000, 2));
  // Two takes after one release: different buffers.
  assert.notEqual(takeOpened(10).buffer, takeOpened(10).buffer);
  // A buffer of the pool's size that was never lent never enters it.
  const own = new Uint8Array(MAX_BULK_PLAINTEXT);
  releaseOpened(own);
  assert.notEqual(takeOpened(10).buffer, own.buffer);
  a.close();
  b.close();
});

testEachBackend("a bulk record that fails authentication is refused as tampered with", async () => {
  const [a, b] = await tcpPair();
  await a.send(Uint8Array.of(1), [filled(70_000, 3)]);
  await b.receive();
  // Asking for one byte less misreads the record: its tag cannot verify.
  await assert.rejects(b.receiveBulk(70_000 - 1), { name: "OvtpError", message: /authentication/ });
  a.close();
  b.close();
});
