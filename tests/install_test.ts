/**
 * README's first command: `npm install -g --install-links .` puts `ovtp` on
 * the PATH, runs from any directory, and stopping it stops ovtp itself.
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { homeWithIdentity, ovtp, startListen } from "./_cli.ts";
import { HAS_NPM as npm, install } from "./_install.ts";
import { HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";

if (!npm) console.log("tests/install_test.ts: npm is not installed: the install tests are skipped");

Deno.test({
  name: "npm install -g puts ovtp on the PATH, usable from any directory",
  ignore: !npm,
  async fn() {
    const program = await install();
    const elsewhere = await tempDir();
    const help = await ovtp(["--help"], { program, cwd: elsewhere });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^ovtp \d+\.\d+\.\d+: /);
    assert.equal(help.stderr, "", "no task line or other noise on stderr");

    // A send between two homes, run from a directory with no deno.json, and
    // a sendfile of a path relative to that directory.
    const [server, client] = await Promise.all([
      homeWithIdentity("server@test"),
      homeWithIdentity("client@test"),
    ]);
    assert.equal((await ovtp(["add-key", client.line], { home: server.home, program })).code, 0);
    const inbox = await tempDir();
    const listener = await startListen(server.home, ["--inbox", inbox], { program });
    try {
      const sent = await ovtp(["send", listener.target, "hello"], {
        home: client.home,
        program,
        cwd: elsewhere,
      });
      assert.equal(sent.code, 0, sent.stderr);
      await listener.waitFor(/: hello$/m, "stdout");
      await Deno.writeTextFile(`${elsewhere}/notes.txt`, "relative path\n");
      const file = await ovtp(["sendfile", listener.target, "notes.txt"], {
        home: client.home,
        program,
        cwd: elsewhere,
      });
      assert.equal(file.code, 0, file.stderr);
      await listener.waitFor(/sent file .*notes\.txt: 14 bytes/, "stdout");
    } finally {
      await listener.stop();
    }
  },
});

Deno.test({
  name: "SIGTERM to the installed ovtp's PID stops listen gracefully, and nothing keeps listening",
  ignore: !npm || Deno.build.os === "windows",
  async fn() {
    const program = await install();
    const server = await homeWithIdentity("server@test");
    const listener = await startListen(server.home, [], { program });
    const code = await listener.stop("SIGTERM");
    assert.equal(code, 0, listener.stderr());
    assert.match(listener.stderr(), /SIGTERM: shutting down(.|\n)*ovtp: stopped/);
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port: listener.port }),
      Deno.errors.ConnectionRefused,
    );
  },
});

Deno.test({
  name: "Ctrl-C on the installed ovtp's terminal stops listen once, letting work in flight finish",
  ignore: !npm || !HAS_TMUX,
  async fn() {
    const [bin] = await install();
    const [server, client] = await Promise.all([
      homeWithIdentity("server@test"),
      homeWithIdentity("client@test"),
    ]);
    assert.equal((await ovtp(["add-key", client.line], { home: server.home })).code, 0);
    const session = sessionName();
    // A second SIGINT (the launcher forwarding the one the terminal sent to
    // the whole group) would end listen at once, with 130 and no answer.
    const started = `${server.home}.started`;
    const command = `OVTP_HOME='${server.home}' HOME='${server.home}.user' '${bin}' listen ` +
      `--host 127.0.0.1 --port 0 --exec 'touch ${started}; sleep 2; echo done'; ` +
      `echo "exit=$?"; sleep 30`;
    await tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "20", command);
    try {
      const port = /listening on 127\.0\.0\.1:(\d+)/.exec(
        await screenShows(session, /listening on 127\.0\.0\.1:\d+/),
      )![1];
      const sent = ovtp(["send", `127.0.0.1:${port}`, "work"], { home: client.home });
      // The command runs (in its own session: the Ctrl-C does not reach it).
      for (let i = 0; i < 300 && !await Deno.stat(started).then(() => true, () => false); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await tmux("send-keys", "-t", session, "C-c");
      const screen = await screenShows(session, /exit=\d+/);
      assert.match(screen, /SIGINT: shutting down/);
      assert.match(screen, /exit=0/);
      const answer = await sent;
      assert.equal(answer.code, 0, answer.stderr);
      assert.equal(answer.stdout, "done\n");
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
    }
  },
});
