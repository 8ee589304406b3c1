// `ovtp agent` through the real CLI: the key asked once and served to
// commands that find it through OVTP_AGENT, a 0600 socket in a 0700
// folder, the end of its lifetime, --stop and SIGTERM (then commands ask
// again), and clients that send it garbage.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  assertOneError,
  CLI_ENV,
  execCommand,
  MAIN,
  makePair,
  ovtp,
  startListen,
  tempHome,
} from "./_cli.ts";
import { gather, HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";
import { PERMISSIONS } from "../scripts/compile.ts";

const POSIX = Deno.build.os !== "windows";
if (!POSIX) {
  console.log("tests/cli_agent_test.ts: the agent needs Unix sockets: skipped on Windows");
}

/** A running `ovtp agent`. */
interface Agent {
  socket: string;
  status: Promise<Deno.CommandStatus>;
  stderr: () => string;
  kill(signal?: Deno.Signal): void;
}

/** Starts `ovtp agent ARGS` with the passphrase in OVTP_PASSPHRASE; resolves once it prints its line. */
async function startAgent(home: string, passphrase: string, args: string[] = []): Promise<Agent> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, MAIN, "agent", ...args],
    env: { ...CLI_ENV, OVTP_HOME: home, HOME: `${home}.user`, OVTP_PASSPHRASE: passphrase },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = gather(child.stdout);
  const err = gather(child.stderr);
  const status = child.status;
  await Promise.race([
    out.shows(/export OVTP_AGENT;\n/),
    status.then((s) => {
      throw new Error(`agent exited with ${s.code}: ${err.text()}`);
    }),
  ]);
  const socket = /^OVTP_AGENT='([^']+)'; export OVTP_AGENT;\n$/.exec(out.text())![1];
  const kill = (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch { /* It has exited already. */ }
  };
  return { socket, status, stderr: err.text, kill };
}

async function sealedHome(passphrase: string): Promise<string> {
  const home = await tempHome();
  const made = await ovtp(["keygen", "--passphrase"], {
    home,
    env: { OVTP_PASSPHRASE: passphrase },
  });
  assert.equal(made.code, 0, made.stderr);
  return home;
}

/** A command that needs the private key, run without a terminal and without OVTP_PASSPHRASE. */
function sealForSelf(home: string, agent: string) {
  return ovtp(["seal", "-r", "self", "-o", `${home}.${crypto.randomUUID()}`], {
    home,
    env: { OVTP_AGENT: agent },
    stdin: "note",
  });
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test({
  name:
    "agent: a second command gets the key without a passphrase; --stop wipes it and commands ask again",
  ignore: !POSIX,
  async fn() {
    const home = await sealedHome("pw");
    const agent = await startAgent(home, "pw");
    try {
      assert.match(agent.stderr(), /^ovtp: agent holding SHA256:\S+ until \d{4}-/);
      assert.equal((await Deno.stat(agent.socket)).mode! & 0o777, 0o600);
      const folder = agent.socket.slice(0, agent.socket.lastIndexOf("/"));
      assert.equal((await Deno.stat(folder)).mode! & 0o777, 0o700);
      // Without the agent this very command fails: no terminal, no OVTP_PASSPHRASE.
      const sealed = await sealForSelf(home, agent.socket);
      assert.equal(sealed.code, 0, sealed.stderr);
      assert.equal(sealed.stderr, "");
      const stop = await ovtp(["agent", "--stop"], { home, env: { OVTP_AGENT: agent.socket } });
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal((await agent.status).code, 0);
      assert.equal(await exists(agent.socket), false);
      assert.equal(await exists(folder), false);
      // A stale OVTP_AGENT: a warning, then the passphrase is asked (here: no terminal).
      const stale = await sealForSelf(home, agent.socket);
      assert.equal(stale.code, 5);
      assert.match(
        stale.stderr,
        /^ovtp: warning: No agent at ".*" \(no such socket\); asking for the passphrase\n/,
      );
      assertOneError(stale, /needs a passphrase, and there is no terminal/);
      const again = await ovtp(["agent", "--stop"], { home, env: { OVTP_AGENT: agent.socket } });
      assert.equal(again.code, 5);
      assertOneError(again, /No agent at/);
    } finally {
      agent.kill();
      await agent.status;
    }
  },
});

Deno.test({
  name: "agent: at the end of --lifetime it wipes the key and exits, and commands ask again",
  ignore: !POSIX,
  async fn() {
    const home = await sealedHome("pw");
    const agent = await startAgent(home, "pw", ["--lifetime", "2s", "--socket", `${home}/agent/s`]);
    try {
      assert.equal(agent.socket, `${home}/agent/s`);
      assert.equal((await Deno.stat(`${home}/agent`)).mode! & 0o777, 0o700);
      assert.equal((await agent.status).code, 0);
      assert.equal(await exists(agent.socket), false);
      const after = await sealForSelf(home, agent.socket);
      assert.equal(after.code, 5);
      assertOneError(after, /needs a passphrase/);
    } finally {
      agent.kill();
      await agent.status;
    }
  },
});

Deno.test({
  name:
    "agent: SIGTERM ends it; it serves only the key file it unlocked, not one rewritten or another",
  ignore: !POSIX,
  async fn() {
    const home = await sealedHome("pw");
    const other = await sealedHome("other");
    const agent = await startAgent(home, "pw");
    try {
      const notMine = await sealForSelf(other, agent.socket);
      assert.equal(notMine.code, 5);
      assert.match(notMine.stderr, /warning: the agent at ".*" holds another key file; asking/);
      // A new passphrase rewrites the file: the agent's copy no longer matches it.
      const changed = await ovtp(["keygen", "--change-passphrase"], {
        home,
        env: { OVTP_PASSPHRASE: "pw", OVTP_NEW_PASSPHRASE: "new", OVTP_AGENT: agent.socket },
      });
      assert.equal(changed.code, 0, changed.stderr);
      assert.match((await sealForSelf(home, agent.socket)).stderr, /holds another key file/);
      agent.kill("SIGTERM");
      assert.equal((await agent.status).code, 0);
      assert.equal(await exists(agent.socket), false);
    } finally {
      agent.kill();
      await agent.status;
    }
  },
});

Deno.test({
  name: "agent: garbage on the socket gets nothing and the agent keeps serving; refusals",
  ignore: !POSIX,
  async fn() {
    const home = await sealedHome("pw");
    const agent = await startAgent(home, "pw");
    try {
      const ask = async (text: string | Uint8Array) => {
        const conn = await Deno.connect({ transport: "unix", path: agent.socket });
        const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
        await conn.write(bytes).catch(() => 0);
        await conn.closeWrite().catch(() => {});
        const reply = await new Response(conn.readable).text().catch(() => "");
        return reply;
      };
      assert.equal(await ask("hello\n"), "error unknown request\n");
      assert.equal(await ask(`ovtp-agent1 get ${"A".repeat(43)}\n`), "none\n");
      assert.equal(await ask("x".repeat(300)), ""); // Over the line limit: closed.
      assert.equal(await ask(new Uint8Array([0xff, 0x0a])), ""); // Not UTF-8: closed.
      assert.equal(await ask("ovtp-agent1 get"), ""); // Cut short: closed.
      const sealed = await sealForSelf(home, agent.socket);
      assert.equal(sealed.code, 0, sealed.stderr);
      // A second agent on the same socket, a plain key, a bad lifetime.
      const second = await ovtp(["agent", "--socket", agent.socket], {
        home,
        env: { OVTP_PASSPHRASE: "pw" },
      });
      assert.equal(second.code, 2);
      assertOneError(second, /An agent already listens on/);
      const plain = await tempHome();
      assert.equal((await ovtp(["keygen"], { home: plain })).code, 0);
      const notNeeded = await ovtp(["agent"], { home: plain });
      assert.equal(notNeeded.code, 5);
      assertOneError(notNeeded, /has no passphrase: an agent is not needed/);
      for (const lifetime of ["0", "1w", "25d", "-1h", ""]) {
        const bad = await ovtp(["agent", `--lifetime=${lifetime}`], { home });
        assert.equal(bad.code, 2, lifetime);
        assertOneError(bad, /Invalid --lifetime/);
      }
      // A socket in a folder others can enter could be reached before its chmod, or swapped.
      const open = await tempDir();
      await Deno.chmod(open, 0o755);
      const shared = await ovtp(["agent", "--socket", `${open}/s`], {
        home,
        env: { OVTP_PASSPHRASE: "pw" },
      });
      assert.equal(shared.code, 2);
      assertOneError(shared, /The agent's folder ".*" is open to other users/);
      assert.equal(await exists(`${open}/s`), false);
      const wrong = await ovtp(["agent"], { home, env: { OVTP_PASSPHRASE: "nope" } });
      assert.equal(wrong.code, 5);
      assertOneError(wrong, /Wrong passphrase/);
    } finally {
      agent.kill();
      await agent.status;
    }
  },
});

Deno.test({
  name: "agent: listen serves with the agent's key, and its --exec commands do not get OVTP_AGENT",
  ignore: !POSIX,
  async fn() {
    const { server, client } = await makePair();
    const passphrase = await ovtp(["keygen", "--change-passphrase"], {
      home: server.home,
      env: { OVTP_NEW_PASSPHRASE: "pw" },
    });
    assert.equal(passphrase.code, 0, passphrase.stderr);
    const agent = await startAgent(server.home, "pw");
    const echo = execCommand('echo "agent=[$OVTP_AGENT]"', "console.log('agent=[]')");
    const listener = await startListen(server.home, ["--exec", echo], {
      env: { OVTP_AGENT: agent.socket },
    });
    try {
      const sent = await ovtp(["send", listener.target, "hi"], { home: client.home });
      assert.equal(sent.code, 0, sent.stderr);
      assert.equal(sent.stdout, "agent=[]\n");
    } finally {
      await listener.stop();
      agent.kill();
      await agent.status;
    }
  },
});

Deno.test({
  name:
    "agent on a terminal: the passphrase is asked once (a wrong one again), then not by commands",
  ignore: !POSIX || !HAS_TMUX,
  async fn() {
    const home = await sealedHome("right");
    const socket = `${home}/agent/s`;
    const session = sessionName();
    const ovtpCommand = [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN]
      .map((word) => `'${word}'`).join(" ");
    await tmux(
      "new-session",
      "-d",
      "-s",
      session,
      "-x",
      "200",
      "-y",
      "30",
      `NO_COLOR=1 OVTP_HOME='${home}' HOME='${home}.user' ${ovtpCommand} agent --socket '${socket}'; ` +
        `echo "exit=$?"; sleep 60`,
    );
    const type = async (text: string) => {
      await tmux("send-keys", "-t", session, "-l", text);
      await tmux("send-keys", "-t", session, "Enter");
    };
    try {
      await screenShows(session, /^Passphrase: *$/m);
      await type("wrong");
      await screenShows(session, /try again\nPassphrase: *$/m);
      await type("right");
      await screenShows(session, /OVTP_AGENT='.*'; export OVTP_AGENT;/);
      for (let i = 0; i < 2; i++) {
        const sealed = await sealForSelf(home, socket);
        assert.equal(sealed.code, 0, sealed.stderr);
        assert.equal(sealed.stderr, "");
      }
      const stop = await ovtp(["agent", "--stop", "--socket", socket], { home });
      assert.equal(stop.code, 0, stop.stderr);
      const screen = await screenShows(session, /exit=\d+/);
      assert.match(screen, /exit=0/);
      assert.equal((screen.match(/Passphrase:/g) ?? []).length, 2);
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
    }
  },
});
