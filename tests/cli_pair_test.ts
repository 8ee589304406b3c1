import assert from "node:assert/strict";
import { assertOneError, homeWithIdentity, type Listener, ovtp, startListen } from "./_cli.ts";
import { startPairRelay } from "./_pair_relay.ts";

/** Makes an invite on `home` and returns its code and the whole JSON answer. */
async function invite(home: string, args: string[] = []) {
  const result = await ovtp(["invite", "--json", ...args], { home });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as {
    code: string;
    invite: number;
    expires: string;
    name: string | null;
    fingerprint: string;
  };
}

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** The tries recorded for each pending invite of `home`. */
async function tries(home: string): Promise<Record<number, number>> {
  const text = await readOrNull(`${home}/invites`);
  const invites = text ? JSON.parse(text).invites as { nameplate: number; tries: number }[] : [];
  return Object.fromEntries(invites.map((i) => [i.nameplate, i.tries]));
}

/** Asserts that a failed pairing wrote nothing: no known host, no authorized key. */
async function assertNothingWritten(server: string, client: string) {
  assert.equal(await readOrNull(`${client}/known_hosts`), null);
  assert.equal(await readOrNull(`${server}/authorized_keys`), null);
}

/** Waits until listen has logged `text` at least `count` times. */
async function waitCount(listener: Listener, text: string, count: number) {
  await listener.waitFor(new RegExp(`(${RegExp.escape(text)}[^]*){${count}}`));
}

async function withServer(
  test: (ctx: { server: string; client: string; listen: () => Promise<Listener> }) => Promise<void>,
) {
  const [server, client] = await Promise.all([
    homeWithIdentity("server"),
    homeWithIdentity("alice@laptop"),
  ]);
  let listener: Listener | undefined;
  try {
    await test({
      server: server.home,
      client: client.home,
      listen: async () => listener = await startListen(server.home),
    });
  } finally {
    await listener?.stop();
  }
}

Deno.test("pair with the right code writes both trust files, prints both fingerprints, and send needs no prompt", async () => {
  await withServer(async ({ server, client, listen }) => {
    // The invite is made before listen starts: listen reads it when the client pairs.
    const made = await invite(server, ["--allow", "message", "--rate", "100/h"]);
    assert.match(made.code, /^1-\d{4}-\d{4}$/);
    const listener = await listen();
    const paired = await ovtp(["pair", listener.target, made.code], {
      home: client,
      env: { OVTP_ACCEPT_NEW: "0" },
    });
    assert.equal(paired.code, 0, paired.stderr);
    assert.equal(paired.stderr, "");
    assert.ok(paired.stdout.includes(made.fingerprint), paired.stdout);
    assert.match(paired.stdout, /authorized your key as "alice@laptop"/);
    const clientFp = (await ovtp(["id", "--fingerprint"], { home: client })).stdout.trim();
    await listener.waitFor(`paired: authorized "alice@laptop" by invite 1`);
    assert.ok(listener.stderr().includes(clientFp), listener.stderr());

    const line = (await Deno.readTextFile(`${server}/authorized_keys`)).trim();
    assert.match(line, /^allow="message",rate="100\/h" ovtp1 \S+ alice@laptop$/);
    const known = (await Deno.readTextFile(`${client}/known_hosts`)).trim();
    assert.match(known, new RegExp(`^127\\.0\\.0\\.1:${listener.port} ovtp1 `));
    assert.deepEqual(await tries(server), {}, "the invite is used up");

    // No prompt, no --accept-new: the host is known, the key authorized.
    const sent = await ovtp(["send", "--strict", listener.target, "hello"], {
      home: client,
      env: { OVTP_ACCEPT_NEW: "0" },
    });
    assert.equal(sent.code, 0, sent.stderr);
    await listener.waitFor("alice@laptop (", "stdout");
  });
});

Deno.test("pair --name and invite --name choose the name, the invite's first", async () => {
  await withServer(async ({ server, client, listen }) => {
    const listener = await listen();
    const mine = await ovtp(
      ["pair", listener.target, (await invite(server)).code, "--name", "al"],
      {
        home: client,
      },
    );
    assert.equal(mine.code, 0, mine.stderr);
    assert.match(await Deno.readTextFile(`${server}/authorized_keys`), / al\n$/);
    const other = await homeWithIdentity("bob");
    const named = await invite(server, ["--name", "robert"]);
    assert.equal(named.name, "robert");
    const theirs = await ovtp(["pair", listener.target, named.code, "--name", "bobby"], {
      home: other.home,
    });
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.match(await Deno.readTextFile(`${server}/authorized_keys`), / robert\n$/);
  });
});

Deno.test("pair with a wrong code is refused, writes nothing, and 3 wrong tries revoke the invite", async () => {
  await withServer(async ({ server, client, listen }) => {
    const listener = await listen();
    const { code } = await invite(server);
    const wrong = code.slice(0, -1) + ((Number(code.at(-1)) + 1) % 10);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const result = await ovtp(["pair", listener.target, wrong], { home: client });
      assert.equal(result.code, 4, result.stderr);
      assertOneError(result, /the code is wrong, or someone .* nothing was written/);
      assert.equal(result.stdout, "");
      await assertNothingWritten(server, client);
      await waitCount(listener, "wrong code for invite 1 (", attempt);
      assert.deepEqual(await tries(server), attempt === 3 ? {} : { 1: attempt });
    }
    // Revoked: the right code no longer works either.
    const late = await ovtp(["pair", listener.target, code], { home: client });
    assert.equal(late.code, 4);
    assertOneError(late, /No pending invite 1 on this server/);
    await assertNothingWritten(server, client);
  });
});

Deno.test("pair with an expired code is refused and writes nothing", async () => {
  await withServer(async ({ server, client, listen }) => {
    const { code, expires } = await invite(server, ["--valid", "1s"]);
    const listener = await listen();
    while (Date.now() <= Date.parse(expires)) await new Promise((r) => setTimeout(r, 100));
    const result = await ovtp(["pair", listener.target, code], { home: client });
    assert.equal(result.code, 4, result.stderr);
    assertOneError(result, /Invite 1 has expired/);
    await assertNothingWritten(server, client);
  });
});

Deno.test("a used code cannot be used again, by anyone", async () => {
  await withServer(async ({ server, client, listen }) => {
    const listener = await listen();
    const { code } = await invite(server);
    assert.equal((await ovtp(["pair", listener.target, code], { home: client })).code, 0);
    const before = await Deno.readTextFile(`${server}/authorized_keys`);
    const other = await homeWithIdentity("mallory");
    const again = await ovtp(["pair", listener.target, code], { home: other.home });
    assert.equal(again.code, 4);
    assertOneError(again, /No pending invite 1 on this server/);
    assert.equal(await readOrNull(`${other.home}/known_hosts`), null);
    assert.equal(await Deno.readTextFile(`${server}/authorized_keys`), before);
  });
});

Deno.test("a man in the middle relaying a pairing between two connections fails on both sides", async () => {
  await withServer(async ({ server, client, listen }) => {
    const listener = await listen();
    const { code } = await invite(server);
    const relay = await startPairRelay(listener.port);
    try {
      const result = await ovtp(["pair", relay.target, code], { home: client });
      assert.equal(result.code, 4, result.stderr);
      assertOneError(result, /the code is wrong, or someone between you and the server/);
      // The PAKE messages went through: only the binding stopped them.
      assert.ok(relay.relayed.toServer >= 1 && relay.relayed.toClient >= 1);
      await assertNothingWritten(server, client);
      await listener.waitFor("wrong code for invite 1 (2 tries left)");
    } finally {
      await relay.close();
    }
    // The relay had one guess, and lost it: the real client still pairs.
    const direct = await ovtp(["pair", listener.target, code], { home: client });
    assert.equal(direct.code, 0, direct.stderr);
  });
});

Deno.test("pair refuses malformed codes, unknown invites and bad options; listen keeps running", async () => {
  await withServer(async ({ server, client, listen }) => {
    const listener = await listen();
    for (const bad of ["abc", "1-2345", "0-1234-5678", "12345-1234-5678", "1-1234-56789"]) {
      const result = await ovtp(["pair", listener.target, bad], { home: client });
      assert.equal(result.code, 2, `${bad}: ${result.stderr}`);
      assertOneError(result, /Invalid pairing code/);
    }
    const missing = await ovtp(["pair", listener.target], { home: client });
    assert.equal(missing.code, 2);
    assertOneError(missing, /Give the HOST and the CODE/);
    const unknown = await ovtp(["pair", listener.target, "42-1234-5678"], { home: client });
    assert.equal(unknown.code, 4);
    assertOneError(unknown, /No pending invite 42 on this server/);
    for (
      const [args, pattern] of [
        [["--valid", "forever"], /Invalid --valid "forever"/],
        [["--valid", "8d"], /Invalid --valid "8d"/],
        [["--allow", "everything"], /Unknown service "everything"/],
        [["--expires", "soon"], /Invalid expiry "soon"/],
        [["extra"], /Unexpected argument "extra"/],
        [["--name", "self"], /Cannot give a key the name "self"/],
        [["--name", "a\x1b[2Jb"], /Cannot give a key the name "a\^\[\[2Jb"/],
      ] as const
    ) {
      const result = await ovtp(["invite", ...args], { home: server });
      assert.equal(result.code, 2, result.stderr);
      assertOneError(result, pattern);
    }
    assert.equal(await readOrNull(`${server}/invites`), null, "no invite was made");
    await assertNothingWritten(server, client);
    // Still serving: a real invite works.
    const ok = await ovtp(["pair", listener.target, (await invite(server)).code], { home: client });
    assert.equal(ok.code, 0, ok.stderr);
  });
});

Deno.test("pair refuses a host known with another key before using a try", async () => {
  await withServer(async ({ server, client, listen }) => {
    const listener = await listen();
    const impostor = await homeWithIdentity("impostor");
    const line = (await ovtp(["id"], { home: impostor.home })).stdout.trim();
    const added = await ovtp(["known-hosts", "add", listener.target, line], { home: client });
    assert.equal(added.code, 0, added.stderr);
    const { code } = await invite(server);
    const result = await ovtp(["pair", listener.target, code], { home: client });
    assert.equal(result.code, 4);
    assertOneError(result, /has changed/);
    assert.deepEqual(await tries(server), { 1: 0 });
    assert.equal(await readOrNull(`${server}/authorized_keys`), null);
  });
});

Deno.test("invite --list shows pending invites without their codes; --revoke ends one, and pair then fails", async () => {
  await withServer(async ({ server, client, listen }) => {
    const empty = await ovtp(["invite", "--list"], { home: server });
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, "");
    assert.equal(empty.stderr, "ovtp: no pending invites\n");
    const first = await invite(server, ["--name", "alice", "--allow", "message"]);
    const second = await invite(server);
    const listed = await ovtp(["invite", "--list"], { home: server });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(
      listed.stdout,
      /^invite 1 for "alice", valid until \S+ \(0 of 3 tries used, allow="message"\)\ninvite 2, valid until \S+ \(0 of 3 tries used\)\n$/,
    );
    // The secret digits are never kept, so never listed.
    for (const made of [first, second]) {
      assert.ok(!listed.stdout.includes(made.code.slice(2)), listed.stdout);
    }
    const json = await ovtp(["invite", "--list", "--json"], { home: server });
    assert.deepEqual(json.stdout.trim().split("\n").map((line) => JSON.parse(line).invite), [1, 2]);

    const revoked = await ovtp(["invite", "--revoke", "1"], { home: server });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, "Revoked invite 1.\n");
    assert.deepEqual(await tries(server), { 2: 0 });
    const listener = await listen();
    const paired = await ovtp(["pair", listener.target, first.code], { home: client });
    assert.equal(paired.code, 4, paired.stderr);
    assertOneError(paired, /No pending invite 1/);
    await assertNothingWritten(server, client);

    const again = await ovtp(["invite", "--revoke", "1"], { home: server });
    assert.equal(again.code, 7, again.stderr);
    assertOneError(again, /No pending invite 1/);
    const bad = await ovtp(["invite", "--revoke", "one"], { home: server });
    assert.equal(bad.code, 2, bad.stderr);
    assertOneError(bad, /Invalid --revoke "one"/);
    const mixed = await ovtp(["invite", "--list", "--name", "bob"], { home: server });
    assert.equal(mixed.code, 2, mixed.stderr);
    assertOneError(mixed, /--name makes an invite: not with --list or --revoke/);
  });
});
