// The library side of authorization for a connection's whole life, per-key
// rate buckets across a change of rate, --exec slots, and name clashes in
// authorized_keys. The CLI side is in cli_auth_test.ts.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { duplicateNames, parseAuthorizedKeys } from "../lib/trust/authorized_keys.ts";
import { authorizedKeysAuthorizer } from "../lib/trust/authorizer.ts";
import { SecureChannel } from "../lib/channel/channel.ts";
import { OvtpClient } from "../lib/client/client.ts";
import { Connection } from "../lib/channel/connection.ts";
import { OvtpError } from "../lib/errors.ts";
import { execHandler } from "../lib/services/exec/exec_handler.ts";
import { ExecSlots } from "../lib/services/exec/exec_slots.ts";
import { formatPublicKey, generateIdentity } from "../lib/identity/keys.ts";
import { Keystore } from "../lib/identity/keystore.ts";
import { MessageType } from "../lib/channel/messages.ts";
import { RateLimiter } from "../lib/server/rate_limiter.ts";
import { type Grant, type Request, serve } from "../lib/server/server.ts";

const HOUR = 3_600_000;

Deno.test("RateLimiter keeps a key's tokens across a change of its rate, never refilling", () => {
  let now = 0;
  const limiter = new RateLimiter(() => now);
  const fast = { count: 40, perMs: HOUR };
  const slow = { count: 4, perMs: HOUR };
  assert.ok(limiter.take("k", fast).allowed);
  // Alternating rates used to start a new, full bucket at each switch.
  let allowed = 0;
  for (let i = 0; i < 40; i++) if (limiter.take("k", i % 2 ? fast : slow).allowed) allowed++;
  assert.equal(allowed, 4);
  assert.equal(limiter.take("k", slow).allowed, false);
  // Time earns tokens back at the rate in force.
  now += HOUR / 4;
  assert.ok(limiter.take("k", slow).allowed);
  assert.equal(limiter.take("k", slow).allowed, false);
  // A higher rate does not refill either: it earns faster from now on.
  assert.equal(limiter.take("k", fast).allowed, false);
  now += HOUR / 40;
  assert.ok(limiter.take("k", fast).allowed);
  // Another key has its own bucket.
  assert.ok(limiter.take("other", slow).allowed);
});

Deno.test("ExecSlots caps per key and in total, and answers busy past the waiting bound", async () => {
  const slots = new ExecSlots({ perKey: 2, total: 3, waitingPerKey: 2 });
  const a1 = await slots.acquire("a");
  const a2 = await slots.acquire("a");
  const a3 = slots.acquire("a");
  const a4 = slots.acquire("a");
  assert.equal(await slots.acquire("a"), undefined, "a's queue is full");
  const b1 = await slots.acquire("b");
  assert.ok(a1 && a2 && b1);
  // Total reached: b waits too, even under its own cap.
  let b2Started = false;
  const b2 = slots.acquire("b").then((release) => (b2Started = true, release));
  a1();
  a1(); // Releasing twice frees one slot only.
  const a3Release = await a3;
  assert.ok(a3Release);
  await Promise.resolve();
  assert.equal(b2Started, false, "a third slot was handed out");
  // Keys take turns: b, which waited behind a, starts before a's next one.
  a2();
  assert.ok(await b2);
  let a4Started = false;
  a4.then(() => a4Started = true);
  await Promise.resolve();
  assert.equal(a4Started, false);
  a3Release();
  assert.ok(await a4);
  assert.throws(() => new ExecSlots({ perKey: 0 }), RangeError);
});

Deno.test("execHandler() answers busy over its slots, and shared slots cap every handler", async () => {
  const { publicKey } = await generateIdentity();
  const request = (name: string): Request => ({
    requestId: 1,
    body: new Uint8Array(0),
    peer: { name, fingerprint: `SHA256:${name}`, key: publicKey },
  });
  const slots = new ExecSlots({ perKey: 1, total: 1, waitingPerKey: 0 });
  const sleep = Deno.build.os === "windows" ? "ping -n 2 127.0.0.1 >nul" : "sleep 0.3";
  const one = execHandler(sleep, { slots });
  const two = execHandler(sleep, { slots });
  const first = one(request("alice"));
  const second = await two(request("alice"));
  assert.equal(second.status, "busy");
  assert.match(String(second.response), /Too many commands/);
  assert.equal((await first).status, "ok");
  assert.equal((await two(request("alice"))).status, "ok", "the slot was not freed");
});

/** A server whose grant for every key is whatever `grant.current` is now. */
async function liveServer(grant: { current: Grant | undefined | Error }) {
  const warnings: string[] = [];
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    recheckIntervalMs: 50,
    authorize: () =>
      grant.current instanceof Error
        ? Promise.reject(grant.current)
        : Promise.resolve(grant.current),
    handler: () => ({ response: "hi" }),
    logger: { info() {}, warn: (message) => warnings.push(message) },
  });
  const connect = async () =>
    await OvtpClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      identity: await generateIdentity(),
      verifyHost: () => {},
    });
  return { server, warnings, connect };
}

async function closedWith(client: OvtpClient, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const outcome = await client.request("ping").catch((error) => error);
    if (outcome instanceof OvtpError) {
      assert.equal(outcome.kind, "trust");
      assert.match(outcome.message, pattern);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail("the connection stayed open");
}

Deno.test("serve() asks the authorizer again: removal, a narrower allow, a failure end the connection", async () => {
  const grant: { current: Grant | undefined | Error } = { current: { name: "alice" } };
  const { server, warnings, connect } = await liveServer(grant);
  try {
    const cases: [Grant | undefined | Error, RegExp, string][] = [
      [undefined, /no longer accepts your key/, "closed client: key removed"],
      [{ name: "alice", options: { allow: ["upload"] } }, /permissions .* changed/, "narrowed"],
      [{ name: "mallory" }, /name or permissions .* changed/, "narrowed"],
      [new Error("disk on fire"), /cannot check your key now/, "cannot check authorization"],
    ];
    for (const [next, pattern, log] of cases) {
      grant.current = { name: "alice" };
      const client = await connect();
      assert.equal((await client.request("one")).status, "ok");
      grant.current = next;
      await closedWith(client, pattern);
      assert.ok(warnings.some((w) => w.includes(log)), warnings.join("\n"));
      client.close();
    }
    // A wider allow and a new rate apply without closing.
    grant.current = { name: "alice", options: { allow: ["upload"] } };
    const client = await connect();
    assert.equal((await client.request("x")).status, "forbidden");
    grant.current = { name: "alice", options: { rate: { count: 1, perMs: HOUR } } };
    let status = "forbidden";
    for (let i = 0; i < 100 && status === "forbidden"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = (await client.request("y")).status;
    }
    assert.equal(status, "ok");
    assert.equal((await client.request("z")).status, "too-many-requests");
    client.close();
  } finally {
    await server.close();
  }
});

Deno.test("serve() closes a connection at its key's expiry instant", async () => {
  const expires = new Date(Date.now() + 400);
  // The authorizer is asked rarely here: the expiry timer alone must act.
  const grant = { current: { name: "alice", options: { expires } } as Grant };
  const { server, warnings, connect } = await liveServer(grant);
  try {
    const client = await connect();
    assert.equal((await client.request("one")).status, "ok");
    const closed = Promise.withResolvers<void>();
    const waiter = setInterval(() => {
      if (warnings.includes("closed client: key expired")) closed.resolve();
    }, 10);
    await closed.promise;
    clearInterval(waiter);
    assert.ok(Date.now() >= expires.getTime());
    await closedWith(
      client,
      new RegExp(`expired on ${expires.toISOString().replaceAll(".", "\\.")}`),
    );
    client.close();
  } finally {
    await server.close();
  }
});

Deno.test("a Request with id 0 is logged as such, not as an unexpected type", async () => {
  const warnings: string[] = [];
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({ response: "hi" }),
    logger: { info() {}, warn: (message) => warnings.push(message) },
  });
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const channel = await SecureChannel.initiate(tcp, { identity: await generateIdentity() });
    const connection = new Connection(channel, { onMessage: () => {} });
    const running = connection.run().catch(() => {});
    await connection.send({ type: MessageType.Request, id: 0, body: new Uint8Array(1) });
    await running;
    assert.ok(warnings.includes("protocol error: request id 0 is reserved"), warnings.join("\n"));
    assert.ok(!warnings.some((w) => w.includes("unexpected message type 16")));
  } finally {
    try {
      tcp.close();
    } catch {
      // Closed by the connection already.
    }
    await server.close();
  }
});

Deno.test("authorizedKeysAuthorizer() refuses a second key under a name in use, and sees edits", async () => {
  const home = await tempDir();
  const [alice, mallory] = await Promise.all([generateIdentity(), generateIdentity()]);
  const path = `${home}/authorized_keys`;
  const text = `${formatPublicKey(alice.publicKey, "alice")}\n` +
    `${formatPublicKey(mallory.publicKey, "alice")}\n`;
  await Deno.writeTextFile(path, text);
  assert.deepEqual(duplicateNames(parseAuthorizedKeys(text).entries).map((e) => e.line), [2]);
  const bad: number[] = [];
  const authorize = authorizedKeysAuthorizer(new Keystore(home), (error) => bad.push(error.line));
  assert.equal((await authorize(alice.publicKey))?.name, "alice");
  assert.equal(await authorize(mallory.publicKey), undefined);
  assert.deepEqual(bad, [2], "reported once per read, not per question");
  // An edit of the same size in place is still seen.
  await Deno.writeTextFile(path, text.replace(/ alice\n$/, " alicf\n"));
  assert.equal((await authorize(mallory.publicKey))?.name, "alicf");
  await Deno.remove(path);
  assert.equal(await authorize(alice.publicKey), undefined);
  await Deno.remove(home, { recursive: true });
});

Deno.test("Keystore.addAuthorizedKey() refuses a name in use and names that mean something else", async () => {
  const home = await tempDir();
  const keystore = new Keystore(home);
  const [alice, mallory] = await Promise.all([generateIdentity(), generateIdentity()]);
  await keystore.addAuthorizedKey(alice.publicKey, "alice");
  for (const name of ["alice", " alice ", "self", "SHA256:abc"]) {
    await assert.rejects(
      keystore.addAuthorizedKey(mallory.publicKey, name),
      (error) => error instanceof OvtpError && /Cannot authorize the key as/.test(error.message),
    );
  }
  assert.deepEqual(await keystore.addAuthorizedKey(mallory.publicKey, "Alice"), {
    added: true,
    name: "Alice",
  });
  await Deno.remove(home, { recursive: true });
});

Deno.test("ExecSlots.acquire() gives up a waiting place when its signal aborts", async () => {
  const slots = new ExecSlots({ perKey: 1, total: 1, waitingPerKey: 1 });
  const first = await slots.acquire("a");
  const ended = new AbortController();
  const waiting = slots.acquire("a", ended.signal);
  ended.abort();
  assert.equal(await waiting, undefined);
  // Its place is free again, and the slot goes to the next waiter.
  const next = slots.acquire("a");
  first!();
  assert.ok(await next);
  assert.equal(await slots.acquire("b", ended.signal), undefined);
});

Deno.test({
  name: "commands queued for a key do not start once its connection is closed for removal",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await tempDir();
    const grant: { current: Grant | undefined | Error } = { current: { name: "alice" } };
    const server = serve({
      identity: await generateIdentity(),
      hostname: "127.0.0.1",
      port: 0,
      recheckIntervalMs: 50,
      authorize: () => Promise.resolve(grant.current as Grant | undefined),
      handler: execHandler(`echo "$OVTP_REQUEST_ID" >> "${dir}/started"; sleep 0.3`, {
        slots: new ExecSlots({ perKey: 1 }),
      }),
    });
    const client = await OvtpClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      identity: await generateIdentity(),
      verifyHost: () => {},
    });
    const started = async () =>
      (await Deno.readTextFile(`${dir}/started`).catch(() => "")).trim().split("\n")
        .filter(Boolean).length;
    try {
      const answers = Array.from({ length: 10 }, () => client.request("x").catch((e) => e));
      while (await started() === 0) await new Promise((r) => setTimeout(r, 10));
      grant.current = undefined;
      const outcomes = await Promise.all(answers);
      assert.ok(outcomes.some((o) => o instanceof OvtpError && o.kind === "trust"));
      const atClose = await started();
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await started(), atClose, "a queued command started after the close");
      assert.ok(atClose < 10, `${atClose} commands ran`);
    } finally {
      client.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("authorizedKeysAuthorizer() answers a recheck from its last look within maxAgeMs, a new connection from the file", async () => {
  const keystore = new Keystore(await tempDir());
  const alice = await generateIdentity();
  await keystore.addAuthorizedKey(alice.publicKey, "alice");
  const authorize = authorizedKeysAuthorizer(keystore);
  assert.equal((await authorize(alice.publicKey))?.name, "alice");
  await keystore.removeAuthorizedKey("alice");
  // A recheck that allows a 10 s old answer shares the look just taken...
  assert.equal((await authorize(alice.publicKey, { maxAgeMs: 10_000 }))?.name, "alice");
  // ...while a new connection (no maxAgeMs) sees the file as it is now,
  assert.equal(await authorize(alice.publicKey), undefined);
  // and so does every recheck after that look.
  assert.equal(await authorize(alice.publicKey, { maxAgeMs: 10_000 }), undefined);
});
