import assert from "node:assert/strict";
import { assertOneError, assertStoppedCleanly, makePair, ovtp, startListen } from "./_cli.ts";

/** Offsets in the client-to-server byte stream of ovtp/1. */
const MESSAGE1_FRAME = 2 + 1216;
const MESSAGE3_FRAME = 2 + 64 + 96;

async function rawConnect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

/**
 * Reads until the server closes the connection; returns the bytes read.
 * Reading to the end releases the connection, so callers do not close it.
 */
async function readToEnd(conn: Deno.Conn): Promise<number> {
  let total = 0;
  try {
    for await (const chunk of conn.readable) total += chunk.length;
  } catch {
    // A reset counts as closed.
  }
  return total;
}

/**
 * A TCP proxy that flips one byte at `offset` of the stream in one
 * direction, as a tampering network would.
 */
function flippingProxy(target: number, direction: "up" | "down", offset: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    for await (const inbound of listener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port: target });
      const flip = () => {
        let seen = 0;
        return new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            if (offset >= seen && offset < seen + chunk.length) {
              chunk = chunk.slice();
              chunk[offset - seen] ^= 0x01;
            }
            seen += chunk.length;
            controller.enqueue(chunk);
          },
        });
      };
      const pass = () => new TransformStream<Uint8Array, Uint8Array>();
      inbound.readable.pipeThrough(direction === "up" ? flip() : pass())
        .pipeTo(outbound.writable).catch(() => {});
      outbound.readable.pipeThrough(direction === "down" ? flip() : pass())
        .pipeTo(inbound.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await done;
    },
  };
}

Deno.test("random bytes to the listen port are logged, and the next client is served", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  try {
    const conn = await rawConnect(listener.port);
    const junk = new Uint8Array(4096);
    crypto.getRandomValues(junk);
    junk[0] = 0x05; // length 1281: over the 1216..1280 bytes message 1 may have
    junk[1] = 0x01;
    await conn.write(junk).catch(() => {});
    await readToEnd(conn);
    await listener.waitFor(
      /handshake failed: .*Frame length 1281 is outside the allowed 1216\.\.1280/,
    );
    const sent = await ovtp(["send", listener.target, "still there?"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
  } finally {
    assertStoppedCleanly(await listener.stop());
  }
});

Deno.test("an oversized frame length is refused before its body arrives", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  try {
    const conn = await rawConnect(listener.port);
    // Announce 65,535 bytes and send none: the server must not wait for them.
    await conn.write(new Uint8Array([0xff, 0xff]));
    assert.equal(await readToEnd(conn), 0);
    await listener.waitFor(/handshake failed: .*Frame length 65535 is outside/);
    const sent = await ovtp(["send", listener.target, "ok"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
  } finally {
    await listener.stop();
  }
});

Deno.test("a client that connects and sends nothing is dropped after the handshake timeout", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["--handshake-timeout", "0.5"]);
  try {
    const conn = await rawConnect(listener.port);
    // The server closes the connection: the read ends instead of hanging.
    assert.equal(await readToEnd(conn), 0);
    await listener.waitFor(/handshake failed: The handshake timed out after 500 ms/);
    const sent = await ovtp(["send", listener.target, "ok"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
  } finally {
    await listener.stop();
  }
});

Deno.test("a byte flipped in a request fails cleanly and nothing reaches the handler", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  const proxy = flippingProxy(listener.port, "up", MESSAGE1_FRAME + MESSAGE3_FRAME + 10);
  try {
    const sent = await ovtp(["send", `127.0.0.1:${proxy.port}`, "transfer $100"], {
      home: client.home,
    });
    assert.equal(sent.code, 3);
    assertOneError(sent, /The server closed the connection before answering/);
    await listener.waitFor(/connection closed: .*failed authentication/);
    assert.equal(listener.stdout(), "");
    // The server carries on for everyone else.
    const direct = await ovtp(["send", listener.target, "direct"], { home: client.home });
    assert.equal(direct.code, 0, direct.stderr);
  } finally {
    await proxy.close();
    await listener.stop();
  }
});

Deno.test("a byte flipped in the server's handshake message makes the client refuse it", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  // Inside message 2's encrypted ML-KEM ciphertext.
  const proxy = flippingProxy(listener.port, "down", 2 + 32 + 100);
  try {
    const sent = await ovtp(["send", `127.0.0.1:${proxy.port}`, "hello"], { home: client.home });
    assert.equal(sent.code, 3);
    assertOneError(sent, /Handshake failed: a message failed authentication/);
    assert.equal(listener.stdout(), "");
    // Nothing was recorded for a host that failed the handshake.
    await assert.rejects(Deno.stat(`${client.home}/known_hosts`), Deno.errors.NotFound);
  } finally {
    await proxy.close();
    await listener.stop();
  }
});

Deno.test("a server that accepts but never answers makes send time out, exit 3", async () => {
  const { client } = await makePair();
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })().catch(() => {});
  try {
    const port = (silent.addr as Deno.NetAddr).port;
    const sent = await ovtp(["send", "--timeout", "0.5", `127.0.0.1:${port}`, "x"], {
      home: client.home,
    });
    assert.equal(sent.code, 3);
    assertOneError(
      sent,
      /Cannot connect to 127\.0\.0\.1:\d+: the handshake timed out after 500 ms/,
    );
  } finally {
    silent.close();
    for (const conn of held) conn.close();
    await accepting;
  }
});

Deno.test("a server that dies mid-request is reported as closed before answering", async () => {
  const { server, client } = await makePair();
  // The command kills its parent: the listen process itself.
  const listener = await startListen(server.home, ["--exec", "kill -KILL $PPID"]);
  try {
    const sent = await ovtp(["send", listener.target, "x"], { home: client.home });
    assert.equal(sent.code, 3);
    assertOneError(sent, /^ovtp: error: The server closed the connection before answering$/);
    assert.equal(sent.stdout, "");
  } finally {
    await listener.stop();
  }
});
