/**
 * The interactive chat, driven as a person would: in a tmux pane, typing
 * with send-keys and reading the screen with capture-pane.
 */
import assert from "node:assert/strict";
import { CLI_ENV, homeWithIdentity, MAIN, ovtp, startListen } from "./_cli.ts";
import { gather, HAS_TMUX, screenShows, tmux } from "./_tmux.ts";

Deno.test({
  name: "an incoming message appears above the line being typed without breaking it",
  ignore: !HAS_TMUX,
  async fn() {
    const server = await homeWithIdentity("server");
    const alice = await homeWithIdentity("alice");
    const bob = await homeWithIdentity("bob");
    for (const who of [alice, bob]) {
      assert.equal((await ovtp(["add-key", who.line], { home: server.home })).code, 0);
    }
    const listener = await startListen(server.home);
    const session = `ovtp-test-${crypto.randomUUID().slice(0, 8)}`;
    const command =
      `OVTP_ACCEPT_NEW=1 OVTP_HOME='${alice.home}' HOME='${alice.home}.user' '${Deno.execPath()}' run --quiet -A '${MAIN}' chat ${listener.target} --room tty`;
    await tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "20", command);
    const bobChat = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "-A", MAIN, "chat", listener.target, "--room", "tty"],
      env: { ...CLI_ENV, OVTP_HOME: bob.home, HOME: `${bob.home}.user` },
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const bobInput = bobChat.stdin.getWriter();
    const bobOutput = gather(bobChat.stdout);
    let bobSaw = "";
    try {
      await screenShows(session, /joined room tty as alice/);
      // Bob may join before or after alice.
      await screenShows(session, /bob joined|2 online/);
      // Alice is halfway through a line when bob's message arrives.
      await tmux("send-keys", "-t", session, "-l", "half a sente");
      await screenShows(session, /alice> half a sente$/m);
      await bobInput.write(new TextEncoder().encode("hello from bob\n"));
      const screen = await screenShows(session, /bob: hello from bob/);
      const lines = screen.trimEnd().split("\n");
      // The message sits above, and the input line, intact, stays last.
      assert.match(lines[lines.length - 2], /^\[\d\d:\d\d:\d\d\] bob: hello from bob$/);
      assert.equal(lines[lines.length - 1], "alice> half a sente");
      // Typing goes on where it stopped, and the message is sent whole.
      await tmux("send-keys", "-t", session, "-l", "nce");
      await tmux("send-keys", "-t", session, "Enter");
      await screenShows(session, /alice: half a sentence$/m);
      await bobOutput.shows(/alice: half a sentence/);
      await tmux("send-keys", "-t", session, "-l", "/who");
      await tmux("send-keys", "-t", session, "Enter");
      await screenShows(session, /● bob \(bob\) SHA256:/);
      await tmux("send-keys", "-t", session, "-l", "/quit");
      await tmux("send-keys", "-t", session, "Enter");
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
      await bobInput.close().catch(() => {});
      await bobChat.status;
      await bobOutput.done;
      bobSaw = bobOutput.text();
      await listener.stop();
    }
    assert.match(bobSaw, /alice: half a sentence/);
  },
});
