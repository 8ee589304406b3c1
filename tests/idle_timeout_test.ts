/**
 * The server's idle timeout closes connections where nothing happens, not
 * ones where the server is still working for the client: a request slower
 * than the timeout is answered, and a download read slowly runs to its
 * end. A download the client stops reading is still cut, pings or not,
 * so that a client cannot hold the server's file and buffers by not
 * reading.
 */

import assert from "node:assert/strict";
import { concat } from "../lib/bytes.ts";
import { OvtpClient, responseText } from "../lib/client/client.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import type { Logger } from "../lib/logger.ts";
import { serve } from "../lib/server/server.ts";
import type { ServeOptions } from "../lib/server/types.ts";
import { ServedFolder } from "../lib/services/transfer/served_folder.ts";
import { tempDir } from "./_tmp.ts";

const IDLE_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server over TCP with a 1 s idle timeout, the warnings it logs, and one client. */
async function idleServer(options: Partial<ServeOptions>) {
  const warnings: string[] = [];
  const logger: Logger = { info() {}, warn: (message) => warnings.push(message) };
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({}),
    idleTimeoutMs: IDLE_MS,
    logger,
    ...options,
  });
  const client = await OvtpClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    identity: await generateIdentity(),
    verifyHost: () => {}, // The test made the server: any key is its key.
  });
  return { server, client, warnings };
}

Deno.test("a request answered after more than the idle timeout is answered; the quiet connection then closes", async () => {
  const { server, client, warnings } = await idleServer({
    handler: async () => {
      await sleep(IDLE_MS * 2.5);
      return { response: "late" };
    },
  });
  try {
    assert.equal(responseText(await client.request("slow")), "late");
    assert.equal(client.failure, undefined);
    // Nothing in flight any more: now it is idle.
    await client.closed;
    assert.match(String(client.failure), /closed/);
    assert.deepEqual(await logged(warnings), [
      `connection closed: Idle for ${IDLE_MS} ms; closing`,
    ]);
  } finally {
    client.close();
    await server.close();
  }
});

/** `warnings` once the server has logged one (its log may come after the client saw the close). */
async function logged(warnings: string[], waitMs = 2000): Promise<string[]> {
  for (const end = Date.now() + waitMs; Date.now() < end && warnings.length === 0;) await sleep(20);
  return warnings;
}

// More than the socket buffers and the client's held replies together, so
// that the server writes until the end while the client reads slowly.
const FILE_SIZE = 24 * 1024 * 1024;

async function servedFile(): Promise<{ served: ServedFolder; content: Uint8Array }> {
  const dir = await tempDir();
  const content = new Uint8Array(FILE_SIZE);
  for (let i = 0; i < FILE_SIZE; i += 65536) crypto.getRandomValues(content.subarray(i, i + 65536));
  await Deno.writeFile(`${dir}/big`, content);
  return { served: new ServedFolder(dir), content };
}

Deno.test("a download read slowly for longer than the idle timeout arrives whole", async () => {
  const { served, content } = await servedFile();
  const { server, client, warnings } = await idleServer({ served });
  try {
    const chunks: Uint8Array[] = [];
    const started = Date.now();
    const got = await client.streamFile("big", {
      async write(bytes) {
        chunks.push(bytes.slice());
        // Each pause is under the idle timeout; all of them, well over it.
        await sleep(IDLE_MS * 0.15);
      },
    });
    assert.ok(Date.now() - started > IDLE_MS * 2, "the download was not slower than the timeout");
    assert.equal(got.size, FILE_SIZE);
    assert.deepEqual(concat(...chunks), content);
    // The server may close the connection as idle once it has written the
    // end (the client then still reads what the sockets hold): never before.
    assert.deepEqual(warnings.filter((warning) => !warning.includes("Idle for")), []);
  } finally {
    client.close();
    await server.close();
  }
});

for (const pinging of [false, true]) {
  Deno.test(
    `a download the client stops reading is cut after the idle timeout${
      pinging ? ", even while it pings" : ""
    }`,
    async () => {
      const { served } = await servedFile();
      const { server, client, warnings } = await idleServer({ served });
      let pings: ReturnType<typeof setInterval> | undefined;
      try {
        let received = 0;
        // The first chunk is taken, then nothing more: a reader that hangs (its
        // client reads nothing more either, so only the server's log tells).
        client.streamFile("big", {
          write(bytes) {
            received += bytes.length;
            return received > bytes.length ? new Promise(() => {}) : Promise.resolve();
          },
        });
        // The server then hears from the client, which still does not read.
        if (pinging) pings = setInterval(() => client.ping().catch(() => {}), IDLE_MS / 5);
        assert.deepEqual(await logged(warnings, 10_000), [
          `connection closed: The peer read nothing for ${IDLE_MS} ms; closing`,
        ]);
      } finally {
        clearInterval(pings);
        client.close();
        await server.close();
      }
    },
  );
}

Deno.test("a quiet connection's idle timer waits: no timer spins while nothing happens", async () => {
  const { server, client } = await idleServer({});
  const original = globalThis.setTimeout;
  const delays: number[] = [];
  // Every timer set in this process meanwhile (both ends run here).
  globalThis.setTimeout = ((handler: () => void, delay?: number) => {
    delays.push(delay ?? 0);
    return original(handler, delay);
  }) as typeof setTimeout;
  try {
    assert.equal(responseText(await client.request("hi")), "");
    await sleep(IDLE_MS * 0.6);
  } finally {
    globalThis.setTimeout = original;
  }
  try {
    assert.deepEqual(delays.filter((delay) => !Number.isFinite(delay)), []);
    // The request re-arms it once or twice; a spinning timer would be hundreds.
    assert.ok(delays.length < 20, `${delays.length} timers: ${delays.slice(0, 10)}`);
  } finally {
    client.close();
    await server.close();
  }
});
