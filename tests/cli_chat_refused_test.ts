/**
 * A key that the server accepts but not for chat (add-key --allow without
 * chat, or with another room): chat ends with the server's refusal as its
 * one error line, and nothing else, in a script and on a terminal; in
 * particular no "dropped a message claiming to come from" line about the
 * user's own key (issue 15), even when the room kept messages for it.
 */
import assert from "node:assert/strict";
import { assertOneError, homeWithIdentity, MAIN, ovtp, startListen } from "./_cli.ts";
import { HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";
import { PERMISSIONS } from "../scripts/compile.ts";

/** A server where alice was a member of room ops with a message waiting, then restricted. */
async function restrictedMember(allow: string) {
  const [server, alice, bob] = await Promise.all(
    ["server", "alice", "bob"].map((name) => homeWithIdentity(name)),
  );
  for (const who of [alice, bob]) {
    assert.equal((await ovtp(["add-key", who.line], { home: server.home })).code, 0);
  }
  const listener = await startListen(server.home);
  const room = ["chat", listener.target, "--room", "ops"];
  assert.equal((await ovtp(room, { home: alice.home, stdin: "" })).code, 0);
  const posted = await ovtp(room, { home: bob.home, stdin: "kept for alice\n" });
  assert.equal(posted.code, 0, posted.stderr);
  await listener.waitFor(/kept=1/);
  assert.equal((await ovtp(["keys", "remove", "alice"], { home: server.home })).code, 0);
  const added = await ovtp(["add-key", alice.line, "--allow", allow], { home: server.home });
  assert.equal(added.code, 0, added.stderr);
  return { alice, listener, room };
}

Deno.test("a key not allowed to chat gets the refusal alone, never a dropped-message line", async () => {
  for (const allow of ["message", "chat:other"]) {
    const { alice, listener, room } = await restrictedMember(allow);
    try {
      for (const json of [false, true]) {
        const args = json ? [...room, "--json"] : room;
        const refused = await ovtp(args, { home: alice.home, stdin: "hello\n" });
        assert.equal(refused.code, 1, refused.stderr);
        assertOneError(
          refused,
          /^ovtp: error: The server refused: Your key is not allowed to use chat:ops/,
        );
        assert.doesNotMatch(refused.stderr, /dropped|warning/, refused.stderr);
        assert.doesNotMatch(refused.stdout, /dropped|"event":"message"/, refused.stdout);
      }
      // The server keeps serving, and says why it refused.
      await listener.waitFor(/refused chat: not permitted/);
      const sent = await ovtp(["send", listener.target, "x"], { home: alice.home });
      assert.equal(sent.code, allow === "message" ? 0 : 1, sent.stderr);
    } finally {
      await listener.stop();
    }
  }
});

Deno.test({
  name: "on a terminal, a key not allowed to chat sees the refusal alone",
  ignore: !HAS_TMUX,
  async fn() {
    const { alice, listener, room } = await restrictedMember("message");
    const session = sessionName();
    try {
      const chat = [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN, ...room]
        .map((part) => `'${part}'`).join(" ");
      await tmux(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "160",
        "-y",
        "20",
        `NO_COLOR=1 OVTP_HOME='${alice.home}' HOME='${alice.home}.user' ${chat}; ` +
          `echo "[chat exited $?]"; sleep 600`,
      );
      const screen = await screenShows(session, /\[chat exited \d+\]/);
      assert.match(screen, /\[chat exited 1\]/);
      const lines = screen.trim().split("\n").filter((line) => line.trim());
      assert.deepEqual(lines.map((line) => line.replace(/chat:ops.*/, "chat:ops")), [
        "ovtp: error: The server refused: Your key is not allowed to use chat:ops",
        "[chat exited 1]",
      ]);
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
      await listener.stop();
    }
  },
});
