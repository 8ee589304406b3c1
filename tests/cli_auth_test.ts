// Authorization through the real CLI for the whole life of a connection: an
// open `send --lines` loses its key's rights when authorized_keys changes
// (removal, expiry, a narrower allow=, a new rate=), a name picks one key,
// and --exec cannot run more commands at once than its caps.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { OvtpClient } from "../lib/client/client.ts";
import { OvtpError } from "../lib/errors.ts";
import { Keystore } from "../lib/identity/keystore.ts";
import { assertOneError, type Listener, makePair, ovtp, startListen, tempHome } from "./_cli.ts";

/**
 * A client connection kept open to the real `ovtp listen`, as a script
 * built on the library keeps one: each `ask` is one request on it.
 */
interface OpenClient {
  /** Sends one request; resolves with its status, or with the error that failed it. */
  ask(text: string): Promise<string | OvtpError>;
  close(): void;
}

async function openClient(home: string, listener: Listener): Promise<OpenClient> {
  const client = await OvtpClient.connect({
    hostname: "127.0.0.1",
    port: listener.port,
    identity: await new Keystore(home).loadIdentity(() => Promise.resolve("")),
    verifyHost: () => {}, // The server is the one this test started.
  });
  return {
    ask: (text) =>
      client.request(text).then((response) => response.status, (error: OvtpError) => error),
    close: () => client.close(),
  };
}

/** Asserts that `answer` is the connection-level refusal `pattern`, of kind trust. */
function assertRefused(answer: string | OvtpError, pattern: RegExp) {
  assert.ok(answer instanceof OvtpError, `answered ${answer}`);
  assert.equal(answer.kind, "trust");
  assert.match(answer.message, pattern);
}

/** Rewrites authorized_keys' line for `name` with `edit`, as an administrator would by hand. */
async function editLine(home: string, name: string, edit: (line: string) => string) {
  const path = `${home}/authorized_keys`;
  const text = await Deno.readTextFile(path);
  const lines = text.split("\n").map((line) => line.endsWith(` ${name}`) ? edit(line) : line);
  assert.notEqual(lines.join("\n"), text, `no line for ${name} changed`);
  await Deno.writeTextFile(path, lines.join("\n"));
}

const keyOf = (line: string) => line.slice(line.indexOf("ovtp1 "));

/** A home with a new identity, made in-process (faster than `ovtp keygen`, same files). */
async function quickHome(comment: string): Promise<{ home: string; line: string }> {
  const home = await tempHome();
  const { line } = await new Keystore(home).createIdentity({ comment });
  return { home, line };
}

/** A server, alice (the client under test) and bob (a bystander who must keep working). */
async function setup(aliceOptions: string[] = [], listenArgs: string[] = []) {
  const [server, alice, bob] = await Promise.all([
    quickHome("server"),
    quickHome("alice"),
    quickHome("bob"),
  ]);
  for (const [line, options] of [[alice.line, aliceOptions], [bob.line, []]] as const) {
    const added = await ovtp(["add-key", line, ...options], { home: server.home });
    assert.equal(added.code, 0, added.stderr);
  }
  const listener = await startListen(server.home, listenArgs);
  return { server, alice, bob, listener };
}

async function assertServes(listener: Listener, home: string) {
  const result = await ovtp(["send", listener.target, "still there?"], { home });
  assert.equal(result.code, 0, result.stderr);
}

Deno.test("keys remove closes a connection its key already has", async () => {
  const { server, alice, bob, listener } = await setup();
  try {
    const client = await openClient(alice.home, listener);
    assert.equal(await client.ask("one"), "ok");
    const removed = await ovtp(["keys", "remove", "alice"], { home: server.home });
    assert.equal(removed.code, 0, removed.stderr);
    // Closed by the server on its own, without another request.
    await listener.waitFor(/closed client: key removed .*alice/);
    assertRefused(
      await client.ask("two"),
      /Not authorized: this server no longer accepts your key SHA256:/,
    );
    client.close();
    await assertServes(listener, bob.home);
  } finally {
    await listener.stop();
  }
});

Deno.test("a connection open across its key's expiry is closed with key-expired", async () => {
  const { server, alice, bob, listener } = await setup(["--expires", "2099-01-01"]);
  try {
    const client = await openClient(alice.home, listener);
    assert.equal(await client.ask("one"), "ok");
    // Bring the expiry to a few seconds from now: the open connection must
    // end at that instant, while it sends nothing.
    const soon = new Date(Date.now() + 3000).toISOString();
    await editLine(server.home, "alice", (line) => `expires="${soon}" ${keyOf(line)}`);
    await listener.waitFor(/closed client: key expired .*alice/);
    assertRefused(
      await client.ask("two"),
      new RegExp(`your key SHA256:\\S+ expired on ${soon.replaceAll(".", "\\.")}`),
    );
    client.close();
    await assertServes(listener, bob.home);
  } finally {
    await listener.stop();
  }
});

Deno.test("allow= edits apply to an open connection: wider keeps it, narrower closes it", async () => {
  const { server, alice, bob, listener } = await setup(["--allow", "upload"]);
  try {
    const client = await openClient(alice.home, listener);
    assert.equal(await client.ask("one"), "forbidden");
    // Wider: the open connection may now send messages.
    await editLine(server.home, "alice", (line) => `allow="upload,message" ${keyOf(line)}`);
    let answer;
    for (let i = 0; i < 100 && answer !== "ok"; i++) {
      answer = await client.ask("again");
      if (answer !== "ok") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(answer, "ok");
    // Narrower: the connection ends, so nothing granted before stays usable.
    await editLine(server.home, "alice", (line) => `allow="upload" ${keyOf(line)}`);
    await listener.waitFor(/closed client: key's name or permissions narrowed .*alice/);
    assertRefused(await client.ask("two"), /permissions on this server changed/);
    client.close();
    // A new connection gets the new permissions.
    const fresh = await ovtp(["send", listener.target, "hi"], { home: alice.home });
    assertOneError(fresh, /Your key is not allowed to use message/);
    await assertServes(listener, bob.home);
  } finally {
    await listener.stop();
  }
});

Deno.test("a rate= edit does not refill the bucket: old and new connections share the budget", async () => {
  const { server, alice, bob, listener } = await setup(["--rate", "40/h"]);
  try {
    const old = await openClient(alice.home, listener);
    assert.equal(await old.ask("first"), "ok");
    await editLine(server.home, "alice", (line) => `rate="4/h" ${keyOf(line)}`);
    const fresh = await openClient(alice.home, listener);
    let answered = 0;
    const statuses = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const answer = await (i % 2 === 0 ? fresh : old).ask(`m${i}`);
      assert.equal(typeof answer, "string", `a connection failed: ${answer}`);
      statuses.add(answer as string);
      if (answer === "ok") answered++;
    }
    // 39 tokens were left; the new rate caps them at 4, and none come back
    // by switching connections.
    assert.ok(answered <= 4, `${answered} of 20 answered against rate=4/h`);
    assert.deepEqual([...statuses].filter((s) => s !== "ok"), ["too-many-requests"]);
    old.close();
    fresh.close();
    await assertServes(listener, bob.home);
  } finally {
    await listener.stop();
  }
});

Deno.test("add-key refuses a second key under a name in use, and reserved names", async () => {
  const pair = await makePair();
  const mallory = await quickHome("alice"); // Chooses alice's name as its comment.
  const path = `${pair.server.home}/authorized_keys`;
  const before = await Deno.readTextFile(path);
  const refused = await ovtp(["add-key", mallory.line], { home: pair.server.home });
  assert.equal(refused.code, 2, refused.stderr);
  assertOneError(
    refused,
    /Cannot authorize the key as "alice": another key \(SHA256:\S+, line 1\)/,
  );
  assert.match(refused.stderr, /--name/);
  assert.equal(await Deno.readTextFile(path), before);
  for (const name of ["self", "SHA256:AAAA"]) {
    const reserved = await ovtp(["add-key", mallory.line, "--name", name], {
      home: pair.server.home,
    });
    assertOneError(reserved, /means something else to ovtp/);
  }
  const renamed = await ovtp(["add-key", mallory.line, "--name", "mallory"], {
    home: pair.server.home,
  });
  assert.equal(renamed.code, 0, renamed.stderr);
  // The same key again is still a no-op, not a name clash.
  const again = await ovtp(["add-key", pair.client.line], { home: pair.server.home });
  assert.match(again.stdout, /Already authorized as "alice"/);
});

Deno.test("a name two keys share selects neither: open --from, listen, keys", async () => {
  const [alice, mallory, bob] = await Promise.all([
    quickHome("alice"),
    quickHome("alice"),
    quickHome("bob"),
  ]);
  // A hand-edited file (add-key would refuse the second "alice").
  await Deno.writeTextFile(`${bob.home}/authorized_keys`, `${alice.line}\n${mallory.line}\n`);
  const sealed = `${mallory.home}.sealed`;
  const seal = await ovtp(["seal", "-r", bob.line, "-o", sealed], {
    home: mallory.home,
    stdin: "from mallory",
  });
  assert.equal(seal.code, 0, seal.stderr);
  const opened = await ovtp(["open", sealed, "--from", "alice"], { home: bob.home });
  assert.equal(opened.code, 7, opened.stderr); // Not one key: README's "not found".
  assertOneError(
    opened,
    /The sender "alice" is ambiguous: authorized_keys line 1 .*, authorized_keys line 2/,
  );
  assert.equal(opened.stdout, "");
  // By fingerprint, the sender is told apart.
  const fp = (await ovtp(["id", "--fingerprint"], { home: alice.home })).stdout.trim();
  const byFp = await ovtp(["open", sealed, "--from", fp], { home: bob.home });
  assert.equal(byFp.code, 4, byFp.stderr);
  // keys warns about the second line, and listen refuses to start with it.
  const listed = await ovtp(["keys"], { home: bob.home });
  assert.equal(listed.code, 5); // authorized_keys needs fixing: a key error.
  assert.match(listed.stderr, /line 2: The name "alice" is already used on line 1/);
  const listen = await ovtp(["listen", "--host", "127.0.0.1", "--port", "0"], { home: bob.home });
  assertOneError(listen, /line 2: The name "alice" is already used on line 1/);
  // Once the clash is resolved, the server serves alice.
  const removed = await ovtp(["keys", "remove", fp], { home: bob.home });
  assert.equal(removed.code, 0, removed.stderr);
  await ovtp(["add-key", alice.line, "--name", "alice-laptop"], { home: bob.home });
  const listener = await startListen(bob.home);
  try {
    await assertServes(listener, alice.home);
  } finally {
    await listener.stop();
  }
});

// Each command leaves a file in RUN while it runs and records how many it
// saw: never more than the cap, whatever the client pipelines.
// POSIX only (the tests are skipped on Windows).
function countingCommand(dir: string): string {
  const mine = `"${dir}/run/$OVTP_REQUEST_ID.$OVTP_SENDER_NAME"`;
  return `touch ${mine}; ls "${dir}/run" | wc -l >> "${dir}/seen"; sleep 0.05; rm ${mine}; echo done`;
}

async function maxSeen(dir: string): Promise<number> {
  const seen = (await Deno.readTextFile(`${dir}/seen`)).trim().split("\n").map(Number);
  return Math.max(...seen);
}

Deno.test({
  name: "--exec runs at most 4 commands at once for one key by default; the rest wait",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await tempDir();
    await Deno.mkdir(`${dir}/run`);
    const { alice, bob, listener } = await setup([], ["--exec", countingCommand(dir)]);
    try {
      const lines = Array.from({ length: 40 }, (_, i) => `line ${i}`).join("\n") + "\n";
      const sent = await ovtp(["send", listener.target, "--lines"], {
        home: alice.home,
        stdin: lines,
      });
      assert.equal(sent.code, 0, sent.stderr);
      assert.equal(sent.stdout, "done\n".repeat(40));
      const most = await maxSeen(dir);
      assert.ok(most <= 4, `${most} commands ran at once`);
      await assertServes(listener, bob.home);
    } finally {
      await listener.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "--max-exec caps the commands of every key together",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await tempDir();
    await Deno.mkdir(`${dir}/run`);
    const { alice, bob, listener } = await setup([], [
      "--exec",
      countingCommand(dir),
      "--max-exec",
      "3",
      "--max-exec-per-key",
      "2",
    ]);
    try {
      const lines = Array.from({ length: 16 }, (_, i) => `line ${i}`).join("\n") + "\n";
      const results = await Promise.all(
        [alice.home, bob.home].map((home) =>
          ovtp(["send", listener.target, "--lines"], { home, stdin: lines })
        ),
      );
      for (const result of results) assert.equal(result.code, 0, result.stderr);
      const runs = (await Deno.readTextFile(`${dir}/seen`)).trim().split("\n").length;
      assert.equal(runs, 32);
      const most = await maxSeen(dir);
      assert.ok(most <= 3, `${most} commands ran at once`);
    } finally {
      await listener.stop();
      await Deno.remove(dir, { recursive: true });
    }
    const bad = await ovtp(["listen", "--max-exec", "0"], { home: dir });
    assertOneError(bad, /Invalid --max-exec "0"/);
  },
});
