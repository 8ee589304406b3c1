/**
 * What a person at a terminal meets: keygen asking the passphrase again,
 * confirming before --force replaces an identity, and send confirming an
 * empty "ok". Each runs in a tmux pane; the exit code is echoed on screen.
 */
import assert from "node:assert/strict";
import { homeWithIdentity, MAIN, makePair, ovtp, startListen, tempHome } from "./_cli.ts";
import { HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";
import { PERMISSIONS } from "../scripts/compile.ts";

/** Starts `ovtp ARGS` in a new pane with OVTP_HOME=home; the pane prints `exit=N` at the end. */
async function inPane(home: string, args: string): Promise<string> {
  const session = sessionName();
  const ovtpCommand = [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN]
    .map((word) => `'${word}'`).join(" ");
  const command =
    `NO_COLOR=1 OVTP_ACCEPT_NEW=1 OVTP_HOME='${home}' HOME='${home}.user' ${ovtpCommand} ${args}; ` +
    `echo "exit=$?"; sleep 60`;
  await tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "30", command);
  return session;
}

async function type(session: string, text: string): Promise<void> {
  await tmux("send-keys", "-t", session, "-l", text);
  await tmux("send-keys", "-t", session, "Enter");
}

Deno.test({
  name: "keygen asks again when the passphrases differ, and gives up after three tries (exit 5)",
  ignore: !HAS_TMUX,
  async fn() {
    const home = await tempHome();
    const session = await inPane(home, "keygen --passphrase");
    try {
      await screenShows(session, /New passphrase:$/m);
      await type(session, "one");
      await screenShows(session, /Same passphrase again:$/m);
      await type(session, "two");
      await screenShows(session, /the passphrases do not match; try again/);
      await screenShows(session, /try again\nNew passphrase:$/m);
      await type(session, "secret");
      await screenShows(session, /try again\nNew passphrase:\nSame passphrase again:$/m);
      await type(session, "secret");
      const screen = await screenShows(session, /exit=\d+/);
      assert.match(screen, /Created an identity/);
      assert.match(screen, /exit=0/);
      assert.match(await Deno.readTextFile(`${home}/id_ovtp`), /^ovtp1-private-argon2id /);
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
    }
    const other = await tempHome();
    const failing = await inPane(other, "keygen --passphrase");
    try {
      for (let i = 0; i < 3; i++) {
        await screenShows(failing, new RegExp(`(New passphrase:[^]*){${i + 1}}`));
        await type(failing, "a");
        await screenShows(failing, new RegExp(`(Same passphrase again:[^]*){${i + 1}}`));
        await type(failing, "b");
      }
      const screen = await screenShows(failing, /exit=\d+/);
      assert.match(screen, /ovtp: error: The passphrases do not match \(3 tries\)/);
      assert.match(screen, /exit=5/);
      await assert.rejects(Deno.stat(`${other}/id_ovtp`), Deno.errors.NotFound);
    } finally {
      await tmux("kill-session", "-t", failing).catch(() => {});
    }
  },
});

Deno.test({
  name: "keygen --force on a terminal replaces the identity only once told yes (else exit 130)",
  ignore: !HAS_TMUX,
  async fn() {
    const { home } = await homeWithIdentity("first");
    const before = await Deno.readTextFile(`${home}/id_ovtp`);
    const refused = await inPane(home, "keygen --force -C second");
    try {
      await screenShows(refused, /The old key is lost\. Type "yes":$/m);
      await type(refused, "no");
      const screen = await screenShows(refused, /exit=\d+/);
      assert.match(screen, /ovtp: error: Kept the existing identity/);
      assert.match(screen, /exit=130/);
      assert.equal(await Deno.readTextFile(`${home}/id_ovtp`), before);
    } finally {
      await tmux("kill-session", "-t", refused).catch(() => {});
    }
    const accepted = await inPane(home, "keygen --force -C second");
    try {
      await screenShows(accepted, /Type "yes":$/m);
      await type(accepted, "yes");
      const screen = await screenShows(accepted, /exit=\d+/);
      assert.match(screen, /exit=0/);
      assert.notEqual(await Deno.readTextFile(`${home}/id_ovtp`), before);
      assert.match(await Deno.readTextFile(`${home}/id_ovtp.pub`), / second\n$/);
    } finally {
      await tmux("kill-session", "-t", accepted).catch(() => {});
    }
    // Without a terminal, --force is taken at its word; without --force, refused.
    const refusedScript = await ovtp(["keygen"], { home });
    assert.equal(refusedScript.code, 5);
    assert.equal((await ovtp(["keygen", "--force"], { home })).code, 0);
  },
});

Deno.test({
  name: "send confirms an empty ok on a terminal, and prints nothing for it in a pipe",
  ignore: !HAS_TMUX,
  async fn() {
    const { server, client } = await makePair();
    const listener = await startListen(server.home);
    const session = await inPane(client.home, `send ${listener.target} hello`);
    try {
      const screen = await screenShows(session, /exit=\d+/);
      assert.match(screen, /ovtp: ok \(the response is empty\)/);
      assert.match(screen, /exit=0/);
      const piped = await ovtp(["send", listener.target, "again"], { home: client.home });
      assert.equal(piped.code, 0);
      assert.equal(piped.stdout, "");
      assert.doesNotMatch(piped.stderr, /ok \(/);
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
      await listener.stop();
    }
  },
});
