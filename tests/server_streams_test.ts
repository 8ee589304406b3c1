/**
 * The transport-agnostic server (createStreamServer) serving clients over
 * an in-memory pipe, with no socket anywhere; the ping service, against a
 * fake server too; and the registry's one-service-per-type rule.
 */

import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../lib/bytes.ts";
import { type ByteStream, SecureChannel } from "../lib/channel/channel.ts";
import { Connection } from "../lib/channel/connection.ts";
import { OvtpClient, responseText } from "../lib/client/client.ts";
import { OvtpError } from "../lib/errors.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import {
  decodeResponse,
  encodeJson,
  encodeResponse,
  type Message,
  MessageType,
} from "../lib/channel/messages.ts";
import { createStreamServer } from "../lib/server/server.ts";
import type { ServeOptions } from "../lib/server/types.ts";
import { PING_MESSAGE_TYPE, pingService } from "../lib/services/ping.ts";
import { byType, SERVICE_BY_TYPE, SERVICES } from "../lib/server/session.ts";
import { ChatRelay } from "../lib/services/chat/relay.ts";
import { RoomStore } from "../lib/services/chat/room_store.ts";
import { ChatSession } from "../lib/services/chat/chat_session.ts";
import { SILENT_LOGGER } from "../lib/logger.ts";
import { KeepAlive, keepAliveInterval } from "../lib/client/keep_alive.ts";
import { tempDir } from "./_tmp.ts";

/** One direction of the pipe; ending it ends the reader's stream. */
function direction() {
  let controller!: TransformStreamDefaultController<Uint8Array>;
  const stream = new TransformStream<Uint8Array, Uint8Array>(
    {
      start(c) {
        controller = c;
      },
    },
    undefined,
    { highWaterMark: 64 },
  );
  const end = () => {
    try {
      controller.terminate();
    } catch {
      // Already ended.
    }
  };
  return { stream, end };
}

/** Two ends of an in-memory pipe; closing either ends both directions, as a socket does. */
function memoryPipe(): { client: ByteStream; server: ByteStream } {
  const up = direction();
  const down = direction();
  const close = () => {
    up.end();
    down.end();
  };
  return {
    client: { readable: down.stream.readable, writable: up.stream.writable, close },
    server: { readable: up.stream.readable, writable: down.stream.writable, close },
  };
}

async function overPipe(options: Partial<ServeOptions> = {}) {
  const server = createStreamServer({
    identity: await generateIdentity(),
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: (request) => ({ response: `${request.peer.name} sent ${request.body.length}` }),
    ...options,
  });
  const pipe = memoryPipe();
  const served = server.serveStream(pipe.server, "memory");
  const connect = () =>
    OvtpClient.connect({
      hostname: "memory",
      port: 0,
      identity: clientIdentity,
      verifyHost: () => {}, // The test made the server: any key is its key.
      stream: pipe.client,
    });
  return { server, served, connect };
}

const clientIdentity = await generateIdentity();

Deno.test("a stream server serves a client over an in-memory pipe, and forgets it once closed", async () => {
  const { server, served, connect } = await overPipe({
    functions: { twice: ({ params }) => ({ response: params.word.repeat(2) }) },
  });
  const client = await connect();
  assert.equal(server.connections, 1);
  assert.equal(responseText(await client.request("hello")), "alice sent 5");
  assert.equal(responseText(await client.call("twice", { word: "ab" })), "abab");
  assert.equal((await client.call("thrice")).status, "unknown-function");
  client.close();
  await served;
  assert.equal(server.connections, 0);
  await server.close();
});

Deno.test("closing a stream server ends the connections it serves", async () => {
  const { server, served, connect } = await overPipe();
  const client = await connect();
  await server.close();
  await served;
  await client.closed;
  assert.ok(client.failure instanceof OvtpError && client.failure.kind === "network");
  assert.equal(server.connections, 0);
});

Deno.test("a stream server refuses a key its authorizer does not grant, as over TCP", async () => {
  const { server, served, connect } = await overPipe({
    authorize: () => Promise.resolve(undefined),
  });
  await assert.rejects(connect(), (error) => error instanceof OvtpError && error.kind === "trust");
  await served;
  await server.close();
});

Deno.test("ping answers with the server's clock", async () => {
  const { server, connect } = await overPipe();
  const client = await connect();
  const before = Date.now();
  const time = (await client.ping()).getTime();
  assert.ok(before <= time && time <= Date.now(), `${time} not in [${before}, now]`);
  client.close();
  await server.close();
});

Deno.test("ping needs no allow entry but counts against the key's rate limit", async () => {
  const options = { allow: ["upload"], rate: { count: 1, perMs: 60_000 } };
  const { server, connect } = await overPipe({
    authorize: () => Promise.resolve({ name: "backup", options }),
  });
  const client = await connect();
  await client.ping();
  // Refused for its permission, before a token is taken.
  assert.equal((await client.request("hi")).status, "forbidden");
  await assert.rejects(
    client.ping(),
    (error) =>
      error instanceof OvtpError && error.kind === "remote" && /Too many/.test(error.message),
  );
  assert.equal(client.failure, undefined, "a refused ping leaves the connection open");
  client.close();
  await server.close();
});

Deno.test("a ping that reaches a server shutting down is refused, not lost", async () => {
  const { server, connect } = await overPipe();
  const client = await connect();
  const closing = server.close(5_000);
  await assert.rejects(client.ping(), /shutting down/);
  await closing;
});

Deno.test("the registry gives each message type one service and refuses a second claim", () => {
  assert.equal(SERVICE_BY_TYPE.get(PING_MESSAGE_TYPE), pingService);
  const types = SERVICES.flatMap((service) => service.types);
  assert.equal(new Set(types).size, types.length);
  assert.throws(
    () => byType([...SERVICES, { ...pingService, name: "echo" }]),
    /Message type 19 is both ping and echo/,
  );
});

/**
 * A fake server over a pipe: a real handshake, a Welcome of `welcome`, then
 * `answer` for each message (none when it returns undefined).
 */
async function fakeServer(
  answer: (message: Message) => Message | undefined,
  welcome: Record<string, unknown> = { protocol: 1 },
) {
  const pipe = memoryPipe();
  const identity = await generateIdentity();
  const serving = SecureChannel.respond(pipe.server, { identity }).then((channel) => {
    const connection: Connection = new Connection(channel, {
      onMessage: (message) => {
        const reply = answer(message);
        if (reply) connection.send(reply);
      },
    });
    connection.send({ type: MessageType.Welcome, id: 0, body: encodeJson(welcome) });
    return connection.run().catch(() => {});
  });
  const client = await OvtpClient.connect({
    hostname: "memory",
    port: 0,
    identity: clientIdentity,
    verifyHost: () => {}, // The test made the server: any key is its key.
    stream: pipe.client,
  });
  return { client, serving };
}

Deno.test("a ping answered with anything but a time fails as a protocol error", async () => {
  for (const text of ["soon", "", "-1", "1e3", "99999999999999999"]) {
    const { client, serving } = await fakeServer((message) => ({
      type: MessageType.Response,
      id: message.id,
      body: encodeResponse({ status: "ok", response: utf8(text) }),
    }));
    await assert.rejects(
      client.ping(),
      (error) => error instanceof OvtpError && error.kind === "protocol",
      JSON.stringify(text),
    );
    client.close();
    await serving;
  }
});

Deno.test("a raw ping with a body is answered with the time; one with id 0 closes the connection", async () => {
  const { server, served, connect } = await overPipe();
  const client = await connect();
  // The body is ignored (docs/protocol.md section 7.3b): sent through the raw link.
  const id = client.link.nextId();
  const answered = Promise.withResolvers<Message>();
  client.link.subscribe(id, answered.resolve, answered.reject);
  await client.link.send({ type: PING_MESSAGE_TYPE, id, body: utf8("ignored") });
  const { status, response } = decodeResponse((await answered.promise).body);
  assert.equal(status, "ok");
  assert.match(fromUtf8(response), /^\d+$/);
  await client.link.send({ type: PING_MESSAGE_TYPE, id: 0, body: new Uint8Array(0) });
  await served;
  await client.closed;
  assert.ok(client.failure instanceof OvtpError);
  await server.close();
});

Deno.test("a connection opens a service's state at its first message for it, not before", async () => {
  const relay = new ChatRelay(new RoomStore(await tempDir()), SILENT_LOGGER);
  let opened = 0;
  const connect = relay.connect.bind(relay);
  relay.connect = (peer, send) => {
    opened++;
    return connect(peer, send);
  };
  const served = await overPipe({ chat: relay });
  const client = await served.connect();
  await client.request("hello");
  await client.ping();
  // Requests and pings only: the chat service's side was never made.
  assert.equal(opened, 0);
  const quiet = { onMessage() {}, onPresence() {}, onDropped() {} };
  await ChatSession.join(client, clientIdentity, { room: "lazy", display: "alice" }, quiet);
  assert.equal(opened, 1);
  client.close();
  await served.served;
  await served.server.close();
});

Deno.test("Welcome announces the idle timeout, in whole seconds rounded down (0: none)", async () => {
  for (const [idleTimeoutMs, seconds] of [[undefined, 300], [1500, 1], [400, 1], [0, 0]]) {
    const { server, served, connect } = await overPipe({ idleTimeoutMs });
    const client = await connect();
    // The raw Welcome is not kept: ask through what the client made of it.
    assert.equal(
      client.keepAliveIntervalMs,
      seconds ? Math.max(1000, seconds * 1000 / 3) : undefined,
    );
    client.close();
    await served;
    await server.close();
  }
  assert.equal(keepAliveInterval({ idle_timeout: 300 }), 100_000);
  for (
    const body of [{}, { idle_timeout: 0 }, { idle_timeout: "300" }, { idle_timeout: -1 }, null]
  ) {
    assert.equal(keepAliveInterval(body), undefined, JSON.stringify(body));
  }
});

Deno.test("a chat member's quiet connection outlives the idle timeout; a plain quiet client's does not", async () => {
  const relay = new ChatRelay(new RoomStore(await tempDir()), SILENT_LOGGER);
  const member = await overPipe({ idleTimeoutMs: 3000, chat: relay });
  const plain = await overPipe({ idleTimeoutMs: 3000 });
  const [memberClient, plainClient] = [await member.connect(), await plain.connect()];
  const session = await ChatSession.join(memberClient, clientIdentity, {
    room: "ops",
    display: "alice",
  }, { onMessage() {}, onPresence() {}, onDropped() {} });
  await new Promise((resolve) => setTimeout(resolve, 6500));
  assert.equal(memberClient.failure, undefined);
  assert.equal(await session.send("still here"), 0);
  assert.match(String(plainClient.failure), /closed/);
  memberClient.close();
  await Promise.all([member.served, plain.served]);
  await Promise.all([member.server.close(), plain.server.close()]);
});

Deno.test("a kept-alive connection to a server that stops answering ends as lost", async () => {
  const seen: number[] = [];
  const { client, serving } = await fakeServer((message) => {
    seen.push(message.type);
    return undefined; // Never answers: a server stopped, or a path gone dead.
  }, { protocol: 1, idle_timeout: 3 });
  client.keepAlive();
  // The keep-alive's timer does not hold the process open (a socket's read
  // does, but a memory pipe has none): this one does, until the end.
  const hold = setTimeout(() => {}, 10_000);
  await client.closed;
  clearTimeout(hold);
  assert.deepEqual(seen, [PING_MESSAGE_TYPE]);
  assert.ok(client.failure instanceof OvtpError && client.failure.kind === "network");
  assert.match(client.failure.message, /^The server stopped answering \(nothing for \d+ s\)$/);
  await serving;
});

Deno.test("keepAlive() sends nothing to a server that announces no idle timeout (it may not know Ping)", async () => {
  const seen: number[] = [];
  const { client, serving } = await fakeServer((message) => {
    seen.push(message.type);
    return undefined;
  });
  client.keepAlive();
  assert.equal(client.keepAliveIntervalMs, undefined);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.deepEqual(seen, []);
  assert.equal(client.failure, undefined);
  client.close();
  await serving;
});

Deno.test("a keep-alive waits out a server still streaming and a client that does not read; it fails a silent one", async () => {
  const INTERVAL = 200;
  // Each link: its ping is never answered; only what the reader saw differs.
  const outcome = async (
    waitingSince: () => number | undefined,
    writingSince: () => number | undefined = () => undefined,
  ) => {
    let failure: OvtpError | undefined;
    const keepAlive = new KeepAlive(INTERVAL, {
      lastSendAt: () => 0,
      waitingSince,
      writingSince,
      ping: () => new Promise(() => {}),
      fail: (error) => failure = error,
    });
    await new Promise((resolve) => setTimeout(resolve, INTERVAL * 5));
    keepAlive.stop();
    return failure?.message;
  };
  const started = Date.now();
  const [streaming, paused, silent, notReading] = await Promise.all([
    outcome(() => Date.now() - 10), // Bytes keep coming: a download behind the ping's answer.
    outcome(() => undefined), // The client itself stopped reading (its output stalled).
    outcome(() => started), // Waiting for bytes, and none came.
    outcome(() => started, () => started), // And an upload's write stuck since before the Ping.
  ]);
  assert.equal(streaming, undefined);
  assert.equal(paused, undefined);
  assert.match(silent ?? "", /^The server stopped answering \(nothing for \d+ s\)$/);
  assert.match(
    notReading ?? "",
    /^The server stopped reading and answering \(nothing for \d+ s\): it is gone, or its disk stalled$/,
  );
});
