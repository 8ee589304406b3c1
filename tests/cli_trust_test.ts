/**
 * First contact with a server, as ssh's default does it: on a terminal the
 * fingerprint is shown and nothing is sent before the user answers; without
 * one an unknown host is refused unless --accept-new says to record it; and
 * `ovtp known-hosts` lists, adds and removes the trusted keys.
 */
import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  assertOneError,
  CLI_ENV,
  type Listener,
  MAIN,
  makePair,
  ovtp,
  type Pair,
  startListen,
} from "./_cli.ts";
import { HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";

/** The default policy, as a person without OVTP_ACCEPT_NEW has it. */
const ASK = { OVTP_ACCEPT_NEW: "0" };

async function serverFingerprint(pair: Pair): Promise<string> {
  const id = await ovtp(["id", "--fingerprint"], { home: pair.server.home });
  assert.equal(id.code, 0, id.stderr);
  return id.stdout.trim();
}

async function withServer(test: (pair: Pair, listener: Listener) => Promise<void>) {
  const pair = await makePair();
  const listener = await startListen(pair.server.home);
  try {
    await test(pair, listener);
  } finally {
    await listener.stop();
  }
}

Deno.test("without a terminal an unknown host is refused, nothing is sent, nothing recorded", async () => {
  await withServer(async (pair, listener) => {
    const fp = await serverFingerprint(pair);
    const sent = await ovtp(["send", listener.target, "secret"], {
      home: pair.client.home,
      env: ASK,
    });
    assert.equal(sent.code, 4);
    assertOneError(
      sent,
      new RegExp(
        `Unknown host ${listener.target} with key ${
          fp.replace(/[+/]/g, "\\$&")
        }: refused, with no terminal to ask`,
      ),
    );
    assert.match(
      sent.stderr,
      new RegExp(`ovtp: hint: .*ovtp known-hosts add ${listener.target} SHA256:`),
    );
    assert.equal(sent.stdout, "");
    await assert.rejects(Deno.stat(`${pair.client.home}/known_hosts`), Deno.errors.NotFound);
    // The client closed after the server's key, before revealing itself.
    assert.doesNotMatch(listener.stderr(), /client connected/);
    assert.equal(listener.stdout(), "");
  });
});

Deno.test("--accept-new records an unknown host and sends", async () => {
  await withServer(async (pair, listener) => {
    const fp = await serverFingerprint(pair);
    const sent = await ovtp(["send", "--accept-new", listener.target, "hi"], {
      home: pair.client.home,
      env: ASK,
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.stderr, `ovtp: new host ${listener.target} recorded in known_hosts: ${fp}\n`);
    const list = await ovtp(["known-hosts"], { home: pair.client.home });
    assert.equal(list.stdout, `${listener.target}  ${fp}\n`);
    const both = await ovtp(["send", "--accept-new", "--strict", listener.target, "hi"], {
      home: pair.client.home,
    });
    assert.equal(both.code, 2);
    assertOneError(both, /Give --strict or --accept-new, not both/);
  });
});

Deno.test("known-hosts add by fingerprint lets the first connection through; a wrong one is refused", async () => {
  await withServer(async (pair, listener) => {
    const fp = await serverFingerprint(pair);
    const added = await ovtp(["known-hosts", "add", listener.target, fp], {
      home: pair.client.home,
    });
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stderr, `ovtp: host ${listener.target} recorded in known_hosts: ${fp}\n`);
    const sent = await ovtp(["send", listener.target, "hi"], { home: pair.client.home, env: ASK });
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.stderr, "");
    await listener.waitFor(/: hi$/m, "stdout");

    // Another client that was given a wrong fingerprint for the same address.
    const other = await makePair();
    const wrong = await serverFingerprint(other);
    assert.equal(
      (await ovtp(["add-key", other.client.line, "--name", "other"], { home: pair.server.home }))
        .code,
      0,
    );
    await ovtp(["known-hosts", "add", listener.target, wrong], { home: other.client.home });
    const refused = await ovtp(["send", listener.target, "secret"], {
      home: other.client.home,
      env: ASK,
    });
    assert.equal(refused.code, 4);
    assertOneError(refused, /The key of host .* has changed to SHA256:\S+ \(was SHA256:\S+\)/);
    assert.match(refused.stderr, new RegExp(`hint: .*ovtp known-hosts remove ${listener.target}`));
    assert.doesNotMatch(listener.stdout(), /secret/);
  });
});

Deno.test("known-hosts lists, adds a public line, refuses a second key for a host, and removes", async () => {
  const pair = await makePair();
  const other = await makePair();
  const home = pair.client.home;
  const fp = await serverFingerprint(pair);
  const add = await ovtp(["known-hosts", "add", "backup.example", pair.server.line], { home });
  assert.equal(add.code, 0, add.stderr);
  const again = await ovtp(["known-hosts", "add", "backup.example:4747", other.server.line], {
    home,
  });
  assert.equal(again.code, 4);
  assertOneError(again, /Host backup\.example:4747 is already known with another key/);
  assert.match(again.stderr, /hint: .*ovtp known-hosts remove backup\.example:4747/);

  const json = await ovtp(["known-hosts", "list", "--json"], { home });
  assert.deepEqual(JSON.parse(json.stdout), { host: "backup.example:4747", fingerprint: fp });

  const bad = await ovtp(["known-hosts", "add", "h", "ovtp1 nonsense"], { home });
  assert.equal(bad.code, 2);
  assertOneError(bad, /Expected a public line \(ovtp1 \.\.\.\) or a fingerprint \(SHA256:\.\.\.\)/);

  const removed = await ovtp(["known-hosts", "remove", "backup.example"], { home });
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stderr, "ovtp: removed host backup.example:4747 from known_hosts\n");
  assert.equal((await ovtp(["known-hosts"], { home })).stdout, "");
  const missing = await ovtp(["known-hosts", "remove", "backup.example"], { home });
  assert.equal(missing.code, 7); // Not found.
  assertOneError(missing, /Host backup\.example:4747 is not in known_hosts/);
});

Deno.test({
  name:
    "on a terminal an unknown host is shown and asked about: no, a wrong fingerprint, the right one",
  ignore: !HAS_TMUX,
  async fn() {
    await withServer(async (pair, listener) => {
      const fp = await serverFingerprint(pair);
      const run = async (answer: string) => {
        const session = sessionName();
        const command = `OVTP_ACCEPT_NEW=0 NO_COLOR=1 OVTP_HOME='${pair.client.home}' ` +
          `HOME='${pair.client.home}.user' '${Deno.execPath()}' run --quiet -A '${MAIN}' ` +
          `send ${listener.target} 'typed at a terminal'; echo "exit=$?"; sleep 30`;
        await tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "20", command);
        try {
          const asked = await screenShows(session, /\(yes\/no\/\[fingerprint\]\)\?/);
          assert.match(asked, new RegExp(`its key fingerprint is ${fp.replace(/[+/]/g, "\\$&")}`));
          // Nothing was sent while the question is open.
          assert.doesNotMatch(listener.stdout(), /typed at a terminal/);
          assert.doesNotMatch(listener.stderr(), /client connected/);
          await tmux("send-keys", "-t", session, answer, "Enter");
          return await screenShows(session, /exit=\d+/);
        } finally {
          await tmux("kill-session", "-t", session).catch(() => {});
        }
      };
      const no = await run("no");
      assert.match(no, /Host .* was not accepted: nothing was sent to it/);
      assert.match(no, /exit=4/);
      const wrong = await run("SHA256:" + "A".repeat(43));
      assert.match(wrong, /The fingerprint you gave does not match/);
      assert.match(wrong, /exit=4/);
      await assert.rejects(Deno.stat(`${pair.client.home}/known_hosts`), Deno.errors.NotFound);
      assert.doesNotMatch(listener.stdout(), /typed at a terminal/);

      const pasted = await run(fp);
      assert.match(pasted, /recorded in known_hosts/);
      assert.match(pasted, /exit=0/);
      await listener.waitFor(/typed at a terminal/, "stdout");
      const list = await ovtp(["known-hosts"], { home: pair.client.home, env: CLI_ENV });
      assert.equal(list.stdout, `${listener.target}  ${fp}\n`);
    });
  },
});

Deno.test("~/.ovtp/config: an alias with address, port and unknown-host policy; errors name the line", async () => {
  await withServer(async (pair, listener) => {
    const home = pair.client.home;
    await Deno.writeTextFile(
      `${home}/config`,
      `# hosts\nhost backup b2\n  address 127.0.0.1\n  port ${listener.port}\n` +
        `  unknown-host accept-new\nhost *\n  unknown-host refuse\n`,
    );
    const sent = await ovtp(["send", "backup", "via alias"], { home, env: ASK });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stderr, new RegExp(`new host backup:${listener.port} recorded`));
    await listener.waitFor(/via alias/, "stdout");
    // `host *` applies to what no earlier block set.
    const other = await ovtp(["send", listener.target, "x"], { home, env: ASK });
    assert.equal(other.code, 4);
    assertOneError(other, /\(refused by unknown-host refuse in the config\)/);

    await Deno.writeTextFile(`${home}/config`, `host backup\n  adress 127.0.0.1\n`);
    const bad = await ovtp(["send", "backup", "x"], { home, env: ASK });
    assert.equal(bad.code, 2);
    assertOneError(
      bad,
      /Cannot read ".*config": line 2: Unknown setting "adress" \(known: address, port, identity, unknown-host\)/,
    );
    await Deno.writeTextFile(`${home}/config`, `port 1\n`);
    const orphan = await ovtp(["send", "backup", "x"], { home, env: ASK });
    assertOneError(orphan, /line 1: "port" before any host line/);
  });
});

Deno.test("an alias with several addresses: an unreachable one is passed over with a warning; all down is one error", async () => {
  await withServer(async (pair, listener) => {
    const home = pair.client.home;
    // listen binds 127.0.0.1 only: 127.0.0.2 and 127.0.0.3 refuse the connection.
    await Deno.writeTextFile(
      `${home}/config`,
      `host relays\n  address 127.0.0.2 127.0.0.3 127.0.0.1\n  port ${listener.port}\n` +
        `  unknown-host accept-new\nhost down\n  address 127.0.0.2 127.0.0.3\n` +
        `  port ${listener.port}\n`,
    );
    const sent = await ovtp(["send", "relays", "through the third"], { home, env: ASK });
    assert.equal(sent.code, 0, sent.stderr);
    const warnings = sent.stderr.split("\n").filter((line) => line.startsWith("ovtp: warning:"));
    assert.deepEqual(warnings.map((line) => /trying (\S+)$/.exec(line)?.[1]), [
      "127.0.0.3",
      "127.0.0.1",
    ]);
    assert.match(warnings[0], /Cannot connect to 127\.0\.0\.2:\d+: connection refused/);
    await listener.waitFor(/through the third/, "stdout");
    // One known_hosts entry, under the alias, whichever address answered.
    const known = await Deno.readTextFile(`${home}/known_hosts`);
    assert.equal(known.trim().split("\n").length, 1, known);
    assert.match(known, new RegExp(`^relays:${listener.port} `));

    const down = await ovtp(["send", "down", "x"], { home, env: ASK });
    assert.equal(down.code, 3, down.stderr);
    assert.match(down.stderr, /^ovtp: warning: .*127\.0\.0\.2.*; trying 127\.0\.0\.3$/m);
    assert.match(
      down.stderr,
      /^ovtp: error: Cannot connect to 127\.0\.0\.3:\d+: connection refused$/m,
    );

    await Deno.writeTextFile(`${home}/config`, `host relays\n  address 127.0.0.1 bad/name\n`);
    const bad = await ovtp(["send", "relays", "x"], { home, env: ASK });
    assert.equal(bad.code, 2, bad.stderr);
    assertOneError(bad, /line 2: Invalid address "bad\/name"/);
  });
});

Deno.test("-i FILE connects as another identity and keeps the home's trust files", async () => {
  await withServer(async (pair, listener) => {
    const work = await tempDir();
    const made = await ovtp(["keygen", "--comment", "work@laptop"], { home: work });
    assert.equal(made.code, 0, made.stderr);
    const line = (await ovtp(["id"], { home: work })).stdout.trim();
    await ovtp(["add-key", line, "--name", "work"], { home: pair.server.home });
    const sent = await ovtp(["send", "-i", `${work}/id_ovtp`, listener.target, "from work"], {
      home: pair.client.home,
    });
    assert.equal(sent.code, 0, sent.stderr);
    await listener.waitFor(/^work \(SHA256:\S+\): from work$/m, "stdout");
    // The host was recorded in the home's known_hosts, not next to the key.
    assert.match(await Deno.readTextFile(`${pair.client.home}/known_hosts`), /^127\.0\.0\.1:/);
    await assert.rejects(Deno.stat(`${work}/known_hosts`), Deno.errors.NotFound);
    const missing = await ovtp(["send", "-i", `${work}/nope`, listener.target, "x"], {
      home: pair.client.home,
    });
    assert.equal(missing.code, 5);
    assertOneError(missing, /No key file ".*nope"/);
  });
});
