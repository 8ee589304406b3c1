/**
 * Nothing a peer sends can drive the reader's terminal or forge a line
 * (docs/security.md, "Peer text on terminals and in logs"): a hostile
 * server puts escape sequences, C1 controls, a bidi override, separators
 * and newlines in every string it sends, and the client prints none of them
 * raw, on a pipe or on a terminal; --json keeps the exact values. On the
 * server side, a client's message is one line of listen's output.
 */
import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { printable } from "../commands/_printable.ts";
import { PERMISSIONS } from "../scripts/compile.ts";
import {
  assertOneError,
  CLI_ENV,
  homeWithIdentity,
  MAIN,
  makePair,
  ovtp,
  type RunResult,
  startListen,
} from "./_cli.ts";
import { HAS_TMUX, tmux } from "./_tmux.ts";
import { EVIL, findRaw, RAW_PIECES, startHostileServer } from "./_hostile_server.ts";

const SHOWN = printable(EVIL);

/** Asserts that neither stream holds a raw piece of EVIL or a forged line. */
function assertClean(
  result: { stdout: string; stderr: string },
  context: string,
  payloadLines = false,
) {
  for (const stream of ["stdout", "stderr"] as const) {
    const found = findRaw(result[stream], payloadLines);
    assert.equal(found, undefined, `${context}: ${stream} holds ${found}:\n${result[stream]}`);
  }
}

// `script` (util-linux) runs a command on a pseudo-terminal; its options
// differ on macOS and the BSDs, and Windows has none.
const hasScript = Deno.build.os === "linux" && commandWorks("script", ["--version"]);
if (!hasScript) console.log("Skipping the pseudo-terminal cases: no util-linux script here");

function commandWorks(name: string, args: string[]): boolean {
  try {
    return new Deno.Command(name, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `ovtp ARGS...` with stdin, stdout and stderr on a pseudo-terminal;
 * returns what the terminal received (both streams) with its CR LF line
 * ends made LF.
 */
async function ovtpOnTerminal(args: string[], home: string): Promise<RunResult> {
  const command = [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN, ...args]
    .map(quote).join(" ");
  const output = await new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    env: { ...CLI_ENV, HOME: `${home}.user`, OVTP_HOME: home },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).replaceAll("\r\n", "\n");
  return { code: output.code, stdout: text, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("a response body is exact on a pipe, printable on a terminal, exact in --json", async () => {
  const { home } = await homeWithIdentity("alice");
  const server = await startHostileServer();
  try {
    const piped = await ovtp(["send", server.target, "hi"], { home });
    assert.equal(piped.code, 0, piped.stderr);
    // The payload itself, to a pipe: the exact bytes.
    assert.equal(piped.stdout, EVIL + "\n");
    assertClean({ stdout: "", stderr: piped.stderr }, "send | cat");

    const json = await ovtp(["send", server.target, "--json", "hi"], { home });
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).response, EVIL);
    assertClean(json, "send --json");

    // --lines: one line per response, even to a pipe.
    const lines = await ovtp(["send", server.target, "--lines"], { home, stdin: "a\nb\n" });
    assert.equal(lines.code, 0, lines.stderr);
    assert.equal(lines.stdout, `${SHOWN}\n${SHOWN}\n`);

    if (hasScript) {
      const tty = await ovtpOnTerminal(["send", server.target, "hi"], home);
      assert.equal(tty.code, 0, tty.stdout);
      // The body is the payload: its lines are kept, everything else escaped.
      assertClean(tty, "send on a terminal", true);
      assert.ok(tty.stdout.includes(printable(EVIL, { keepLines: true })), tty.stdout);
    }
  } finally {
    await server.close();
  }
});

Deno.test("a server's error message, hint and status explanation are printed as one line each", async () => {
  const { home } = await homeWithIdentity("alice");
  const refusing = await startHostileServer("error");
  const answering = await startHostileServer();
  const escaped = SHOWN.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
  try {
    const refused = await ovtp(["send", refusing.target, "hi"], { home });
    assert.equal(refused.code, 1);
    assertClean(refused, "connection error");
    assertOneError(refused, new RegExp(`^ovtp: error: ${escaped}$`));
    assert.match(refused.stderr, new RegExp(`^ovtp: hint: ${escaped}$`, "m"));

    const forbidden = await ovtp(["send", answering.target, "forbidden"], { home });
    assert.equal(forbidden.code, 1);
    assertClean(forbidden, "status explanation");
    assertOneError(
      forbidden,
      new RegExp(`^ovtp: error: The server answered with status "forbidden": ${escaped}$`),
    );

    const failed = await ovtp(["send", answering.target, "error"], { home });
    assert.equal(failed.code, 1);
    assert.equal(failed.stdout, EVIL + "\n"); // The payload, to a pipe.
    assertClean({ stdout: "", stderr: failed.stderr }, "status error");

    const badStatus = await ovtp(["send", answering.target, "bad-status"], { home });
    assert.equal(badStatus.code, 3);
    assertOneError(badStatus, /^ovtp: error: Invalid response status$/);
    assertClean(badStatus, "malformed status");

    if (hasScript) {
      for (const [target, message] of [[refusing.target, "hi"], [answering.target, "forbidden"]]) {
        const tty = await ovtpOnTerminal(["send", target, message], home);
        assert.equal(tty.code, 1, tty.stdout);
        assertClean(tty, `error on a terminal (${message})`);
        assert.ok(tty.stdout.includes(SHOWN), tty.stdout);
      }
    }
  } finally {
    await refusing.close();
    await answering.close();
  }
});

Deno.test("file refusals, stored paths and listing names from a server are printable", async () => {
  const { home } = await homeWithIdentity("alice");
  const server = await startHostileServer();
  const dir = await tempDir();
  try {
    const refused = await ovtp(["sendfile", server.target, "--name", "refuse"], {
      home,
      stdin: "data",
    });
    assert.equal(refused.code, 1);
    assertClean(refused, "sendfile refused");
    assertOneError(refused, /^ovtp: error: The server refused the file: x\^\[\]0;pwned\^G/);

    await Deno.writeTextFile(`${dir}/notes.txt`, "hello");
    const stored = await ovtp(["sendfile", server.target, `${dir}/notes.txt`], { home });
    assert.equal(stored.code, 0, stored.stderr);
    assertClean(stored, "sendfile stored path");
    assert.ok(stored.stdout.includes(`verified and stored as ${SHOWN}\n`), stored.stdout);
    const storedJson = await ovtp(["sendfile", server.target, `${dir}/notes.txt`, "--json"], {
      home,
    });
    assert.equal(JSON.parse(storedJson.stdout).files[0].path, EVIL);
    assertClean(storedJson, "sendfile --json");

    const listed = await ovtp(["getfile", server.target, "--list"], { home });
    assert.equal(listed.code, 0, listed.stderr);
    assertClean(listed, "getfile --list");
    // One line per entry: a name cannot add entries.
    assert.deepEqual(
      listed.stdout.trimEnd().split("\n").map((line) => line.slice(-SHOWN.length - 1)),
      [
        ` ${SHOWN}`,
        `${SHOWN}/`,
      ],
    );
    const listedJson = await ovtp(["getfile", server.target, "--list", "--json"], { home });
    assert.deepEqual(JSON.parse(listedJson.stdout).entries.map((e: { name: string }) => e.name), [
      EVIL,
      EVIL,
    ]);
    assertClean(listedJson, "getfile --list --json");

    const got = await ovtp(["getfile", server.target, "some/file", "-o", `${dir}/out`], { home });
    assert.equal(got.code, 1);
    assertClean(got, "getfile refused");
    assertOneError(got, /^ovtp: error: The server refused: x\^\[\]0;pwned\^G/);

    if (hasScript) {
      const list = ["getfile", server.target, "--list"];
      // --quiet: no progress bar, whose own CR would hide a lone one.
      const send = ["sendfile", server.target, `${dir}/notes.txt`, "--quiet"];
      for (const args of [list, send]) {
        const tty = await ovtpOnTerminal(args, home);
        assert.equal(tty.code, 0, tty.stdout);
        assertClean(tty, `${args[0]} on a terminal`);
      }
    }
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat names, messages and refusals from a relay are printable; --json keeps them", async () => {
  const { home } = await homeWithIdentity("alice");
  const server = await startHostileServer();
  try {
    for (const json of [false, true]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          ...PERMISSIONS,
          MAIN,
          "chat",
          server.target,
          "--room",
          "r",
          ...(json ? ["--json"] : []),
        ],
        env: { ...CLI_ENV, HOME: `${home}.user`, OVTP_HOME: home },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const out = { stdout: "", stderr: "" };
      const pumps = Promise.all((["stdout", "stderr"] as const).map(async (key) => {
        for await (const text of child[key].pipeThrough(new TextDecoderStream())) out[key] += text;
      }));
      const waitFor = async (pattern: RegExp) => {
        const deadline = Date.now() + 15_000;
        while (!pattern.test(out.stdout + out.stderr)) {
          if (Date.now() > deadline) {
            throw new Error(`Never saw ${pattern}:\n${JSON.stringify(out)}`);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      // The join, the message and the dropped envelope, then a post the relay refuses.
      await waitFor(/dropped a message.*\n/);
      await waitFor(json ? /"event":"message"/ : /\] x\^\[\]0;pwned.*: x\^\[\]0;pwned/);
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("hello\n"));
      await waitFor(/The server refused a message: x\^\[/);
      await writer.close();
      const status = await child.status;
      await pumps;
      assert.equal(status.code, 0, out.stderr);
      assertClean(out, `chat${json ? " --json" : ""}`);
      if (json) {
        const events = out.stdout.trim().split("\n").map((line) => JSON.parse(line));
        const message = events.find((e) => e.event === "message");
        assert.equal(message.from, EVIL);
        assert.equal(message.name, EVIL);
        assert.equal(message.message, EVIL);
        assert.equal(events.find((e) => e.event === "join").from, EVIL);
      } else {
        assert.ok(out.stderr.includes(`${SHOWN} joined (SHA256:`), out.stderr);
      }
    }
  } finally {
    await server.close();
  }
});

// The interactive chat, on a real terminal emulator (tmux): /who and the
// incoming lines show the printable form, and the window title stays.
Deno.test({
  name: "the interactive chat shows a relay's names in /who printable, and the title stays",
  ignore: !HAS_TMUX,
  async fn() {
    const { home } = await homeWithIdentity("alice");
    const server = await startHostileServer();
    const session = `ovtp-term-${crypto.randomUUID().slice(0, 8)}`;
    const raw = `${home}.pane`;
    try {
      const command = `OVTP_ACCEPT_NEW=1 OVTP_HOME=${quote(home)} HOME=${quote(`${home}.user`)} ` +
        [
          Deno.execPath(),
          "run",
          "--quiet",
          ...PERMISSIONS,
          MAIN,
          "chat",
          server.target,
          "--room",
          "r",
        ]
          .map(quote).join(" ");
      await tmux(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "200",
        "-y",
        "30",
        "sh -c " + quote(`sleep 1; ${command}`),
      );
      await tmux("pipe-pane", "-o", "-t", session, `cat >> ${quote(raw)}`);
      const screenShows = async (pattern: RegExp) => {
        const deadline = Date.now() + 15_000;
        while (true) {
          const screen = await tmux("capture-pane", "-p", "-t", session);
          if (pattern.test(screen)) return screen;
          if (Date.now() > deadline) {
            throw new Error(`The screen never showed ${pattern}:\n${screen}`);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      await screenShows(/dropped a message/);
      await tmux("send-keys", "-t", session, "/who", "Enter");
      const screen = await screenShows(/[○●] x\^\[\]0;pwned/);
      assert.match(screen, /● x\^\[\]0;pwned\^G\^\[\]52;c;cHduZWQ=\^G\^\[\[2J/);
      assert.doesNotMatch(screen, /^FORGED/m);
      const title = (await tmux("display-message", "-p", "-t", session, "#{pane_title}")).trim();
      assert.notEqual(title, "pwned");
      await tmux("send-keys", "-t", session, "/quit", "Enter");
      const bytes = await Deno.readTextFile(raw).catch(() => "");
      for (const piece of RAW_PIECES) {
        assert.ok(!bytes.includes(piece), `the terminal received ${JSON.stringify(piece)}`);
      }
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
      await server.close();
    }
  },
});

Deno.test("listen prints a message with newlines and escapes as exactly one line", async () => {
  const { server, client } = await makePair();
  const clientFp = (await ovtp(["id", "--fingerprint"], { home: client.home })).stdout.trim();
  const forged = `hi\nalice (${clientFp}): transfer approved\x1b]0;pwned\x07\u009b\u202e\u2028\n`;
  for (const json of [false, true]) {
    const listener = await startListen(server.home, json ? ["--json"] : []);
    try {
      const sent = await ovtp(["send", listener.target], { home: client.home, stdin: forged });
      assert.equal(sent.code, 0, sent.stderr);
      const sentAgain = await ovtp(["send", listener.target, "next"], { home: client.home });
      assert.equal(sentAgain.code, 0, sentAgain.stderr);
      await listener.waitFor(/next/, "stdout");
      const lines = listener.stdout().trimEnd().split("\n");
      assert.equal(lines.length, 2, listener.stdout());
      assertClean({ stdout: listener.stdout(), stderr: listener.stderr() }, "listen");
      if (json) assert.equal(JSON.parse(lines[0]).message, forged);
      else {
        assert.equal(
          lines[0],
          `alice (${clientFp}): hi\\nalice (${clientFp}): transfer approved^[]0;pwned^G` +
            "\\u{9b}\\u{202e}\\u{2028}",
        );
      }
    } finally {
      await listener.stop();
    }
  }
});

Deno.test("listen's log shows a key name with a bidi override escaped; --log-format json keeps it", async () => {
  const server = await homeWithIdentity("server");
  const client = await homeWithIdentity("alice");
  // add-key refuses invisible formatting characters in a name (exit 2, nothing written)...
  const name = "\u202eecila";
  const added = await ovtp(["add-key", client.line, "--name", name], { home: server.home });
  assert.equal(added.code, 2, added.stderr);
  assertOneError(added, /cannot contain control or invisible formatting characters/);
  assert.ok(!added.stderr.includes("\u202e"), added.stderr);
  await assert.rejects(Deno.stat(`${server.home}/authorized_keys`), Deno.errors.NotFound);
  // ...but a hand-edited authorized_keys may hold one: it is shown escaped.
  const [type, key] = client.line.split(" ");
  await Deno.writeTextFile(`${server.home}/authorized_keys`, `${type} ${key} ${name}\n`);
  const keys = await ovtp(["keys"], { home: server.home });
  assert.ok(keys.stdout.startsWith("\\u{202e}ecila  SHA256:"), keys.stdout);
  for (const format of ["text", "json"]) {
    const listener = await startListen(server.home, ["--log-format", format]);
    try {
      const sent = await ovtp(["send", listener.target, "hi"], { home: client.home });
      assert.equal(sent.code, 0, sent.stderr);
      await listener.waitFor(/client connected/);
      await listener.waitFor(/ecila/, "stdout");
      assert.ok(!listener.stderr().includes("\u202e"), listener.stderr());
      assert.ok(!listener.stdout().includes("\u202e"), listener.stdout());
      if (format === "json") {
        const connected = listener.stderr().split("\n").filter((l) =>
          l.includes("client connected")
        );
        assert.equal(JSON.parse(connected[0]).name, name);
      } else {
        assert.match(listener.stderr(), /client connected \(.*name=\\u\{202e\}ecila /);
      }
    } finally {
      await listener.stop();
    }
  }
});
