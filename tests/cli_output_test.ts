/**
 * Output a script can rely on: a closed stdout ends every command quietly
 * (exit 141), `--json` reports a failure as one JSON object on stdout, every
 * `listen --json` line has an `event`, `--log-format json` has no plain
 * line, and each exit code means one thing, as README's table says.
 */
import { tempDir, tempFile } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  assertOneError,
  assertStoppedCleanly,
  execCommand,
  homeWithIdentity,
  MAIN,
  makePair,
  ovtp,
  ovtpStdoutClosed,
  type RunResult,
  startListen,
  tempHome,
} from "./_cli.ts";
import { PERMISSIONS } from "../scripts/compile.ts";
import { describeFailure, EXIT } from "../commands/_failure.ts";

/** The exit codes the tests below saw, checked against README at the end. */
const seen = new Set<number>();

function expectCode(result: { code: number; stderr: string }, code: number): void {
  assert.equal(result.code, code, result.stderr);
  seen.add(code);
}

/** Asserts that a run ended quietly because its stdout was closed. */
function assertQuiet(result: { code: number; stderr: string }, what: string): void {
  assert.equal(result.code, EXIT.stdoutClosed, `${what}: ${result.stderr}`);
  // A stack frame ("    at ..."), not the word "at" in a log line.
  assert.doesNotMatch(
    result.stderr,
    /error|Broken|Uncaught|^\s+at /im,
    `${what}: ${result.stderr}`,
  );
  seen.add(result.code);
}

/** Asserts that stdout's last line is the one JSON failure object, matching stderr's line. */
function assertJsonFailure(result: RunResult, code: number, kind: string): void {
  expectCode(result, code);
  const lines = result.stdout.trimEnd().split("\n");
  const failures = lines.filter((line) => line.includes('"event":"error"'));
  assert.equal(failures.length, 1, result.stdout);
  const failure = JSON.parse(lines.at(-1)!);
  assert.deepEqual(Object.keys(failure).sort(), ["event", "exit_code", "hint", "kind", "message"]);
  assert.equal(failure.event, "error");
  assert.equal(failure.kind, kind);
  assert.equal(failure.exit_code, code);
  assert.ok(failure.hint === null || typeof failure.hint === "string");
  assertOneError(result, new RegExp(`^ovtp: error: ${escape(failure.message)}$`));
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A port nothing listens on. */
function closedPort(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return `127.0.0.1:${listener.addr.port}`;
}

Deno.test("a closed stdout ends every command that prints quietly, with exit 141", async () => {
  const { server, client } = await makePair();
  const files = await tempDir();
  await Deno.writeFile(`${files}/big.bin`, crypto.getRandomValues(new Uint8Array(65536)));
  await Deno.writeTextFile(`${files}/notes.txt`, "notes\n");
  const listener = await startListen(server.home, ["--serve", files]);
  try {
    const sealed = `${files}/big.ovtp`;
    expectCode(
      await ovtp(["seal", "-r", "self", `${files}/big.bin`, "-o", sealed], {
        home: client.home,
      }),
      0,
    );
    // Recorded in known_hosts first, so that the first-contact notice is not on stderr.
    expectCode(await ovtp(["send", listener.target, "hello"], { home: client.home }), 0);
    const runs: [string, string[], string][] = [
      ["help", ["--help"], client.home],
      ["version", ["--version"], client.home],
      ["keygen", ["keygen"], await tempHome()],
      ["id", ["id"], client.home],
      ["id --json", ["id", "--json"], client.home],
      ["add-key", ["add-key", client.line], await tempHome()],
      ["keys", ["keys"], server.home],
      ["known-hosts", ["known-hosts"], client.home],
      ["invite", ["invite"], server.home],
      ["completions", ["completions", "bash"], client.home],
      ["send --json", ["send", listener.target, "--json", "hi"], client.home],
      ["sendfile", ["sendfile", listener.target, `${files}/notes.txt`], client.home],
      ["getfile --list", ["getfile", listener.target, "--list"], client.home],
      ["seal", ["seal", "-r", "self", `${files}/big.bin`], client.home],
      ["open", ["open", sealed], client.home],
      ["open --info", ["open", "--info", sealed], client.home],
    ];
    for (const [what, args, home] of runs) {
      assertQuiet(await ovtpStdoutClosed(args, { home }), what);
    }
    // The server still serves.
    expectCode(await ovtp(["send", listener.target, "still"], { home: client.home }), 0);
  } finally {
    assertStoppedCleanly(await listener.stop());
  }
});

Deno.test("a stdout that cannot be written (a full disk) is a local I/O failure, exit 6", {
  ignore: Deno.build.os !== "linux", // /dev/full
}, async () => {
  const { home } = await homeWithIdentity("me");
  const output = await new Deno.Command("sh", {
    args: [
      "-c",
      '"$0" "$@" > /dev/full',
      Deno.execPath(),
      "run",
      "--quiet",
      ...PERMISSIONS,
      MAIN,
      "id",
    ],
    env: { NO_COLOR: "1", OVTP_HOME: home, HOME: `${home}.user` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const result = { code: output.code, stdout: "", stderr: new TextDecoder().decode(output.stderr) };
  expectCode(result, EXIT.io);
  assertOneError(result, /^ovtp: error: Cannot write to stdout: No space left on device/);
});

Deno.test("listen stops quietly with exit 141 when its stdout is closed", async () => {
  const { server, client } = await makePair();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, MAIN, "listen", "--host", "127.0.0.1", "--port", "0"],
    env: { NO_COLOR: "1", OVTP_HOME: server.home, HOME: `${server.home}.user` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdout.cancel();
  let stderr = "";
  const pump = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) stderr += text;
  })();
  const deadline = Date.now() + 15000;
  while (!/listening on 127\.0\.0\.1:(\d+)/.test(stderr)) {
    if (Date.now() > deadline) throw new Error(`listen did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const target = `127.0.0.1:${/listening on 127\.0\.0\.1:(\d+)/.exec(stderr)![1]}`;
  // Answered "ok" before it is printed; the print finds stdout closed.
  expectCode(await ovtp(["send", target, "first"], { home: client.home }), 0);
  const status = await child.status;
  await pump;
  assertQuiet({ code: status.code, stderr }, "listen");
  assert.match(stderr, /stdout closed: shutting down/);
});

Deno.test("chat stops quietly with exit 141 when its stdout is closed", async () => {
  const server = await homeWithIdentity("server");
  const alice = await homeWithIdentity("alice");
  const bob = await homeWithIdentity("bob");
  for (const who of [alice, bob]) {
    expectCode(await ovtp(["add-key", who.line], { home: server.home }), 0);
  }
  const listener = await startListen(server.home);
  try {
    // Alice's chat waits on stdin; the first message she receives finds stdout closed.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...PERMISSIONS, MAIN, "chat", listener.target, "--room", "r"],
      env: {
        NO_COLOR: "1",
        OVTP_HOME: alice.home,
        HOME: `${alice.home}.user`,
        OVTP_ACCEPT_NEW: "1",
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await child.stdout.cancel();
    const stderr = new Response(child.stderr).text();
    let status: Deno.CommandStatus | undefined;
    child.status.then((s) => status = s);
    for (let i = 0; i < 50 && status === undefined; i++) {
      await ovtp(["chat", listener.target, "--room", "r"], { home: bob.home, stdin: `hi ${i}\n` });
    }
    await child.stdin.close().catch(() => {});
    assertQuiet({ code: (await child.status).code, stderr: await stderr }, "chat");
  } finally {
    await listener.stop();
  }
});

Deno.test("with --json, every command reports a failure as one JSON object on stdout", async () => {
  const withIdentity = await homeWithIdentity("me");
  const empty = await tempHome();
  const dead = closedPort();
  const cases: [string[], string, number, string][] = [
    [["keygen", "--json"], withIdentity.home, EXIT.key, "key"],
    [["id", "--json"], empty, EXIT.key, "key"],
    [["add-key", "--json", "ovtp1 garbage"], empty, EXIT.key, "key"],
    [["keys", "remove", "nobody", "--json"], empty, EXIT.notFound, "not-found"],
    [["keys", "--json", "--bogus"], empty, EXIT.usage, "usage"],
    [["known-hosts", "remove", "nowhere", "--json"], empty, EXIT.notFound, "not-found"],
    [["listen", "--json", "--port", "70000"], withIdentity.home, EXIT.usage, "usage"],
    [["send", dead, "--json", "hi"], withIdentity.home, EXIT.network, "network"],
    [["sendfile", dead, "--json", "/nonexistent/file"], withIdentity.home, EXIT.io, "io"],
    [["getfile", dead, "--json", "x"], withIdentity.home, EXIT.network, "network"],
    [["chat", dead, "--json"], withIdentity.home, EXIT.network, "network"],
    [["invite", "--json", "--valid", "x"], withIdentity.home, EXIT.usage, "usage"],
    [["pair", dead, "1-1234-5678", "--json"], withIdentity.home, EXIT.network, "network"],
    [["open", "--info", "--json", "/nonexistent/x.ovtp"], withIdentity.home, EXIT.io, "io"],
  ];
  for (const [args, home, code, kind] of cases) {
    assertJsonFailure(await ovtp(args, { home, stdin: "" }), code, kind);
  }
  // Without --json, stdout stays empty.
  const plain = await ovtp(["send", dead, "hi"], { home: withIdentity.home });
  expectCode(plain, EXIT.network);
  assert.equal(plain.stdout, "");
});

Deno.test("send --json refused by the server prints the response, then the failure", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, [
    "--exec",
    execCommand("echo refused; exit 3", "console.log('refused'); Deno.exit(3)"),
  ]);
  try {
    const sent = await ovtp(["send", listener.target, "--json", "x"], { home: client.home });
    assertJsonFailure(sent, EXIT.remote, "remote");
    const [response] = sent.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(response, { status: "error", response: "refused\n", request_id: 1 });
  } finally {
    await listener.stop();
  }
});

Deno.test("every listen --json line has an event; --no-json and --json=false override listen.json", async () => {
  const { server, client } = await makePair();
  await Deno.writeTextFile(`${server.home}/listen.json`, '{"json": true}\n');
  const listener = await startListen(server.home);
  try {
    const file = await tempFile();
    await Deno.writeTextFile(file, "content");
    expectCode(await ovtp(["send", listener.target, "hello"], { home: client.home }), 0);
    expectCode(await ovtp(["sendfile", listener.target, file], { home: client.home }), 0);
    await listener.waitFor(/"event":"file"/, "stdout");
    const lines = listener.stdout().trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((line) => line.event), ["message", "file"]);
    assert.equal(lines[0].message, "hello");
  } finally {
    await listener.stop();
  }
  for (const flag of ["--no-json", "--json=false"]) {
    const text = await startListen(server.home, [flag]);
    try {
      expectCode(await ovtp(["send", text.target, "plain"], { home: client.home }), 0);
      await text.waitFor(/: plain\n/, "stdout");
      assert.match(text.stdout(), /^alice \(SHA256:[^)]+\): plain\n$/);
    } finally {
      await text.stop();
    }
  }
});

Deno.test("--log-format json writes no plain line, from 'listening on' to a fatal error", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["--log-format", "json", "-v"]);
  let port = 0;
  try {
    port = listener.port;
    expectCode(await ovtp(["send", listener.target, "hi"], { home: client.home }), 0);
    // A second listen on the same address: the failure names the address, as JSON.
    const taken = await ovtp(
      ["listen", "--host", "127.0.0.1", "--port", String(port), "--log-format=json"],
      { home: server.home },
    );
    expectCode(taken, EXIT.network);
    const failure = JSON.parse(taken.stderr.trimEnd().split("\n").at(-1)!);
    assert.equal(failure.level, "error");
    assert.equal(
      failure.msg,
      `Cannot listen on 127.0.0.1:${port}: the address is already in use`,
    );
    for (const line of taken.stderr.trimEnd().split("\n")) JSON.parse(line);
  } finally {
    assertStoppedCleanly(await listener.stop());
  }
  const lines = listener.stderr().trimEnd().split("\n");
  const events = lines.map((line) => JSON.parse(line));
  const listening = events.filter((event) => event.event === "listening");
  assert.equal(listening.length, 1, lines.join("\n"));
  assert.equal(listening[0].address, `127.0.0.1:${port}`);
  assert.ok(events.every((event) => typeof event.level === "string" && event.time), lines.join());
  // Without --log-format json, the same failure is the usual text.
  const text = await startListen(server.home);
  try {
    const again = await ovtp(["listen", "--host", "127.0.0.1", "--port", String(text.port)], {
      home: server.home,
    });
    assertOneError(again, /^ovtp: error: Cannot listen on 127\.0\.0\.1:\d+: .*already in use$/);
  } finally {
    await text.stop();
  }
});

Deno.test("send --lines prints one line per response, empty or several lines long", {
  ignore: Deno.build.os === "windows", // The --exec command is sh.
}, async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, [
    "--exec",
    execCommand(
      `case "$(cat)" in empty) ;; two) printf 'a\\nb\\n' ;; *) echo one ;; esac`,
      "",
    ),
  ]);
  try {
    const sent = await ovtp(["send", listener.target, "--lines"], {
      home: client.home,
      stdin: "x\nempty\ntwo\n",
    });
    expectCode(sent, 0);
    assert.equal(sent.stdout, "one\n\na\\nb\n");
  } finally {
    await listener.stop();
  }
});

Deno.test("a message over the limit is refused with a pointer to sendfile (exit 8)", async () => {
  const { client } = await makePair();
  const big = new Uint8Array(16 * 1024 * 1024);
  const sent = await ovtp(["send", closedPort(), "--json"], { home: client.home, stdin: big });
  assertJsonFailure(sent, EXIT.tooLarge, "too-large");
  assert.match(sent.stderr, /the most one message carries/);
  assert.match(sent.stderr, /ovtp: hint: .*ovtp sendfile 127\.0\.0\.1:\d+ --name NAME < FILE/);
});

Deno.test("exit codes: 1 for a refused status, 4 for trust, 2 for usage", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, [
    "--exec",
    execCommand("exit 1", "Deno.exit(1)"),
  ]);
  try {
    expectCode(await ovtp(["send", listener.target, "x"], { home: client.home }), EXIT.remote);
    const stranger = await homeWithIdentity("stranger");
    const strict = await ovtp(["send", listener.target, "--strict", "x"], { home: stranger.home });
    expectCode(strict, EXIT.trust);
    expectCode(await ovtp(["send"], { home: client.home }), EXIT.usage);
  } finally {
    await listener.stop();
  }
});

Deno.test("an unexpected error is an internal failure, exit 70, with a hint to report it", () => {
  const failure = describeFailure(new TypeError("x is undefined"));
  assert.equal(failure.exitCode, EXIT.internal);
  assert.equal(failure.kind, "internal");
  assert.match(failure.hint!, /bug/);
  seen.add(EXIT.internal);
  assert.equal(describeFailure(new Deno.errors.NotFound("gone")).exitCode, EXIT.io);
  // Input the library could not take is not a bug.
  assert.equal(
    describeFailure(new RangeError("The parameters are too large")).exitCode,
    EXIT.usage,
  );
  assert.equal(describeFailure(new SyntaxError("Invalid base64url text")).kind, "usage");
  assert.equal(describeFailure(new Deno.errors.ConnectionReset("reset")).exitCode, EXIT.network);
});

Deno.test("README's exit code table is EXIT's, and the tests above saw every code", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("## Exit codes and errors"));
  const documented = [...section.matchAll(/^\| (\d+)\s+\|/gm)].map((m) => Number(m[1]));
  assert.deepEqual(documented, Object.values(EXIT));
  // 130 (interrupted) is triggered on a terminal, in cli_keygen_tmux_test.ts.
  const untriggered = documented.filter((code) => !seen.has(code) && code !== EXIT.interrupted);
  assert.deepEqual(untriggered, []);
});
