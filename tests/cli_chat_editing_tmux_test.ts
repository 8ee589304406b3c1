/**
 * The chat's input line as a person uses it, in a tmux pane: cursor keys,
 * history, long and wide lines, and the chat's own commands.
 */
import assert from "node:assert/strict";
import { CLI_ENV, homeWithIdentity, MAIN, ovtp, startListen } from "./_cli.ts";
import { gather, HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";

/** Everything the pane showed, wrapped rows joined back into lines. */
async function history(session: string): Promise<string> {
  return await tmux("capture-pane", "-p", "-J", "-S", "-", "-t", session);
}

/**
 * Waits until the pane's history holds all of `text`: tmux types a long
 * line in pieces, and the screen can end like the line before all of it
 * came.
 */
async function typedWhole(session: string, text: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await history(session)).includes(text)) {
    if (Date.now() > deadline) throw new Error(`The pane never showed all of ${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

async function type(session: string, ...keys: string[]): Promise<void> {
  for (const key of keys) {
    // A word is typed as text; Left, Up, Enter and the like are keys.
    if (/^[A-Z][a-zA-Z]*$|^C-/.test(key)) await tmux("send-keys", "-t", session, key);
    else await tmux("send-keys", "-t", session, "-l", key);
  }
}

Deno.test({
  name: "chat's input line: cursor keys, history, long and wide lines, /help, /qiut not sent",
  ignore: !HAS_TMUX,
  async fn() {
    const server = await homeWithIdentity("server");
    const alice = await homeWithIdentity("alice");
    const bob = await homeWithIdentity("bob");
    for (const who of [alice, bob]) {
      assert.equal((await ovtp(["add-key", who.line], { home: server.home })).code, 0);
    }
    const listener = await startListen(server.home);
    const session = sessionName();
    const command =
      `LANG=C.UTF-8 OVTP_ACCEPT_NEW=1 OVTP_HOME='${alice.home}' HOME='${alice.home}.user' '${Deno.execPath()}' run --quiet -A '${MAIN}' chat ${listener.target} --room edit`;
    const bobChat = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "-A", MAIN, "chat", listener.target, "--room", "edit"],
      env: { ...CLI_ENV, OVTP_HOME: bob.home, HOME: `${bob.home}.user` },
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const bobInput = bobChat.stdin.getWriter();
    const bobOutput = gather(bobChat.stdout);
    await tmux("new-session", "-d", "-s", session, "-x", "60", "-y", "20", command);
    const long = Array.from({ length: 15 }, (_, i) => `word${i}`).join(" ").padEnd(130, "."); // > 60
    const wide = "日本語のテキスト😀".repeat(6); // 10 characters, 19 columns, six times: > 60
    let bobSaw = "";
    try {
      const first = await screenShows(session, /joined room edit as alice/);
      // Item: the first join pins names silently, and never warns about one's own key.
      assert.doesNotMatch(first, /WARNING|warning/);
      await screenShows(session, /2 online|bob joined/);

      // Two to the left of the end is between a and b, as in any shell.
      await type(session, "abc", "Left", "Left", "X", "Enter");
      await screenShows(session, /alice: aXbc$/m);

      // A line longer than the pane is shown once while typed, and once sent.
      await type(session, long);
      await typedWhole(session, long);
      assert.equal(count(await history(session), long), 1);
      // A message arriving meanwhile goes above the wrapped line, which stays whole.
      await bobInput.write(new TextEncoder().encode("ping from bob\n"));
      await screenShows(session, /bob: ping from bob/);
      assert.equal(count(await history(session), long), 1);
      assert.match(await history(session), new RegExp(`bob: ping from bob\n(.*\n)*alice> ${long}`));
      await type(session, "Enter");
      await screenShows(session, /alice: word0/);
      assert.equal(count(await history(session), long), 1);

      await type(session, wide);
      await typedWhole(session, wide);
      assert.equal(count(await history(session), wide), 1);
      await type(session, "Enter");
      await screenShows(session, /alice: 日本語/);
      assert.equal(count(await history(session), wide), 1);

      // Up, Up recalls the line before the last one; Home and End move.
      await type(session, "Up", "Up", "Up", "Home", ">", "End", "<", "Enter");
      await screenShows(session, /alice: >aXbc<$/m);

      await type(session, "/help", "Enter");
      await screenShows(session, /\/quit +leave the room/);
      await type(session, "/qiut", "Enter");
      await screenShows(session, /unknown command \/qiut \(not sent\)/);
      await type(session, "//slash", "Enter");
      await screenShows(session, /alice: \/slash$/m);
      await type(session, "last", "Enter");
      await screenShows(session, /alice: last$/m);
      await bobOutput.shows(/alice: last$/m);
      await type(session, "/quit", "Enter");
    } finally {
      await new Promise((r) => setTimeout(r, 500));
      await tmux("kill-session", "-t", session).catch(() => {});
      await bobInput.close().catch(() => {});
      await bobChat.status;
      await bobOutput.done;
      bobSaw = bobOutput.text();
      await listener.stop();
    }
    const said = bobSaw.split("\n").filter((line) => line.includes("alice: "))
      .map((line) => line.replace(/^.*?alice: /, ""));
    assert.deepEqual(said, ["aXbc", long, wide, ">aXbc<", "/slash", "last"]);
  },
});
