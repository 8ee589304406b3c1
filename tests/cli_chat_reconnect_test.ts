/**
 * Chat when its server goes away. On a terminal (tmux):
 * the prompt stays, a status line says what happens, the room is joined
 * again with nothing lost or shown twice, and a permanent failure ends the
 * chat with its one error line. Each pane runs chat, then prints its exit
 * code and waits: a chat that ended shows "[chat exited N]", and a line
 * typed after it would have gone to the shell. Without a terminal, the
 * chat ends with the error, for whatever runs it to decide.
 */
import assert from "node:assert/strict";
import {
  assertOneError,
  CLI_ENV,
  homeWithIdentity,
  type Listener,
  MAIN,
  ovtp,
  startListen,
} from "./_cli.ts";
import { gather, HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";
import { PERMISSIONS } from "../scripts/compile.ts";
import { utf8 } from "../lib/bytes.ts";
import { SecureChannel } from "../lib/channel/channel.ts";
import { ChatMessageType, roomContext } from "../lib/services/chat/chat_messages.ts";
import { Connection } from "../lib/channel/connection.ts";
import { sealEnvelope } from "../lib/envelope/envelope.ts";
import {
  fingerprint,
  formatPublicKey,
  generateIdentity,
  type PublicKey,
} from "../lib/identity/keys.ts";
import { decodeJson, encodeJson, type Message, MessageType } from "../lib/channel/messages.ts";

function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** A port that was free a moment ago, for a listen restarted on the same port. */
function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return port;
}

/** Starts `ovtp chat TARGET --room ops` in a new tmux pane; returns the session. */
async function chatPane(home: string, target: string): Promise<string> {
  const session = sessionName();
  const chat = [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN, "chat", target, "--room"]
    .map(quote).join(" ");
  const command = `NO_COLOR=1 OVTP_ACCEPT_NEW=1 OVTP_HOME=${quote(home)} ` +
    `HOME=${quote(`${home}.user`)} ${chat} ops; echo "[chat exited $?]"; sleep 600`;
  await tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", command);
  return session;
}

/** The PID of the chat running in `session` (the pane's shell's child). */
async function chatPid(session: string): Promise<number> {
  const shell = (await tmux("display-message", "-p", "-t", session, "#{pane_pid}")).trim();
  const children = await new Deno.Command("pgrep", { args: ["-P", shell], stdout: "piped" })
    .output();
  const pids = new TextDecoder().decode(children.stdout).trim().split("\n").map(Number);
  assert.equal(pids.length, 1, `expected one child of the pane's shell, got ${pids}`);
  return pids[0];
}

async function type(session: string, line: string): Promise<void> {
  await tmux("send-keys", "-t", session, "-l", line);
  await tmux("send-keys", "-t", session, "Enter");
}

/** The whole pane, scrollback included. */
function history(session: string): Promise<string> {
  return tmux("capture-pane", "-p", "-J", "-S", "-", "-t", session);
}

function count(text: string, piece: string): number {
  return text.split(piece).length - 1;
}

async function twoMembers() {
  const [server, alice, bob] = await Promise.all(
    ["server", "alice", "bob"].map((name) => homeWithIdentity(name)),
  );
  for (const who of [alice, bob]) {
    assert.equal((await ovtp(["add-key", who.line], { home: server.home })).code, 0);
  }
  return { server, alice, bob };
}

Deno.test({
  name:
    "chat reconnects across a server restart: nothing lost, nothing twice, nothing to the shell",
  ignore: !HAS_TMUX,
  async fn() {
    const { server, alice, bob } = await twoMembers();
    const port = freePort();
    let listener: Listener = await startListen(server.home, ["--port", String(port)]);
    const a = await chatPane(alice.home, listener.target);
    const b = await chatPane(bob.home, listener.target);
    let bobPid = 0;
    try {
      await screenShows(a, /joined room ops as alice/);
      await screenShows(b, /joined room ops as bob/);
      await screenShows(a, /bob joined|2 online/);
      await type(a, "before the restart");
      await screenShows(b, /alice: before the restart/);

      // Bob's laptop sleeps through the restart (his chat is stopped), so
      // alice, back first, posts while he is still away.
      bobPid = await chatPid(b);
      Deno.kill(bobPid, "SIGSTOP");
      assert.equal(await listener.stop(), 0);
      await screenShows(a, /\* disconnected: reconnecting in \d+\.\d s…/);
      await screenShows(a, /^alice \(offline\)>\s*$/m);
      await type(a, "typed during the outage");
      await screenShows(a, /not sent: the connection to the server is down/);

      listener = await startListen(server.home, ["--port", String(port)]);
      assert.equal(listener.port, port);
      await screenShows(a, /reconnected: back in room ops as alice: 2 member\(s\), 1 online/);
      await screenShows(a, /^alice>\s*$/m);
      await type(a, "while bob was away");
      await screenShows(a, /alice: while bob was away/);
      await listener.waitFor(/chat: \d+ bytes in room ops .*kept=1/);

      Deno.kill(bobPid, "SIGCONT");
      bobPid = 0;
      await screenShows(b, /\* disconnected: reconnecting in/);
      await screenShows(b, /reconnected: back in room ops as bob/);
      await screenShows(b, /alice: while bob was away/);
      await screenShows(a, /bob joined/);
      await type(b, "bob is back");
      await screenShows(a, /bob: bob is back/);

      for (const pane of [a, b]) {
        assert.doesNotMatch(await history(pane), /chat exited/);
        await type(pane, "/quit");
        await screenShows(pane, /\[chat exited 0\]/);
      }
      const [aliceSaw, bobSaw] = [await history(a), await history(b)];
      assert.equal(count(bobSaw, "alice: before the restart"), 1, bobSaw);
      assert.equal(count(bobSaw, "alice: while bob was away"), 1, bobSaw);
      assert.equal(count(bobSaw, "typed during the outage"), 0, bobSaw);
      assert.equal(count(aliceSaw, "bob: bob is back"), 1, aliceSaw);
      assert.equal(count(aliceSaw, "alice: while bob was away"), 1, aliceSaw);
      // The refused line is quoted nowhere but at the prompt it was typed at.
      assert.doesNotMatch(aliceSaw, /alice: typed during the outage/);
    } finally {
      if (bobPid) Deno.kill(bobPid, "SIGCONT");
      for (const pane of [a, b]) await tmux("kill-session", "-t", pane).catch(() => {});
      await listener.stop();
    }
  },
});

Deno.test({
  name: "Ctrl-C or /quit while chat waits to reconnect ends it at once, with no further attempt",
  ignore: !HAS_TMUX,
  async fn() {
    const { server, alice, bob } = await twoMembers();
    const listener = await startListen(server.home);
    const a = await chatPane(alice.home, listener.target);
    const b = await chatPane(bob.home, listener.target);
    try {
      await screenShows(a, /joined room ops as alice/);
      await screenShows(b, /joined room ops as bob/);
      await listener.stop();
      // Waiting until a delay of several seconds has begun: an attempt made
      // after the key would show one more "cannot reconnect" line.
      const waiting =
        /cannot reconnect \(Cannot connect to [^)]*connection refused\): reconnecting in [4-9]/;
      for (const pane of [a, b]) await screenShows(pane, waiting);
      await tmux("send-keys", "-t", a, "C-c");
      await type(b, "/quit");
      for (const pane of [a, b]) {
        const before = count(await history(pane), "cannot reconnect");
        const screen = await screenShows(pane, /\[chat exited 0\]/);
        assert.doesNotMatch(screen, /error/);
        assert.equal(count(await history(pane), "cannot reconnect"), before);
      }
    } finally {
      for (const pane of [a, b]) await tmux("kill-session", "-t", pane).catch(() => {});
    }
  },
});

Deno.test({
  name: "chat stops reconnecting, with one error line, when the server's key changed",
  ignore: !HAS_TMUX,
  async fn() {
    const { server, alice } = await twoMembers();
    const impostor = await homeWithIdentity("impostor");
    assert.equal((await ovtp(["add-key", alice.line], { home: impostor.home })).code, 0);
    const port = freePort();
    let listener = await startListen(server.home, ["--port", String(port)]);
    const a = await chatPane(alice.home, listener.target);
    try {
      await screenShows(a, /joined room ops as alice/);
      await listener.stop();
      await screenShows(a, /disconnected: reconnecting in/);
      listener = await startListen(impostor.home, ["--port", String(port)]);
      const screen = await screenShows(a, /\[chat exited 4\]/);
      assert.equal(count(screen, "ovtp: error: "), 1, screen);
      assert.match(screen, /ovtp: error: The key of host 127\.0\.0\.1:\d+ has changed/);
      // Attempts while nothing listened were retried; the changed key was not.
      assert.doesNotMatch(screen, /cannot reconnect \(The key/);
    } finally {
      await tmux("kill-session", "-t", a).catch(() => {});
      await listener.stop();
    }
  },
});

Deno.test({
  name: "chat ends with one error line when the server stops accepting the key, without retrying",
  ignore: !HAS_TMUX,
  async fn() {
    const { server, alice } = await twoMembers();
    const listener = await startListen(server.home);
    const a = await chatPane(alice.home, listener.target);
    try {
      await screenShows(a, /joined room ops as alice/);
      assert.equal((await ovtp(["keys", "remove", "alice"], { home: server.home })).code, 0);
      const screen = await screenShows(a, /\[chat exited 4\]/);
      assert.equal(count(screen, "ovtp: error: "), 1, screen);
      assert.match(screen, /ovtp: error: Not authorized/);
      assert.doesNotMatch(screen, /reconnecting/);
    } finally {
      await tmux("kill-session", "-t", a).catch(() => {});
      await listener.stop();
    }
  },
});

Deno.test("without a terminal, chat ends with exit 3 and one error line when the server goes away", async () => {
  const { server, alice } = await twoMembers();
  const listener = await startListen(server.home);
  const chat = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, MAIN, "chat", listener.target, "--room", "ops"],
    env: { ...CLI_ENV, OVTP_HOME: alice.home, HOME: `${alice.home}.user` },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = gather(chat.stderr);
  const stdout = gather(chat.stdout);
  try {
    await stderr.shows(/joined room ops as alice/);
    assert.equal(await listener.stop(), 0);
    const { code } = await chat.status;
    await Promise.all([stderr.done, stdout.done]);
    assert.equal(code, 3, stderr.text());
    assertOneError(
      { code, stdout: stdout.text(), stderr: stderr.text() },
      /^ovtp: error: The server closed the connection$/,
    );
    assert.doesNotMatch(stderr.text(), /reconnecting/);
  } finally {
    await chat.stdin.close().catch(() => {});
    await listener.stop();
  }
});

/**
 * A relay that, on every connection, lists bob, delivers the same envelope
 * from him (sealed once), and drops the connection a moment later: each
 * reconnection gets that envelope again.
 */
function redeliveringRelay(): { target: string; connections: () => number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let envelope: Uint8Array | undefined;
  const keys = Promise.all([generateIdentity(), generateIdentity()]);
  const serve = async (conn: Deno.Conn) => {
    const [server, bob] = await keys;
    const channel = await SecureChannel.respond(conn, { identity: server });
    const send = (message: Message) => connection.send(message);
    const connection: Connection = new Connection(channel, {
      async onMessage(message) {
        if (message.type !== ChatMessageType.Join) return;
        const { room, display } = decodeJson(message.body) as { room: string; display: string };
        const member = async (key: PublicKey, shown: string) => ({
          name: shown,
          display: shown,
          fingerprint: await fingerprint(key),
          key: formatPublicKey(key),
          online: true,
        });
        const members = [await member(channel.peer, display), await member(bob.publicKey, "bob")];
        await send({
          type: ChatMessageType.Joined,
          id: message.id,
          body: encodeJson({ room, members }),
        });
        envelope ??= await sealEnvelope(bob, [channel.peer], utf8("said once"), {
          context: roomContext(room),
        });
        await send({ type: ChatMessageType.Deliver, id: message.id, body: envelope });
        setTimeout(() => closeQuietly(conn), 300);
      },
    });
    const running = connection.run();
    await send({
      type: MessageType.Welcome,
      id: 0,
      body: encodeJson({ protocol: 1, software: "x" }),
    });
    await running;
  };
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      serve(conn).catch(() => {});
    }
  })().catch(() => {});
  return {
    target: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => conns.length,
    close() {
      listener.close();
      for (const conn of conns) closeQuietly(conn);
    },
  };
}

Deno.test({
  name: "a message the relay delivers again after a reconnection is shown once",
  ignore: !HAS_TMUX,
  async fn() {
    const alice = await homeWithIdentity("alice");
    const relay = redeliveringRelay();
    const a = await chatPane(alice.home, relay.target);
    try {
      await screenShows(a, /bob: said once/);
      // Two rejoins, each delivered the same envelope bytes again.
      await screenShows(a, /(reconnected: back in room ops[^]*){2}/);
      await type(a, "/quit");
      await screenShows(a, /\[chat exited 0\]/);
      const saw = await history(a);
      assert.ok(relay.connections() >= 3);
      assert.equal(count(saw, "bob: said once"), 1, saw);
      assert.doesNotMatch(saw, /dropped|warning/);
    } finally {
      await tmux("kill-session", "-t", a).catch(() => {});
      relay.close();
    }
  },
});

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}
