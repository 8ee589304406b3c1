// Passphrases through the real CLI: keygen --change-passphrase (add,
// change, remove; the keys stay), one try from OVTP_PASSPHRASE, and three
// on a terminal (tmux), as ssh gives.

import assert from "node:assert/strict";
import { assertOneError, homeWithIdentity, MAIN, ovtp, tempHome } from "./_cli.ts";
import { HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";
import { PERMISSIONS } from "../scripts/compile.ts";

/** Seals a few bytes for oneself: a command that needs the private key, and no server. */
function sealForSelf(home: string, env: Record<string, string> = {}) {
  return ovtp(["seal", "-r", "self", "-o", `${home}.${crypto.randomUUID()}.sealed`], {
    home,
    env,
    stdin: "note",
  });
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

Deno.test("keygen --change-passphrase: the old one stops working, the new one works, the keys stay", async () => {
  const home = await sealedHome("old one");
  const fp = (await ovtp(["id", "--fingerprint"], { home })).stdout;
  const pub = await Deno.readTextFile(`${home}/id_ovtp.pub`);
  const changed = await ovtp(["keygen", "--change-passphrase"], {
    home,
    env: { OVTP_PASSPHRASE: "old one", OVTP_NEW_PASSPHRASE: "new one" },
  });
  assert.equal(changed.code, 0, changed.stderr);
  assert.equal(changed.stderr, "");
  assert.equal(
    changed.stdout,
    `"${home}/id_ovtp" has a new passphrase\nFingerprint: ${fp.trim()} (unchanged)\n`,
  );
  if (Deno.build.os !== "windows") {
    assert.equal((await Deno.stat(`${home}/id_ovtp`)).mode! & 0o777, 0o600);
  }
  assert.equal(await Deno.readTextFile(`${home}/id_ovtp.pub`), pub);
  const old = await sealForSelf(home, { OVTP_PASSPHRASE: "old one" });
  assert.equal(old.code, 5);
  // From the variable there is one try: a wrong one would be wrong again.
  assertOneError(old, /^ovtp: error: Wrong passphrase for ".*id_ovtp"$/);
  assert.equal((await sealForSelf(home, { OVTP_PASSPHRASE: "new one" })).code, 0);
  // The identity derived from the rewritten file is the same one.
  await Deno.remove(`${home}/id_ovtp.pub`);
  const derived = await ovtp(["id", "--fingerprint"], {
    home,
    env: { OVTP_PASSPHRASE: "new one" },
  });
  assert.equal(derived.stdout, fp);
});

Deno.test("keygen --change-passphrase adds one to a plain key, and removes one only when told", async () => {
  const { home } = await homeWithIdentity("plain");
  const added = await ovtp(["keygen", "--change-passphrase", "--json"], {
    home,
    env: { OVTP_NEW_PASSPHRASE: "added" },
  });
  assert.equal(added.code, 0, added.stderr);
  assert.equal(JSON.parse(added.stdout).passphrase, "set");
  assert.match(await Deno.readTextFile(`${home}/id_ovtp`), /^ovtp1-private-argon2id /);
  const sealed = await Deno.readTextFile(`${home}/id_ovtp`);
  // An empty new passphrase in a script may be a mistake: it needs --force.
  const env = { OVTP_PASSPHRASE: "added", OVTP_NEW_PASSPHRASE: "" };
  const refused = await ovtp(["keygen", "--change-passphrase"], { home, env });
  assert.equal(refused.code, 2);
  assertOneError(refused, /OVTP_NEW_PASSPHRASE is empty: that would remove the passphrase/);
  assert.equal(await Deno.readTextFile(`${home}/id_ovtp`), sealed);
  const removed = await ovtp(["keygen", "--change-passphrase", "--force"], { home, env });
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /is stored without a passphrase/);
  assert.match(await Deno.readTextFile(`${home}/id_ovtp`), /^ovtp1-private [A-Za-z0-9_-]+\n$/);
  assert.equal((await sealForSelf(home)).code, 0);
  const again = await ovtp(["keygen", "--change-passphrase", "--force"], { home, env });
  assert.match(again.stdout, /has no passphrase; nothing changed/);
});

Deno.test("keygen --change-passphrase refuses what it cannot do, changing nothing", async () => {
  const home = await sealedHome("right");
  const before = await Deno.readTextFile(`${home}/id_ovtp`);
  const cases: [string[], Record<string, string>, number, RegExp][] = [
    [
      [],
      { OVTP_PASSPHRASE: "wrong", OVTP_NEW_PASSPHRASE: "x" },
      5,
      /^ovtp: error: Wrong passphrase/,
    ],
    [[], { OVTP_PASSPHRASE: "right" }, 5, /A new passphrase is needed, and there is no terminal/],
    [[], { OVTP_NEW_PASSPHRASE: "x" }, 5, /needs a passphrase, and there is no terminal/],
    [["-C", "x"], {}, 2, /--change-passphrase keeps the key/],
    [["--passphrase"], {}, 2, /--change-passphrase keeps the key/],
    [["-i", `${home}/nothing`], { OVTP_PASSPHRASE: "right" }, 5, /No key file ".*nothing"/],
  ];
  for (const [args, env, code, pattern] of cases) {
    const result = await ovtp(["keygen", "--change-passphrase", ...args], { home, env });
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stdout, "");
    assertOneError(result, pattern);
  }
  const stray = await ovtp(["keygen", "-i", "x"], { home });
  assert.equal(stray.code, 2);
  assertOneError(stray, /-i goes with --change-passphrase/);
  assert.equal(await Deno.readTextFile(`${home}/id_ovtp`), before);
});

/** Starts `ovtp ARGS` in a tmux pane with OVTP_HOME=home; the pane prints `exit=N` at the end. */
async function inPane(home: string, args: string): Promise<string> {
  const session = sessionName();
  const ovtpCommand = [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN]
    .map((word) => `'${word}'`).join(" ");
  await tmux(
    "new-session",
    "-d",
    "-s",
    session,
    "-x",
    "150",
    "-y",
    "30",
    `NO_COLOR=1 OVTP_HOME='${home}' HOME='${home}.user' ${ovtpCommand} ${args}; echo "exit=$?"; sleep 60`,
  );
  return session;
}

async function type(session: string, text: string): Promise<void> {
  await tmux("send-keys", "-t", session, "-l", text);
  await tmux("send-keys", "-t", session, "Enter");
}

const count = (screen: string, text: string) => screen.split(text).length - 1;

Deno.test({
  name:
    "a wrong passphrase on a terminal is asked again: two wrong then right works, three wrong fail (exit 5)",
  ignore: !HAS_TMUX,
  async fn() {
    const home = await sealedHome("right");
    const seal = () => `seal -r self -o '${home}.${crypto.randomUUID()}' '${home}/id_ovtp.pub'`;
    const works = await inPane(home, seal());
    try {
      for (const [i, typed] of ["wrong", "wronger"].entries()) {
        await screenShows(works, /Passphrase: *$/m);
        await type(works, typed);
        // Typed ahead of the prompt, a passphrase would be echoed: wait for this try's.
        await screenShows(
          works,
          new RegExp(`(try again\nPassphrase:[^]*){${i + 1}}`),
        );
      }
      await type(works, "right");
      const screen = await screenShows(works, /exit=\d+/);
      assert.match(screen, /exit=0/);
      assert.equal(count(screen, "Passphrase:"), 3);
      assert.doesNotMatch(screen, /wronger|\bright\b/, screen);
    } finally {
      await tmux("kill-session", "-t", works).catch(() => {});
    }
    const fails = await inPane(home, seal());
    try {
      for (let i = 1; i <= 3; i++) {
        await screenShows(fails, new RegExp(`(Passphrase:[^]*){${i}}`));
        await type(fails, `wrong${i}`);
      }
      const screen = await screenShows(fails, /exit=\d+/);
      assert.match(screen, /^ovtp: error: Wrong passphrase for ".*id_ovtp" \(3 tries\)$/m);
      assert.match(screen, /exit=5/);
      assert.equal(count(screen, "Passphrase:"), 3);
    } finally {
      await tmux("kill-session", "-t", fails).catch(() => {});
    }
  },
});

Deno.test({
  name: "keygen --change-passphrase on a terminal: an empty new one removes it after yes",
  ignore: !HAS_TMUX,
  async fn() {
    const home = await sealedHome("right");
    const before = await Deno.readTextFile(`${home}/id_ovtp`);
    const kept = await inPane(home, "keygen --change-passphrase");
    try {
      await screenShows(kept, /^Passphrase: *$/m);
      await type(kept, "right");
      await screenShows(kept, /New passphrase \(empty for none\): *$/m);
      await type(kept, "");
      await screenShows(kept, /Anyone who can read it can use your key\. Type "yes": *$/m);
      await type(kept, "no");
      const screen = await screenShows(kept, /exit=\d+/);
      assert.match(screen, /ovtp: error: Kept the passphrase: nothing was changed/);
      assert.match(screen, /exit=130/);
      assert.equal(await Deno.readTextFile(`${home}/id_ovtp`), before);
    } finally {
      await tmux("kill-session", "-t", kept).catch(() => {});
    }
    const removed = await inPane(home, "keygen --change-passphrase");
    try {
      await screenShows(removed, /^Passphrase: *$/m);
      await type(removed, "right");
      await screenShows(removed, /New passphrase \(empty for none\): *$/m);
      await type(removed, "");
      await screenShows(removed, /Type "yes": *$/m);
      await type(removed, "yes");
      const screen = await screenShows(removed, /exit=\d+/);
      assert.match(screen, /is stored without a passphrase/);
      assert.match(screen, /exit=0/);
      assert.match(await Deno.readTextFile(`${home}/id_ovtp`), /^ovtp1-private /);
    } finally {
      await tmux("kill-session", "-t", removed).catch(() => {});
    }
  },
});
