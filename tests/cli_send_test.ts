import assert from "node:assert/strict";
import {
  assertOneError,
  assertStoppedCleanly,
  execCommand,
  homeWithIdentity,
  makePair,
  ovtp,
  startListen,
} from "./_cli.ts";
import { startHostileServer } from "./_hostile_server.ts";
import { tempDir } from "./_tmp.ts";

const windows = Deno.build.os === "windows";
if (windows) {
  console.log(
    "cli_send_test: skipping send --lines x1000 on Windows: it needs a `cat` to run 1,000 " +
      "times (256 at once), and cmd.exe has none (a deno process each would be too heavy)",
  );
}

Deno.test("send delivers a message; listen prints it with the sender; the host is recorded", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  try {
    const sent = await ovtp(["send", listener.target, "hello", "world"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.stdout, "");
    const serverFp = (await ovtp(["id", "--fingerprint"], { home: server.home })).stdout.trim();
    assert.equal(
      sent.stderr,
      `ovtp: new host ${listener.target} recorded in known_hosts: ${serverFp}\n`,
    );
    const clientFp = (await ovtp(["id", "--fingerprint"], { home: client.home })).stdout.trim();
    await listener.waitFor(`alice (${clientFp}): hello world\n`, "stdout");
    const known = await Deno.readTextFile(`${client.home}/known_hosts`);
    assert.match(known, new RegExp(`^${listener.target.replace(/\./g, "\\.")} ovtp1 `));
    // A second send finds the host known and prints nothing on stderr.
    const again = await ovtp(["send", listener.target, "again"], { home: client.home });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr, "");
  } finally {
    assertStoppedCleanly(await listener.stop());
  }
});

Deno.test("send reads the message from stdin and --json prints status, response and id", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["--json"]);
  try {
    const sent = await ovtp(["send", listener.target, "--json"], {
      home: client.home,
      stdin: "line one\nline two\n",
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.deepEqual(JSON.parse(sent.stdout), { status: "ok", response: "", request_id: 1 });
    await listener.waitFor("\n", "stdout");
    const event = JSON.parse(listener.stdout().trim());
    assert.equal(event.from, "alice");
    assert.equal(event.message, "line one\nline two\n");
    assert.match(event.fingerprint, /^SHA256:/);
    assert.equal(event.request_id, 1);
  } finally {
    await listener.stop();
  }
});

Deno.test("listen --exec answers with the command's output and passes the sender", async () => {
  const { server, client } = await makePair();
  const script = execCommand(
    'printf "%s|%s|%s|" "$OVTP_SENDER_NAME" "$OVTP_SENDER_FINGERPRINT" "$OVTP_REQUEST_ID"; tr a-z A-Z',
    "const text = await new Response(Deno.stdin.readable).text(); " +
      "const env = ['OVTP_SENDER_NAME', 'OVTP_SENDER_FINGERPRINT', 'OVTP_REQUEST_ID']" +
      ".map((name) => Deno.env.get(name)); " +
      "await Deno.stdout.write(new TextEncoder().encode(env.join('|') + '|' + text.toUpperCase()))",
  );
  const listener = await startListen(server.home, ["--exec", script]);
  try {
    const sent = await ovtp(["send", listener.target, "shout", "this"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
    const clientFp = (await ovtp(["id", "--fingerprint"], { home: client.home })).stdout.trim();
    assert.equal(sent.stdout, `alice|${clientFp}|1|SHOUT THIS\n`);
  } finally {
    await listener.stop();
  }
});

Deno.test("an --exec command slower than the server's idle timeout still answers", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, [
    "--idle-timeout",
    "1",
    "--exec",
    execCommand(
      "sleep 2.5; echo done",
      "await new Promise((r) => setTimeout(r, 2500)); console.log('done')",
    ),
  ]);
  try {
    const sent = await ovtp(["send", listener.target, "x"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.stdout, "done\n");
    assert.doesNotMatch(sent.stderr, /error|closed/);
  } finally {
    await listener.stop();
  }
});

Deno.test("a failing --exec command answers status error and send exits 1", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, [
    "--exec",
    execCommand("echo refused >&2; exit 3", "console.error('refused'); Deno.exit(3)"),
  ]);
  try {
    const sent = await ovtp(["send", listener.target, "x"], { home: client.home });
    assert.equal(sent.code, 1);
    assert.equal(sent.stdout, "refused\n");
    assertOneError(sent, /^ovtp: error: The server answered with status "error"$/);
    const json = await ovtp(["send", listener.target, "--json", "x"], { home: client.home });
    assert.equal(json.code, 1);
    // The response, then the failure (tests/cli_output_test.ts checks that one).
    assert.deepEqual(JSON.parse(json.stdout.split("\n")[0]), {
      status: "error",
      response: "refused\n",
      request_id: 1,
    });
  } finally {
    await listener.stop();
  }
});

Deno.test("send --lines pipelines 1,000 requests over one connection, answered in order", {
  ignore: windows,
}, async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home, ["--exec", "cat"]);
  try {
    const input = Array.from({ length: 1000 }, (_, i) => `message ${i}`);
    const sent = await ovtp(["send", listener.target, "--lines"], {
      home: client.home,
      stdin: input.join("\n") + "\n",
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.deepEqual(sent.stdout.trimEnd().split("\n"), input);
    // One connection for all of them.
    assert.equal(listener.stderr().match(/client connected/g)?.length, 1);
    const json = await ovtp(["send", listener.target, "--lines", "--json"], {
      home: client.home,
      stdin: "a\nb\n",
    });
    assert.deepEqual(json.stdout.trim().split("\n").map((l) => JSON.parse(l)), [
      { status: "ok", response: "a", request_id: 1 },
      { status: "ok", response: "b", request_id: 2 },
    ]);
  } finally {
    await listener.stop();
  }
});

Deno.test("an unauthorized client is refused with its fingerprint and the add-key command", async () => {
  const { server } = await makePair();
  const stranger = await homeWithIdentity("mallory");
  const listener = await startListen(server.home);
  try {
    const sent = await ovtp(["send", listener.target, "let me in"], { home: stranger.home });
    assert.equal(sent.code, 4);
    const fp = (await ovtp(["id", "--fingerprint"], { home: stranger.home })).stdout.trim();
    assertOneError(sent, new RegExp(`Not authorized: .* your key ${fp.replace(/[+/]/g, "\\$&")}$`));
    assert.ok(sent.stderr.includes(`ovtp: hint: ask the server's owner to run: ovtp add-key '`));
    assert.ok(sent.stderr.includes(stranger.line.split(" ").slice(0, 2).join(" ")));
    await listener.waitFor("refused client: not authorized");
    assert.ok(listener.stderr().includes(fp));
    assert.equal(listener.stdout(), "");
  } finally {
    await listener.stop();
  }
});

Deno.test("a changed host key is refused, naming the command that forgets the old key", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  try {
    const impostor = await homeWithIdentity("impostor");
    const serverLine = impostor.line.split(" ").slice(0, 2).join(" ");
    await Deno.writeTextFile(
      `${client.home}/known_hosts`,
      `example.org:4747 ${serverLine}\n${listener.target} ${serverLine}\n`,
    );
    const sent = await ovtp(["send", listener.target, "secret"], { home: client.home });
    assert.equal(sent.code, 4);
    assertOneError(sent, /The key of host 127\.0\.0\.1:\d+ has changed to SHA256:.*intercepting/);
    assert.match(
      sent.stderr,
      /ovtp: hint: .*run: ovtp known-hosts remove 127\.0\.0\.1:\d+\n/,
    );
    // The client never revealed itself: the server saw no authenticated client.
    assert.equal(listener.stdout(), "");
    assert.doesNotMatch(listener.stderr(), /client connected/);
  } finally {
    await listener.stop();
  }
});

Deno.test("send --strict refuses an unknown host and records nothing", async () => {
  const { server, client } = await makePair();
  const listener = await startListen(server.home);
  try {
    const sent = await ovtp(["send", "--strict", listener.target, "x"], { home: client.home });
    assert.equal(sent.code, 4);
    assertOneError(
      sent,
      /Unknown host 127\.0\.0\.1:\d+ with key SHA256:\S+ \(refused by --strict\)/,
    );
    await assert.rejects(Deno.stat(`${client.home}/known_hosts`), Deno.errors.NotFound);
  } finally {
    await listener.stop();
  }
});

Deno.test("send to a closed port fails with connection refused, exit 3", async () => {
  const { client } = await makePair();
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const sent = await ovtp(["send", `127.0.0.1:${port}`, "x"], { home: client.home });
  assert.equal(sent.code, 3);
  assertOneError(sent, new RegExp(`Cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`));
});

Deno.test("listen refuses to start with a malformed authorized_keys line", async () => {
  const { server } = await makePair();
  await Deno.writeTextFile(`${server.home}/authorized_keys`, "ovtp1 broken-key\n", {
    append: true,
  });
  const result = await ovtp(["listen", "--port", "0", "--host", "127.0.0.1"], {
    home: server.home,
  });
  assert.equal(result.code, 5);
  assertOneError(result, /Cannot use ".*authorized_keys": line 2: The key is not valid base64url/);
});

Deno.test("listen --add-keys imports keys before serving them", async () => {
  const server = await homeWithIdentity("server");
  const client = await homeWithIdentity("bob");
  const file = `${server.home}.keys`;
  await Deno.writeTextFile(file, client.line + "\n");
  const listener = await startListen(server.home, ["--add-keys", file]);
  try {
    assert.match(listener.stderr(), /authorized "bob" from /);
    const sent = await ovtp(["send", listener.target, "hi"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
  } finally {
    await listener.stop();
  }
});

Deno.test("send and getfile fail, rather than hang, when the server goes silent before answering", async () => {
  const { home } = await homeWithIdentity("alice");
  const server = await startHostileServer("silent");
  const work = await tempDir();
  try {
    for (const args of [["send", server.target, "hi"], ["getfile", server.target, "notes.txt"]]) {
      const result = await ovtp(args, { home, cwd: work });
      assert.equal(result.code, 3, args[0]);
      assert.equal(result.stdout, "");
      assertOneError(result, /^ovtp: error: The server stopped answering \(nothing for \d+ s\)$/);
    }
    assert.deepEqual(await Array.fromAsync(Deno.readDir(work)), []);
  } finally {
    await server.close();
  }
});
