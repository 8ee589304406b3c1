import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { concat, toHex, utf8 } from "../lib/bytes.ts";
import { SecureChannel } from "../lib/channel/channel.ts";
import { OvtpClient } from "../lib/client/client.ts";
import { OvtpError } from "../lib/errors.ts";
import { generateIdentity, type Identity, samePublicKey } from "../lib/identity/keys.ts";
import { Keystore } from "../lib/identity/keystore.ts";
import type { Logger } from "../lib/logger.ts";
import { MessageType } from "../lib/channel/messages.ts";
import { codeScalar, formatCode, parseCode } from "../lib/pair/code.ts";
import { pair } from "../lib/pair/initiator.ts";
import { InviteStore } from "../lib/pair/invites.ts";
import { PairingResponder } from "../lib/pair/responder.ts";
import { scalarBytes, Spake2 } from "../lib/pair/spake2.ts";
import {
  PAIR_INTENT,
  pairContext,
  PairMessageType,
  readPairMessage,
  sendPairMessage,
} from "../lib/pair/wire.ts";
import { serve } from "../lib/server/server.ts";
import { encodeFragments } from "../lib/channel/connection.ts";

const SERVER = await generateIdentity();

/** A server with pairing, an empty authorized_keys, and a log kept in memory. */
async function pairingServer(options: { rate?: { count: number; perMs: number } } = {}) {
  const keystore = new Keystore(await tempDir());
  const invites = new InviteStore(keystore);
  const log: string[] = [];
  const logger: Logger = {
    info: (message) => log.push(message),
    warn: (message) => log.push(message),
  };
  const server = serve({
    identity: SERVER,
    hostname: "127.0.0.1",
    port: 0,
    logger,
    authorize: async (key) => {
      const { entries } = await keystore.readAuthorizedKeys();
      const entry = entries.find((e) => samePublicKey(e.key, key));
      return entry && { name: entry.name };
    },
    handler: () => ({ response: "ok" }),
    pairing: new PairingResponder({ invites, rate: options.rate }),
  });
  const open = (identity: Identity, intent = PAIR_INTENT) =>
    Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }).then((conn) =>
      SecureChannel.initiate(conn, { identity, intent })
    );
  const dial = () => Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  return { server, keystore, invites, log, open, dial };
}

Deno.test("pair() authorizes the client and returns the server's key", async () => {
  const s = await pairingServer();
  const client = await generateIdentity();
  const { code } = await s.invites.create({ name: "alice" });
  const result = await pair({ stream: await s.dial(), identity: client, code });
  assert.deepEqual(result.serverKey, SERVER.publicKey);
  assert.deepEqual({ name: result.name, added: result.added }, { name: "alice", added: true });
  // The key now opens an ordinary session.
  const session = await OvtpClient.connect({
    hostname: "127.0.0.1",
    port: s.server.addr.port,
    identity: client,
  });
  session.close();
  await s.server.close();
});

Deno.test("an unauthorized key without a pairing intent is still refused as before", async () => {
  const s = await pairingServer();
  await s.invites.create();
  await assert.rejects(
    OvtpClient.connect({
      hostname: "127.0.0.1",
      port: s.server.addr.port,
      identity: await generateIdentity(),
    }),
    (error) =>
      error instanceof OvtpError && error.kind === "trust" && /Not authorized/.test(error.message),
  );
  await s.server.close();
});

Deno.test("the pairing responder refuses malformed first messages and closes", async () => {
  const s = await pairingServer();
  const { code } = await s.invites.create();
  const share = new Spake2("A", 5n).share;
  const start = (nameplate: number) => {
    const body = new Uint8Array(2);
    new DataView(body.buffer).setUint16(0, nameplate);
    return body;
  };
  const bad = [
    { type: PairMessageType.Start, body: start(code.nameplate) }, // No share.
    { type: PairMessageType.Start, body: concat(start(code.nameplate), share, share) },
    { type: PairMessageType.Confirm, body: concat(start(code.nameplate), share) },
    { type: MessageType.Request, body: utf8("hello") },
  ];
  for (const message of bad) {
    const channel = await s.open(await generateIdentity());
    await sendPairMessage(channel, message);
    assert.equal(await channel.receive(), null, "closed without an answer");
  }
  // Two messages in one record, and a record over 1 KiB.
  for (
    const record of [
      concat(...encodeFragments({ type: PairMessageType.Start, id: 0, body: start(1) }), share),
      new Uint8Array(2000),
    ]
  ) {
    const channel = await s.open(await generateIdentity());
    await channel.send(record);
    assert.equal(await channel.receive(), null);
  }
  // None of these was a guess: the invite has all its tries.
  assert.equal((await s.invites.list())[0].tries, 0);
  assert.equal(await Deno.readTextFile(s.keystore.path("authorizedKeys")).catch(() => null), null);
  await s.server.close();
});

Deno.test("one attempt per connection: a second start on the same connection is not read", async () => {
  const s = await pairingServer();
  const { code } = await s.invites.create();
  const channel = await s.open(await generateIdentity());
  const wrong = { ...code, secret: code.secret === "00000000" ? "00000001" : "00000000" };
  const body = (c: typeof code) => {
    const nameplate = new Uint8Array(2);
    new DataView(nameplate.buffer).setUint16(0, c.nameplate);
    return concat(nameplate, new Spake2("A", 3n).share);
  };
  await sendPairMessage(channel, { type: PairMessageType.Start, body: body(wrong) });
  assert.equal((await readPairMessage(channel)).type, PairMessageType.Reply);
  // Instead of a confirmation, another start: the server counts a failure and closes.
  await sendPairMessage(channel, { type: PairMessageType.Start, body: body(code) }).catch(() => {});
  const next = await channel.receive().catch(() => null);
  assert.ok(next === null || next[0] === MessageType.Error);
  assert.equal(await channel.receive().catch(() => null), null);
  assert.equal((await s.invites.list())[0].tries, 1);
  await s.server.close();
});

Deno.test("pairing attempts are limited per address", async () => {
  const s = await pairingServer({ rate: { count: 2, perMs: 60_000 } });
  const { code } = await s.invites.create();
  const unknown = parseCode(`${code.nameplate + 1}-0000-0000`);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      pair({ stream: await s.dial(), identity: await generateIdentity(), code: unknown }),
      /No pending invite 2/,
    );
  }
  await assert.rejects(
    pair({ stream: await s.dial(), identity: await generateIdentity(), code }),
    (error) => error instanceof OvtpError && /Too many pairing attempts/.test(error.message),
  );
  assert.equal((await s.invites.list())[0].tries, 0, "a refused attempt is no guess");
  await s.server.close();
});

Deno.test("a server without pairing refuses a pairing connection", async () => {
  const server = serve({
    identity: SERVER,
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve(undefined),
    handler: () => ({}),
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await assert.rejects(
    pair({ stream: conn, identity: await generateIdentity(), code: parseCode("1-1234-5678") }),
    /does not accept pairing/,
  );
  await server.close();
});

Deno.test("codes read back as they are shown, and draw all eight digits", async () => {
  const keystore = new Keystore(await tempDir());
  const invites = new InviteStore(keystore);
  const seen = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const { code } = await invites.create();
    assert.equal(code.nameplate, i + 1, "the smallest free number");
    assert.deepEqual(parseCode(formatCode(code)), code);
    assert.deepEqual(parseCode(formatCode(code).replaceAll("-", " ")), code);
    seen.add(code.secret);
  }
  assert.equal(seen.size, 5);
  const mode = (await Deno.stat(invites.path)).mode! & 0o777;
  if (Deno.build.os !== "windows") assert.equal(mode, 0o600);
  // The file holds no code, only what the server needs.
  const text = await Deno.readTextFile(invites.path);
  for (const secret of seen) assert.ok(!text.includes(secret));
});

Deno.test("the pairing example of docs/protocol.md section 20.7 is what the code computes", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/protocol.md", import.meta.url));
  const section = doc.slice(doc.indexOf("### 20.7 Example"));
  const block = /```\n([\s\S]*?)```/.exec(section)![1];
  const shown = Object.fromEntries(
    block.trim().split("\n").map((line) => line.split(/:\s+/) as [string, string]),
  );
  const code = parseCode("7-4213-8890");
  const w = codeScalar(code);
  const client = { x25519: new Uint8Array(32).fill(0x11), ed25519: new Uint8Array(32).fill(0x12) };
  const server = { x25519: new Uint8Array(32).fill(0x21), ed25519: new Uint8Array(32).fill(0x22) };
  const context = pairContext(client, server, new Uint8Array(32).fill(0x33));
  const a = new Spake2("A", w, 0xaaan);
  const b = new Spake2("B", w, 0xbbbn);
  const keys = a.finish(b.share, context);
  assert.deepEqual(b.finish(a.share, context), keys);
  const record = (type: number, body: Uint8Array) =>
    toHex(encodeFragments({ type, id: 0, body })[0]);
  assert.deepEqual(shown, {
    w: toHex(scalarBytes(w)),
    AAD: toHex(context.aad!),
    pA: toHex(a.share),
    pB: toHex(b.share),
    K: toHex(keys.K),
    KcA: toHex(keys.KcA),
    KcB: toHex(keys.KcB),
    cA: toHex(keys.cA),
    cB: toHex(keys.cB),
    PairStart: record(PairMessageType.Start, concat(new Uint8Array([0, 7]), a.share)),
    PairReply: record(PairMessageType.Reply, concat(b.share, keys.cB)),
    PairConfirm: record(PairMessageType.Confirm, concat(keys.cA, utf8("alice"))),
  });
});
