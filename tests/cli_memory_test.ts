/**
 * A hostile client built on the library writes raw records to the real
 * `ovtp listen`: what one connection can make the server hold stays within
 * its limits (issue 11, invariant 2). Each flood must end in a protocol
 * error naming the broken bound and a closed connection, and the server
 * must then serve a valid client.
 */

import assert from "node:assert/strict";
import { SecureChannel } from "../lib/channel/channel.ts";
import { Keystore } from "../lib/identity/keystore.ts";
import { MAX_RECORD_PLAINTEXT } from "../lib/channel/channel.ts";
import { MessageType } from "../lib/channel/messages.ts";
import { homeWithIdentity, type Listener, ovtp, startListen } from "./_cli.ts";
import {
  FRAGMENT_HEADER_LENGTH,
  MAX_HELD_FRAGMENTS,
  MAX_MESSAGE_FRAGMENTS,
} from "../lib/channel/connection.ts";

const CONTINUES = 0x80;

/** Fragments of `length` bytes packed into records; `idOf(i)` names the i-th one's message. */
function records(count: number, length: number, idOf: (i: number) => number): Uint8Array[] {
  const size = FRAGMENT_HEADER_LENGTH + length;
  const perRecord = Math.floor(MAX_RECORD_PLAINTEXT / size);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i += perRecord) {
    const n = Math.min(perRecord, count - i);
    const record = new Uint8Array(n * size);
    const view = new DataView(record.buffer);
    for (let k = 0; k < n; k++) {
      view.setUint8(k * size, MessageType.Request | CONTINUES);
      view.setUint32(k * size + 1, idOf(i + k));
      view.setUint16(k * size + 5, length);
      record.fill(0x61, k * size + FRAGMENT_HEADER_LENGTH, (k + 1) * size);
    }
    out.push(record);
  }
  return out;
}

/**
 * Connects as the client of `home`, reads the Welcome, writes `flood`, and
 * returns once the server has closed the connection (failing if it has not
 * after every record was written).
 */
async function flood(listener: Listener, home: string, flood: Uint8Array[]): Promise<void> {
  const identity = await new Keystore(home).loadIdentity(() => Promise.resolve(""));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
  const channel = await SecureChannel.initiate(conn, { identity });
  try {
    assert.ok(await channel.receive(), "no Welcome");
    let closedEarly = false;
    for (const record of flood) {
      try {
        await channel.send(record);
      } catch {
        closedEarly = true; // The server closed while we were writing.
        break;
      }
    }
    // Nothing more comes: the server closes without an answer (section 9).
    // A server that keeps the connection fails the test instead of hanging it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([
      channel.receive().catch(() => null),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("still open"), 15_000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(next, null, `the server did not close the connection: ${next}`);
    assert.ok(closedEarly || flood.length > 0);
  } finally {
    channel.close();
  }
}

async function withServer(
  allow: string[],
  run: (listener: Listener, client: string, valid: string) => Promise<void>,
): Promise<void> {
  const [server, hostile, valid] = await Promise.all([
    homeWithIdentity("server"),
    homeWithIdentity("mallory"),
    homeWithIdentity("alice"),
  ]);
  for (const [line, extra] of [[hostile.line, allow], [valid.line, []]] as const) {
    const added = await ovtp(["add-key", line, ...extra], { home: server.home });
    assert.equal(added.code, 0, added.stderr);
  }
  const listener = await startListen(server.home);
  try {
    await run(listener, hostile.home, valid.home);
    // The server still serves a valid client.
    const sent = await ovtp(["send", listener.target, "still there?"], { home: valid.home });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(listener.stdout(), /still there\?/);
  } finally {
    await listener.stop();
  }
}

Deno.test("listen refuses records of empty continued fragments, even from a download-only key at 1/d", async () => {
  await withServer(["--allow", "download", "--rate", "1/d"], async (listener, hostile) => {
    // 20 records of 9,359 empty fragments each: today's server held them all.
    await flood(listener, hostile, records(20 * 9359, 0, () => 1));
    await listener.waitFor(
      /connection closed: Protocol error: Empty continued fragment of message 1/,
    );
  });
});

Deno.test("listen refuses a message of more fragments than the limit, one byte each", async () => {
  await withServer([], async (listener, hostile) => {
    await flood(listener, hostile, records(MAX_MESSAGE_FRAGMENTS + 10, 1, () => 7));
    await listener.waitFor(
      `connection closed: Protocol error: Message 7 spans more than ${MAX_MESSAGE_FRAGMENTS} fragments`,
    );
  });
});

Deno.test("listen refuses tiny fragments spread over many messages in progress", async () => {
  await withServer([], async (listener, hostile) => {
    // 64 messages in progress (the limit), 65 fragments each: more than
    // MAX_HELD_FRAGMENTS together although each message is far below its own limit.
    await flood(listener, hostile, records(64 * 65, 1, (i) => 1 + (i % 64)));
    await listener.waitFor(
      `connection closed: Protocol error: Messages in progress hold more than ${MAX_HELD_FRAGMENTS} fragments together`,
    );
  });
});

Deno.test("listen refuses a 65th message in progress", async () => {
  await withServer([], async (listener, hostile) => {
    await flood(listener, hostile, records(65, 1, (i) => 100 + i));
    await listener.waitFor("connection closed: Protocol error: Too many messages in progress");
  });
});
