import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  assertOneError,
  CAT,
  CLI_ENV,
  execCommand,
  GRACEFUL_STOP,
  homeWithIdentity,
  MAIN,
  makePair,
  ovtp,
  startListen,
  SYMLINKS,
} from "./_cli.ts";

// Windows has no file modes: a download gets the default permissions.
const MODES = Deno.build.os !== "windows";
if (!MODES) console.log("cli_ops_test: Windows has no file modes: getfile's modes are not checked");

/** `tr a-z A-Z` as a `--exec` command. */
const UPPER = execCommand(
  "tr a-z A-Z",
  "const text = await new Response(Deno.stdin.readable).text(); " +
    "await Deno.stdout.write(new TextEncoder().encode(text.toUpperCase()))",
);

Deno.test("send --call runs a named function with its parameters and the caller", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, [
    "--exec",
    "echo=" + execCommand(
      'printf "%s|" "$OVTP_FUNCTION" "$OVTP_SENDER_NAME"; cat',
      "const text = await new Response(Deno.stdin.readable).text(); " +
        "const names = Deno.env.get('OVTP_FUNCTION') + '|' + Deno.env.get('OVTP_SENDER_NAME');" +
        " await Deno.stdout.write(new TextEncoder().encode(names + '|' + text))",
    ),
    "--exec",
    `upper=${UPPER}`,
    "--exec",
    CAT,
  ]);
  try {
    const called = await ovtp(
      [
        "send",
        listener.target,
        "--call",
        "echo",
        "--param",
        "level=full",
        "--param",
        "a=b=c",
        "hi",
      ],
      { home: client.home },
    );
    assert.equal(called.code, 0, called.stderr);
    const [prefix, json] = called.stdout.split("|alice|");
    assert.equal(prefix, "echo");
    assert.deepEqual(JSON.parse(json), {
      function: "echo",
      params: { level: "full", a: "b=c" },
      message: "hi",
    });
    // The bare --exec is still the default handler for plain messages.
    const plain = await ovtp(["send", listener.target, "plain"], { home: client.home });
    assert.equal(plain.stdout, "plain\n");
  } finally {
    await listener.stop();
  }
});

Deno.test("an unknown function is answered unknown-function with the known names", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["--exec", "b=cat", "--exec", "a=cat"]);
  try {
    const called = await ovtp(["send", listener.target, "--call", "nope"], { home: client.home });
    assert.equal(called.code, 1);
    assert.equal(called.stdout, "");
    assertOneError(
      called,
      /status "unknown-function": Unknown function "nope"; known: a, b$/,
    );
  } finally {
    await listener.stop();
  }
});

Deno.test("a function running past --exec-timeout is killed and answered timeout", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, [
    "--exec",
    "slow=" + execCommand("sleep 30", "await new Promise((done) => setTimeout(done, 10000))"),
    "--exec-timeout",
    "0.3",
  ]);
  try {
    const called = await ovtp(["send", listener.target, "--call", "slow", "--json"], {
      home: client.home,
    });
    assert.equal(called.code, 1);
    // The response, then the failure as JSON.
    assert.equal(JSON.parse(called.stdout.split("\n")[0]).status, "timeout");
    assertOneError(called, /status "timeout": The function ran longer than 300 ms and was stopped/);
    // The server is still answering.
    const after = await ovtp(["send", listener.target, "x"], { home: client.home });
    assert.equal(after.code, 0, after.stderr);
  } finally {
    await listener.stop();
  }
});

Deno.test("a key's allow list is enforced, naming the missing permission", async () => {
  const server = await homeWithIdentity("server");
  const client = await homeWithIdentity("limited");
  const added = await ovtp(["add-key", client.line, "--allow", "message,call:ok"], {
    home: server.home,
  });
  assert.equal(added.code, 0, added.stderr);
  const list = await ovtp(["keys"], { home: server.home });
  assert.match(list.stdout, /^limited\s+SHA256:\S+\s+allow="message,call:ok"$/m);
  const listener = await startListen(server.home, [
    "--exec",
    `ok=${CAT}`,
    "--exec",
    `secret=${CAT}`,
  ]);
  try {
    assert.equal((await ovtp(["send", listener.target, "hi"], { home: client.home })).code, 0);
    assert.equal(
      (await ovtp(["send", listener.target, "--call", "ok"], { home: client.home })).code,
      0,
    );
    const call = await ovtp(["send", listener.target, "--call", "secret"], { home: client.home });
    assert.equal(call.code, 1);
    assertOneError(
      call,
      /status "forbidden": Your key is not allowed to use call:secret \(allowed: message, call:ok\)/,
    );
    const dir = await tempDir();
    await Deno.writeTextFile(`${dir}/f.txt`, "x");
    const upload = await ovtp(["sendfile", listener.target, `${dir}/f.txt`], { home: client.home });
    assert.equal(upload.code, 1);
    assertOneError(upload, /refused the file: Your key is not allowed to use upload/);
    await listener.waitFor(/refused upload: not permitted/);
  } finally {
    await listener.stop();
  }
});

Deno.test("an expired key is refused at connection, with its expiry", async () => {
  const server = await homeWithIdentity("server");
  const client = await homeWithIdentity("temp");
  await ovtp(["add-key", client.line, "--expires", "2001-02-03"], { home: server.home });
  const listed = await ovtp(["keys"], { home: server.home });
  assert.match(listed.stdout, /expires="2001-02-03T00:00:00\.000Z" {2}\(expired\)/);
  const listener = await startListen(server.home);
  try {
    const sent = await ovtp(["send", listener.target, "hi"], { home: client.home });
    assert.equal(sent.code, 4);
    assertOneError(
      sent,
      /Not authorized: your key SHA256:\S+ expired on 2001-02-03T00:00:00\.000Z/,
    );
    await listener.waitFor(/refused client: key expired/);
  } finally {
    await listener.stop();
  }
  const bad = await ovtp(["add-key", client.line, "--expires", "soon"], { home: server.home });
  assert.equal(bad.code, 2);
  assertOneError(bad, /Invalid expiry "soon"/);
});

Deno.test("over the rate limit: too-many-requests with a retry time, across connections, then allowed again", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["--rate", "3/s"]);
  try {
    const burst = await ovtp(["send", listener.target, "--lines", "--json"], {
      home: client.home,
      stdin: "1\n2\n3\n4\n5\n",
    });
    assert.equal(burst.code, 1);
    const lines = burst.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.pop().event, "error"); // The failure comes last.
    const statuses = lines.map((line) => line.status);
    assert.deepEqual(statuses.slice(0, 3), ["ok", "ok", "ok"]);
    assert.ok(statuses.slice(3).every((s: string) => s === "too-many-requests"), statuses.join());
    // Another connection of the same key is still limited.
    const next = await ovtp(["send", listener.target, "again"], { home: client.home });
    if (next.code !== 0) {
      assert.equal(next.code, 1);
      assertOneError(next, /status "too-many-requests": Too many requests: retry after 1 s/);
    }
    await new Promise((r) => setTimeout(r, 1100));
    const later = await ovtp(["send", listener.target, "later"], { home: client.home });
    assert.equal(later.code, 0, later.stderr);
  } finally {
    await listener.stop();
  }
});

Deno.test("a key's own rate option limits it over several connections", async () => {
  const server = await homeWithIdentity("server");
  const client = await homeWithIdentity("chatty");
  await ovtp(["add-key", client.line, "--rate", "2/h"], { home: server.home });
  const listener = await startListen(server.home);
  try {
    for (const n of [1, 2]) {
      const ok = await ovtp(["send", listener.target, `m${n}`], { home: client.home });
      assert.equal(ok.code, 0, ok.stderr);
    }
    const third = await ovtp(["send", listener.target, "m3"], { home: client.home });
    assert.equal(third.code, 1);
    assertOneError(third, /Too many requests: retry after \d+ s/);
  } finally {
    await listener.stop();
  }
});

Deno.test("getfile downloads, verifies, lists, and refuses paths outside the served folder", async () => {
  const { server, client } = await makePair();
  const root = await tempDir();
  const served = `${root}/served`;
  await Deno.mkdir(`${served}/docs`, { recursive: true });
  const data = crypto.getRandomValues(new Uint8Array(50_000));
  await Deno.writeFile(`${served}/docs/report.bin`, data);
  if (MODES) await Deno.chmod(`${served}/docs/report.bin`, 0o640);
  await Deno.writeTextFile(`${root}/secret.txt`, "top secret");
  if (SYMLINKS) await Deno.symlink(`${root}/secret.txt`, `${served}/escape`);
  const listener = await startListen(server.home, ["--serve", served]);
  const work = await tempDir();
  try {
    const got = await ovtp(["getfile", listener.target, "docs/report.bin", "-o", `${work}/r.bin`], {
      home: client.home,
    });
    assert.equal(got.code, 0, got.stderr);
    assert.match(
      got.stdout,
      /^got docs\/report\.bin: 48\.8 KiB in .* sha256 [0-9a-f]{64}, verified and saved as /,
    );
    assert.deepEqual(await Deno.readFile(`${work}/r.bin`), data);
    if (MODES) assert.equal((await Deno.stat(`${work}/r.bin`)).mode! & 0o777, 0o640);

    const again = await ovtp(
      ["getfile", listener.target, "docs/report.bin", "-o", `${work}/r.bin`],
      {
        home: client.home,
      },
    );
    assert.equal(again.code, 6); // A local file.
    assertOneError(again, /already exists/);

    const list = await ovtp(["getfile", listener.target, "--list", "docs"], { home: client.home });
    assert.equal(list.code, 0, list.stderr);
    // Without Unix modes (Windows), only the type and size are checked.
    const listed = MODES
      ? /^-rw-r-----\s+50000 {2}report\.bin$/m
      : /^-\S{9}\s+50000 {2}report\.bin$/m;
    assert.match(list.stdout, listed);
    const top = await ovtp(["getfile", listener.target, "--list", "--json"], { home: client.home });
    assert.deepEqual(JSON.parse(top.stdout).entries.map((e: { name: string }) => e.name), ["docs"]);

    for (
      const [path, reason] of [
        ["../secret.txt", /"\.\." is not allowed/],
        ["/etc/passwd", /absolute paths are not served/],
        ["escape", /it leads outside the served folder/],
        ["docs/missing.bin", /No such file in the served folder/],
      ] as const
    ) {
      if (path === "escape" && !SYMLINKS) continue;
      const refused = await ovtp(["getfile", listener.target, path, "-o", `${work}/x`], {
        home: client.home,
      });
      assert.equal(refused.code, 1, path);
      assertOneError(refused, reason);
      await assert.rejects(Deno.stat(`${work}/x`), Deno.errors.NotFound);
    }
  } finally {
    await listener.stop();
  }
});

Deno.test("getfile resumes from a partial download whose prefix the server confirms", async () => {
  const { server, client } = await makePair();
  const served = await tempDir();
  const data = crypto.getRandomValues(new Uint8Array(60_000));
  await Deno.writeFile(`${served}/big.bin`, data);
  const work = await tempDir();
  await Deno.writeFile(`${work}/big.bin.ovtp-partial`, data.subarray(0, 25_000));
  const listener = await startListen(server.home, ["--serve", served]);
  try {
    const got = await ovtp(["getfile", listener.target, "big.bin", "-o", `${work}/big.bin`], {
      home: client.home,
    });
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stderr, /resuming ".*big\.bin" after 24\.4 KiB already here \(verified\)/);
    assert.deepEqual(await Deno.readFile(`${work}/big.bin`), data);
    await assert.rejects(Deno.stat(`${work}/big.bin.ovtp-partial`), Deno.errors.NotFound);
    // A partial file that does not match starts over.
    await Deno.writeFile(`${work}/b2.ovtp-partial`, new Uint8Array(25_000));
    const fresh = await ovtp(["getfile", listener.target, "big.bin", "-o", `${work}/b2`], {
      home: client.home,
    });
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.doesNotMatch(fresh.stderr, /resuming/);
    assert.match(
      fresh.stderr,
      /^ovtp: "big\.bin" changed on the server since the interrupted download: starting over \(the 24\.4 KiB here are discarded\)$/m,
    );
    assert.deepEqual(await Deno.readFile(`${work}/b2`), data);
  } finally {
    await listener.stop();
  }
});

Deno.test("listen reads a config file; flags win; an invalid file is refused with its line", async () => {
  const { server, client } = await makePair();
  const config = `${server.home}/listen.json`;
  await Deno.writeTextFile(config, JSON.stringify({ exec: UPPER, json: true }, null, 2));
  const listener = await startListen(server.home, ["--log-format", "json"]);
  try {
    const sent = await ovtp(["send", listener.target, "from config"], { home: client.home });
    assert.equal(sent.stdout, "FROM CONFIG\n");
    await listener.waitFor(/"msg":"client disconnected"/);
    const logLine = listener.stderr().split("\n").find((l) => l.includes("client connected"))!;
    assert.equal(JSON.parse(logLine).level, "info");
  } finally {
    await listener.stop();
  }
  await Deno.writeTextFile(config, '{\n  "port": 0,\n  "exec": "cat",\n  "max-conections": 5\n}\n');
  const typo = await ovtp(["listen", "--host", "127.0.0.1"], { home: server.home });
  assert.equal(typo.code, 2);
  assertOneError(
    typo,
    /Invalid config file ".*listen\.json", line 4: unknown setting "max-conections"/,
  );
  await Deno.writeTextFile(config, '{\n  "port": 0,\n  "exec": "cat"\n  "json": true\n}\n');
  const broken = await ovtp(["listen"], { home: server.home });
  assert.equal(broken.code, 2);
  assertOneError(broken, /Invalid config file ".*listen\.json", line 4: /);
  const other = `${server.home}/other.json`;
  await Deno.writeTextFile(other, '{"json": "yes"}');
  const wrongType = await ovtp(["listen", "--config", other], { home: server.home });
  assert.equal(wrongType.code, 2);
  assertOneError(wrongType, /line 1: "json" must be true or false/);
});

Deno.test("listen -q logs only warnings", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["-q"]);
  try {
    assert.equal((await ovtp(["send", listener.target, "x"], { home: client.home })).code, 0);
    const stranger = await homeWithIdentity("stranger");
    await ovtp(["send", listener.target, "x"], { home: stranger.home });
    await listener.waitFor(/warning: refused client: not authorized/);
    assert.doesNotMatch(listener.stderr(), /client connected/);
  } finally {
    await listener.stop();
  }
});

// Windows has no SIGTERM (listen stops on Ctrl-C only): see GRACEFUL_STOP.
Deno.test("SIGTERM lets a request in flight finish, then listen exits 0", {
  ignore: !GRACEFUL_STOP,
}, async () => {
  const { server, client } = await makePair();
  const started = `${server.home}.started`;
  const listener = await startListen(server.home, [
    "--exec",
    `touch '${started}'; sleep 1; echo done`,
    "--grace",
    "5",
  ]);
  const pending = sendWork(client.home, listener.target);
  await fileAppears(started);
  const code = await listener.stop("SIGTERM");
  const result = await pending;
  assert.equal(new TextDecoder().decode(result.stdout), "done\n");
  assert.equal(result.code, 0);
  assert.equal(code, 0);
  assert.match(listener.stderr(), /SIGTERM: shutting down/);
});

Deno.test("a second SIGTERM a moment after the first stops listen at once, with 130", {
  ignore: !GRACEFUL_STOP,
}, async () => {
  const { server, client } = await makePair();
  const started = `${server.home}.started`;
  const listener = await startListen(server.home, [
    "--exec",
    `touch '${started}'; sleep 30; echo done`,
    "--grace",
    "60",
  ]);
  const pending = sendWork(client.home, listener.target);
  await fileAppears(started);
  // A copy within the second is the same request: still graceful.
  Deno.kill(listener.pid, "SIGTERM");
  Deno.kill(listener.pid, "SIGTERM");
  await listener.waitFor(/SIGTERM: shutting down/);
  await new Promise((r) => setTimeout(r, 1200));
  assert.doesNotMatch(listener.stderr(), /again: stopping now/);
  const code = await listener.stop("SIGTERM");
  assert.equal(code, 130, listener.stderr());
  assert.match(listener.stderr(), /warning: SIGTERM again: stopping now/);
  const result = await pending;
  assert.equal(result.code, 3, new TextDecoder().decode(result.stderr));
});

/** `ovtp send TARGET work` from `home`, started now and awaited later. */
function sendWork(home: string, target: string): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, "send", target, "work"],
    env: { ...CLI_ENV, OVTP_HOME: home, HOME: `${home}.user` },
    stdout: "piped",
    stderr: "piped",
  }).output();
}

/** Waits until `path` exists (a command run by --exec has started). */
async function fileAppears(path: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await Deno.stat(path).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} never appeared`);
}

Deno.test("slowloris connections that trickle bytes do not stop a good client", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["--handshake-timeout", "3"]);
  const trickles: Deno.Conn[] = [];
  let stop = false;
  try {
    for (let i = 0; i < 20; i++) {
      trickles.push(await Deno.connect({ hostname: "127.0.0.1", port: listener.port }));
    }
    const trickling = (async () => {
      // A byte at a time: a valid-looking length, then a message that never ends.
      const bytes = [0x04, 0xc0, 1, 2, 3, 4, 5, 6, 7, 8];
      for (let i = 0; i < bytes.length && !stop; i++) {
        for (const conn of trickles) await conn.write(new Uint8Array([bytes[i]])).catch(() => {});
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const good = await ovtp(["send", listener.target, "still served"], { home: client.home });
    assert.equal(good.code, 0, good.stderr);
    await listener.waitFor("still served", "stdout");
    stop = true;
    await trickling;
  } finally {
    for (const conn of trickles) {
      try {
        conn.close();
      } catch {
        // Closed by the server's handshake timeout.
      }
    }
    await listener.stop();
  }
});
