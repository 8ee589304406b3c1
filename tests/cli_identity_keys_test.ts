/**
 * The smaller everyday items: keygen's -C and -f, id when id_ovtp.pub is
 * lost, keys' other action names and --json, add-key --json, completions
 * with --home, and the disk-space refusal naming its reserve.
 */
import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { assertOneError, homeWithIdentity, ovtp, tempHome } from "./_cli.ts";
import { Inbox } from "../lib/services/transfer/inbox.ts";

Deno.test("keygen takes -C for the comment and answers -f with --home", async () => {
  const home = await tempHome();
  const made = await ovtp(["keygen", "-C", "bob@box", "--json"], { home });
  assert.equal(made.code, 0, made.stderr);
  const printed = JSON.parse(made.stdout);
  assert.equal(printed.home, home);
  assert.match(printed.fingerprint, /^SHA256:/);
  assert.match(printed.public_line, /^ovtp1 \S+ bob@box$/);
  const file = await ovtp(["keygen", "-f", "other_key"], { home: await tempHome() });
  assert.equal(file.code, 2);
  assertOneError(file, /keeps its identity in its home as id_ovtp: use --home DIR/);
});

Deno.test("id derives a lost id_ovtp.pub from id_ovtp, and says exactly what is missing", async () => {
  const { home, line } = await homeWithIdentity("carol@desk");
  const fingerprint = (await ovtp(["id", "--fingerprint"], { home })).stdout;
  await Deno.remove(`${home}/id_ovtp.pub`);
  const derived = await ovtp(["id", "--json"], { home });
  assert.equal(derived.code, 0, derived.stderr);
  const printed = JSON.parse(derived.stdout);
  // The same key; only the comment could not come back.
  assert.equal(printed.public_line, line.replace(/ carol@desk$/, ""));
  assert.equal(`${printed.fingerprint}\n`, fingerprint);
  assert.equal(printed.comment, "");
  assert.match(derived.stderr, /id_ovtp\.pub was missing: derived it from id_ovtp/);
  assert.equal((await Deno.readTextFile(`${home}/id_ovtp.pub`)).trim(), printed.public_line);
  // Both gone: no identity at all.
  await Deno.remove(`${home}/id_ovtp`);
  await Deno.remove(`${home}/id_ovtp.pub`);
  const none = await ovtp(["id"], { home });
  assert.equal(none.code, 5);
  assertOneError(none, /^ovtp: error: No identity in /);
});

Deno.test("keys takes list/ls and remove/rm, with --json; add-key --json", async () => {
  const server = await tempHome();
  const alice = await homeWithIdentity("alice");
  const bob = await homeWithIdentity("bob");
  const added = await ovtp(["add-key", alice.line, "--json"], { home: server });
  assert.equal(added.code, 0, added.stderr);
  assert.deepEqual(Object.keys(JSON.parse(added.stdout)), ["name", "fingerprint", "added"]);
  assert.equal(JSON.parse(added.stdout).added, true);
  const again = await ovtp(["add-key", alice.line, "--json"], { home: server });
  assert.equal(JSON.parse(again.stdout).added, false);
  assert.equal((await ovtp(["add-key", bob.line], { home: server })).code, 0);

  const plain = await ovtp(["keys"], { home: server });
  for (const action of ["list", "ls"]) {
    assert.deepEqual(await ovtp(["keys", action], { home: server }), plain);
  }
  const listed = await ovtp(["keys", "ls", "--json"], { home: server });
  const entries = listed.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(entries.map((entry) => [entry.name, entry.expired]), [
    ["alice", false],
    ["bob", false],
  ]);
  const removed = await ovtp(["keys", "rm", "alice", "--json"], { home: server });
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual(JSON.parse(removed.stdout), {
    removed: "alice",
    fingerprint: entries[0].fingerprint,
  });
  assert.equal((await ovtp(["keys", "remove", "bob"], { home: server })).code, 0);
  const unknown = await ovtp(["keys", "delete", "bob"], { home: server });
  assert.equal(unknown.code, 2);
  assertOneError(unknown, /Unknown action "delete": use list, remove or set/);
  const extra = await ovtp(["keys", "list", "x"], { home: server });
  assert.equal(extra.code, 2);
});

Deno.test("completions takes --home and completes keys' actions and the shells", async () => {
  const home = await tempHome();
  const bash = await ovtp(["completions", "bash", "--home", home]);
  assert.equal(bash.code, 0, bash.stderr);
  assert.match(bash.stdout, /keys\) COMPREPLY=\(\$\(compgen -W "list remove set /);
  assert.match(bash.stdout, /completions\) COMPREPLY=\(\$\(compgen -W "bash zsh fish /);
  const zsh = await ovtp(["completions", "zsh", "--home", home]);
  assert.match(zsh.stdout, /keys\) _arguments '1:word:\(list remove set\)'/);
  const fish = await ovtp(["completions", "fish"]);
  assert.match(fish.stdout, /__fish_seen_subcommand_from completions' -a 'bash zsh fish'/);
});

Deno.test("the disk-space refusal says what was needed, what is free and the reserve", async () => {
  const inbox = new Inbox(await tempDir(), {
    freeBytes: () => Promise.resolve(100_000_000),
  });
  await assert.rejects(
    inbox.checkRoom(50_000_000, 50_000_000),
    /^OvtpError: Not enough free disk space on the server: 50000000 bytes needed, 100000000 free, of which 67108864 are kept in reserve$/,
  );
  await inbox.checkRoom(1000, 1000); // Fits beside the reserve.
});

Deno.test("open --info --json names the sender and the recipients; --json needs --info", async () => {
  const { home } = await homeWithIdentity("me");
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/in.txt`, "x");
  const sealed = await ovtp(["seal", "-r", "self", `${dir}/in.txt`, "-o", `${dir}/in.ovtp`], {
    home,
  });
  assert.equal(sealed.code, 0, sealed.stderr);
  const fingerprint = (await ovtp(["id", "--fingerprint"], { home })).stdout.trim();
  const info = await ovtp(["open", "--info", "--json", `${dir}/in.ovtp`], { home });
  assert.equal(info.code, 0, info.stderr);
  assert.deepEqual(JSON.parse(info.stdout), {
    format: "ovtp sealed v1",
    armored: false,
    sender: { fingerprint, name: "self" },
    recipients: [{ fingerprint, name: "self" }],
  });
  const alone = await ovtp(["open", "--json", `${dir}/in.ovtp`], { home });
  assert.equal(alone.code, 2);
  assertOneError(alone, /--json goes with --info/);
  // A usage failure under --json is reported as JSON too.
  assert.equal(JSON.parse(alone.stdout).kind, "usage");
});
