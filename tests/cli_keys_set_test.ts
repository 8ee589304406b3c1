// `ovtp keys set` through the real CLI: each option replaced or lifted in
// place, the rest of authorized_keys untouched, refusals that change
// nothing, and a running listen applying the change without a restart.

import assert from "node:assert/strict";
import {
  assertOneError,
  CLI_ENV,
  homeWithIdentity,
  MAIN,
  makePair,
  ovtp,
  startListen,
} from "./_cli.ts";
import { gather } from "./_tmux.ts";
import { PERMISSIONS } from "../scripts/compile.ts";

const FP = /SHA256:[A-Za-z0-9+/]{43}/;

/** authorized_keys with a comment, alice (from makePair) and bob, as an administrator keeps it. */
async function serverWithTwoKeys() {
  const pair = await makePair();
  const bob = await homeWithIdentity("bob");
  const path = `${pair.server.home}/authorized_keys`;
  await Deno.writeTextFile(path, `# Team keys\n${await Deno.readTextFile(path)}`);
  const added = await ovtp(["add-key", bob.line, "--rate", "5/m"], { home: pair.server.home });
  assert.equal(added.code, 0, added.stderr);
  return { ...pair, bob, path };
}

Deno.test("keys set replaces the options given, keeps the others, and leaves other lines alone", async () => {
  const { server, path } = await serverWithTwoKeys();
  const home = server.home;
  const before = (await Deno.readTextFile(path)).split("\n");
  const set = async (...args: string[]) => {
    const result = await ovtp(["keys", "set", ...args], { home });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    return result.stdout;
  };
  assert.match(
    await set("alice", "--allow", "message,chat:ops", "--expires", "2030-01-01"),
    /^Changed "alice" \(SHA256:\S+\): allow="message,chat:ops",expires="2030-01-01T00:00:00.000Z"\n$/,
  );
  assert.match(
    await set("alice", "--rate", "10/h"),
    /allow="message,chat:ops",expires="2030-01-01T00:00:00\.000Z",rate="10\/h"/,
  );
  let lines = (await Deno.readTextFile(path)).split("\n");
  assert.equal(lines.length, before.length);
  assert.equal(lines[0], "# Team keys");
  assert.equal(lines[2], before[2], "bob's line is untouched");
  assert.equal(
    lines[1],
    `allow="message,chat:ops",expires="2030-01-01T00:00:00.000Z",rate="10/h" ${before[1]}`,
  );
  // The words that lift a limit, one at a time.
  assert.match(
    await set("alice", "--expires", "never"),
    /: allow="message,chat:ops",rate="10\/h"\n$/,
  );
  assert.match(await set("alice", "--allow", "all"), /: rate="10\/h"\n$/);
  assert.match(await set("alice", "--rate", "none"), /: no limits\n$/);
  lines = (await Deno.readTextFile(path)).split("\n");
  assert.equal(lines[1], before[1], "alice's line is back to the plain key");
  // Renamed, by fingerprint; --json.
  const fp = (await ovtp(["id", "--fingerprint"], { home: `${home}` })).stdout.trim();
  const aliceFp = FP.exec((await ovtp(["keys"], { home })).stdout)![0];
  assert.notEqual(aliceFp, fp);
  const renamed = await ovtp(["keys", "set", aliceFp, "--name", "alice-laptop", "--json"], {
    home,
  });
  assert.equal(renamed.code, 0, renamed.stderr);
  assert.deepEqual(JSON.parse(renamed.stdout), {
    name: "alice-laptop",
    fingerprint: aliceFp,
    options: "",
  });
  const listed = await ovtp(["keys"], { home });
  assert.match(
    listed.stdout,
    /^alice-laptop {2}SHA256:\S+\nbob {11}SHA256:\S+ {2}rate="5\/m"\n$/,
  );
});

Deno.test("keys set refuses an unknown or ambiguous key and bad options, changing nothing", async () => {
  const { server, path } = await serverWithTwoKeys();
  const home = server.home;
  const original = await Deno.readTextFile(path);
  const refusals: [string[], number, RegExp][] = [
    [["carol", "--rate", "1/s"], 7, /^ovtp: error: No authorized key named "carol"$/],
    [["alice"], 2, /Nothing to change: give --allow, --expires, --rate or --name/],
    [["alice", "--allow", "everything"], 2, /Unknown service "everything"/],
    [["alice", "--expires", "soon"], 2, /Invalid expiry "soon"/],
    [["alice", "--rate", "0/s"], 2, /Invalid rate "0\/s"/],
    [
      ["alice", "--name", "bob"],
      2,
      /Cannot rename the key to "bob": another key \(SHA256:\S+, line 3\)/,
    ],
    [["alice", "--name", "self"], 2, /Cannot rename the key to "self": that name means something/],
    [["alice", "--name", "SHA256:x"], 2, /Cannot rename the key to "SHA256:x"/],
    [["alice", "--name", "a\u0007b"], 2, /cannot contain control/],
    [["alice", "--name", "eve\u202egnp"], 2, /invisible formatting characters/],
    [["alice", "bob", "--rate", "1/s"], 2, /Give one NAME or FINGERPRINT to change/],
    [[], 2, /Give one NAME or FINGERPRINT to change/],
  ];
  for (const [args, code, pattern] of refusals) {
    const result = await ovtp(["keys", "set", ...args], { home });
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stdout, "");
    assertOneError(result, pattern);
  }
  // Options belong to set: other actions refuse them rather than ignore them.
  const listing = await ovtp(["keys", "list", "--allow", "all"], { home });
  assert.equal(listing.code, 2);
  assertOneError(listing, /--allow, --expires, --rate and --name go with `ovtp keys set`/);
  assert.equal(await Deno.readTextFile(path), original);

  // A name two lines share (a hand edit) picks neither; the fingerprint does.
  const other = await homeWithIdentity("x");
  await Deno.writeTextFile(
    path,
    original + other.line.replace(/ x$/, " alice") + "\n",
  );
  const ambiguous = await ovtp(["keys", "set", "alice", "--rate", "1/s"], { home });
  assert.equal(ambiguous.code, 7);
  assertOneError(ambiguous, /The name "alice" matches 2 keys/);
  assert.match(ambiguous.stderr, /ovtp: hint: give its fingerprint instead/);
  const otherFp = (await ovtp(["id", "--fingerprint"], { home: other.home })).stdout.trim();
  const byFp = await ovtp(["keys", "set", otherFp, "--name", "x"], { home });
  assert.equal(byFp.code, 0, byFp.stderr);
  assert.equal((await ovtp(["keys"], { home })).code, 0, "the clash is resolved");
});

Deno.test("add-key of a key already there says how to change it: keys set", async () => {
  const { server, client } = await makePair();
  const again = await ovtp(["add-key", client.line, "--expires", "2030-01-01"], {
    home: server.home,
  });
  assert.equal(again.code, 0);
  assert.match(again.stdout, /^Already authorized as "alice" \(SHA256:\S+\); nothing changed\n$/);
  assert.match(
    again.stderr,
    /^ovtp: hint: to change its options or name, run: ovtp keys set alice /,
  );
  // Without options there is nothing to hint at.
  const plain = await ovtp(["add-key", client.line], { home: server.home });
  assert.equal(plain.stderr, "");
});

Deno.test("keys set applies to a running listen: open connections and new requests, no restart", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  // One connection kept open, as `send --lines` keeps it.
  const open = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, MAIN, "send", listener.target, "--lines", "--json"],
    env: { ...CLI_ENV, OVTP_HOME: client.home, HOME: `${client.home}.user` },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = gather(open.stdout);
  const err = gather(open.stderr);
  const writer = open.stdin.getWriter();
  try {
    await listener.waitFor(/client connected .*alice/);
    const narrowed = await ovtp(["keys", "set", "alice", "--allow", "upload"], {
      home: server.home,
    });
    assert.equal(narrowed.code, 0, narrowed.stderr);
    await listener.waitFor(/closed client: key's name or permissions narrowed .*alice/);
    await writer.write(new TextEncoder().encode("one\n"));
    await writer.close();
    assert.equal((await open.status).code, 4);
    await err.done;
    assert.match(err.text(), /permissions on this server changed/);
    // A new request gets the new options at once.
    const refused = await ovtp(["send", listener.target, "hi"], { home: client.home });
    assertOneError(refused, /Your key is not allowed to use message \(allowed: upload\)/);
    // Lifted again, and then expired: the refusal names keys set.
    assert.equal(
      (await ovtp(["keys", "set", "alice", "--allow", "all"], { home: server.home })).code,
      0,
    );
    assert.equal((await ovtp(["send", listener.target, "hi"], { home: client.home })).code, 0);
    await ovtp(["keys", "set", "alice", "--expires", "2020-01-01"], { home: server.home });
    const expired = await ovtp(["send", listener.target, "hi"], { home: client.home });
    assert.equal(expired.code, 4);
    assertOneError(expired, /your key SHA256:\S+ expired on 2020-01-01T00:00:00\.000Z/);
    assert.match(
      expired.stderr,
      /hint: ask the server's owner to renew it: ovtp keys set SHA256:\S+ --expires/,
    );
  } finally {
    await writer.close().catch(() => {});
    await open.status;
    await out.done;
    await listener.stop();
  }
});
