/**
 * Invite-only rooms end to end through the CLI and a real `ovtp listen`:
 * alice creates the room at a terminal (tmux), invites bob by his line and
 * carol by the name the room shows, removes carol; bob and carol chat with
 * piped streams. Nobody outside the signed list ever reads a message.
 */
import assert from "node:assert/strict";
import { homeWithIdentity, MAIN, ovtp, startListen } from "./_cli.ts";
import { chatChild } from "./_chat_child.ts";
import { HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";

async function fingerprintOf(home: string): Promise<string> {
  const { stdout } = await ovtp(["id", "--fingerprint"], { home });
  return stdout.trim();
}

async function type(session: string, line: string): Promise<void> {
  await tmux("send-keys", "-t", session, "-l", line);
  await tmux("send-keys", "-t", session, "Enter");
}

Deno.test({
  name: "an invite-only room: created, bob invited by line, carol by name then removed",
  ignore: !HAS_TMUX,
  async fn() {
    const server = await homeWithIdentity("server");
    const [alice, bob, carol] = await Promise.all(
      ["alice", "bob", "carol"].map((name) => homeWithIdentity(name)),
    );
    for (const who of [alice, bob, carol]) {
      assert.equal((await ovtp(["add-key", who.line], { home: server.home })).code, 0);
    }
    const [aliceFp, bobFp, carolFp] = await Promise.all(
      [alice, bob, carol].map((who) => fingerprintOf(who.home)),
    );
    const listener = await startListen(server.home);
    const session = sessionName();
    const command =
      `OVTP_ACCEPT_NEW=1 OVTP_HOME='${alice.home}' HOME='${alice.home}.user' '${Deno.execPath()}' run --quiet -A '${MAIN}' chat ${listener.target} --room club --invite-only`;
    await tmux("new-session", "-d", "-s", session, "-x", "220", "-y", "40", command);
    let bobChat;
    let carolChat;
    try {
      await screenShows(
        session,
        new RegExp(`alice \\(${esc(aliceFp)}\\) created invite-only room club`),
      );
      await screenShows(session, /joined room club as alice/);
      bobChat = chatChild(bob.home, listener.target, ["--room", "club", "--invite-only"]);

      // Bob is in the room, but no member added him: not sealed to, and he cannot post.
      await bobChat.err.shows(/you are not a member of invite-only room club yet/);
      await screenShows(
        session,
        /"bob" \(.*\) in invite-only room "club", but its signed member list does not/,
      );
      await bobChat.say("let me in");
      await bobChat.err.shows(/not sent: you are not a member of this invite-only room/);

      // Added by his line: both sides show the change with the fingerprints they computed.
      await type(session, `/invite ${bob.line}`);
      const added = `alice (${aliceFp}) added bob (${bobFp})`;
      await screenShows(session, new RegExp(esc(added)));
      await bobChat.err.shows(new RegExp(esc(added)));
      await bobChat.say("hi from bob");
      await screenShows(session, /\] bob: hi from bob/);
      await type(session, "hello bob");
      await bobChat.out.shows(/\] alice: hello bob/);

      // Carol joins uninvited: what alice says now is not sealed to her.
      carolChat = chatChild(carol.home, listener.target, ["--room", "club", "--invite-only"]);
      await carolChat.err.shows(/you are not a member of invite-only room club yet/);
      await screenShows(session, /"carol" .* but its signed member list does not/);
      await type(session, "before carol");
      await bobChat.out.shows(/alice: before carol/);

      // By the name the room shows; then removed by that name.
      await type(session, "/invite carol");
      await screenShows(session, new RegExp(esc(`inviting carol (${carolFp})`)));
      await carolChat.err.shows(new RegExp(esc(`added carol (${carolFp})`)));
      await type(session, "with carol");
      await carolChat.out.shows(/alice: with carol/);
      await type(session, "/remove carol");
      const removed = `alice (${aliceFp}) removed carol (${carolFp})`;
      await carolChat.err.shows(new RegExp(esc(removed)));
      await bobChat.err.shows(new RegExp(esc(removed)));
      await type(session, "after carol");
      await bobChat.out.shows(/alice: after carol/);

      await type(session, "/remove nobody");
      await screenShows(session, /cannot remove: Nobody named "nobody" is a member of the room/);
      await type(session, "/who");
      await screenShows(session, new RegExp(`● bob ${esc(bobFp)}`));
      await screenShows(session, /✗ carol .*\(not invited: nothing is sealed to it\)/);

      // Alice leaves the list: a non-member's /invite is refused before anything is signed.
      await type(session, "/remove alice");
      await bobChat.err.shows(new RegExp(esc(`alice (${aliceFp}) left invite-only room club`)));
      await type(session, "/invite carol");
      await screenShows(
        session,
        /cannot invite: You are not a member of room "club": a member must invite you/,
      );
      await type(session, "after leaving");
      await screenShows(session, /not sent: you are not a member of this invite-only room/);
      await type(session, "/quit");
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
      if (bobChat) assert.equal(await bobChat.stop(), 0);
      if (carolChat) assert.equal(await carolChat.stop(), 0);
      await listener.stop();
    }
    const carolSaw = carolChat!.out.text();
    assert.doesNotMatch(carolSaw, /before carol|after carol|after leaving/);
    assert.doesNotMatch(bobChat!.out.text(), /after leaving/);
    assert.match(carolSaw, /with carol/);
    // Alice's home keeps the newest change she saw, for the next join.
    const heads = await Deno.readTextFile(`${alice.home}/room_heads`);
    assert.match(heads, /^SHA256:\S+ club 4 [0-9a-f]{64}\n$/);
  },
});

Deno.test("a room joined as invite-only is joined so again without the flag; an ordinary room is not one", async () => {
  const server = await homeWithIdentity("server");
  const alice = await homeWithIdentity("alice");
  assert.equal((await ovtp(["add-key", alice.line], { home: server.home })).code, 0);
  const listener = await startListen(server.home);
  try {
    const first = chatChild(alice.home, listener.target, ["--room", "club", "--invite-only"]);
    await first.err.shows(/joined room club/);
    assert.equal(await first.stop(), 0);
    assert.match(first.err.text(), /created invite-only room club/);

    // The creation is not shown again: only changes newer than the one kept.
    const again = chatChild(alice.home, listener.target, ["--room", "club"]);
    await again.err.shows(/joined room club/);
    assert.equal(await again.stop(), 0);
    assert.match(again.err.text(), /room club is invite-only \(as seen before\)/);
    assert.doesNotMatch(again.err.text(), /created/);

    // An ordinary room cannot be joined as invite-only, nor the reverse.
    const plain = chatChild(alice.home, listener.target, ["--room", "plain"]);
    await plain.err.shows(/joined room plain/);
    assert.equal(await plain.stop(), 0);
    const refused = await ovtp(
      ["chat", listener.target, "--room", "plain", "--invite-only"],
      { home: alice.home, stdin: "" },
    );
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^ovtp: error: The server refused: The room "plain" is not invite-only\n/m,
    );
    const bobHome = await homeWithIdentity("bob");
    assert.equal((await ovtp(["add-key", bobHome.line], { home: server.home })).code, 0);
    const ordinary = await ovtp(["chat", listener.target, "--room", "club"], {
      home: bobHome.home,
      stdin: "",
    });
    assert.equal(ordinary.code, 1);
    assert.match(
      ordinary.stderr,
      /^ovtp: error: The server refused: The room "club" is invite-only\n/m,
    );
  } finally {
    await listener.stop();
  }
});

function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
