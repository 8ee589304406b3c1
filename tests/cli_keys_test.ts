import assert from "node:assert/strict";
import { assertOneError, homeWithIdentity, ovtp, tempHome } from "./_cli.ts";

const LINE_PATTERN = /^ovtp1 [A-Za-z0-9_-]{86}( .*)?$/;
const FINGERPRINT_PATTERN = /SHA256:[A-Za-z0-9+/]{43}/;

Deno.test("keygen creates a 0600 key in a 0700 home and prints the fingerprint and line", async () => {
  const home = await tempHome();
  const result = await ovtp(["keygen", "--comment", "alice@laptop"], { home });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const lines = result.stdout.trim().split("\n");
  assert.match(lines[1], new RegExp(`^Fingerprint: ${FINGERPRINT_PATTERN.source}$`));
  assert.match(lines[2], LINE_PATTERN);
  assert.ok(lines[2].endsWith(" alice@laptop"));
  if (Deno.build.os !== "windows") {
    assert.equal((await Deno.stat(`${home}/id_ovtp`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(home)).mode! & 0o777, 0o700);
  }
  assert.equal((await Deno.readTextFile(`${home}/id_ovtp.pub`)).trim(), lines[2]);
  const id = await ovtp(["id"], { home });
  assert.equal(id.stdout.trim(), lines[2]);
  const fp = await ovtp(["id", "--fingerprint"], { home });
  assert.equal(fp.stdout.trim(), lines[1].slice("Fingerprint: ".length));
});

Deno.test("keygen refuses to replace an identity without --force", async () => {
  const { home, line } = await homeWithIdentity("first");
  const again = await ovtp(["keygen"], { home });
  assert.equal(again.code, 5);
  assert.equal(again.stdout, "");
  assertOneError(again, /An identity already exists/);
  assert.match(again.stderr, /ovtp: hint: use --force/);
  assert.equal((await ovtp(["id"], { home })).stdout.trim(), line);
  const forced = await ovtp(["keygen", "--force", "--comment", "second"], { home });
  assert.equal(forced.code, 0, forced.stderr);
  assert.notEqual((await ovtp(["id"], { home })).stdout.trim(), line);
});

Deno.test("keygen --passphrase seals the key; a wrong passphrase is refused", async () => {
  const home = await tempHome();
  const env = { OVTP_PASSPHRASE: "correct horse" };
  const created = await ovtp(["keygen", "--passphrase"], { home, env });
  assert.equal(created.code, 0, created.stderr);
  const file = await Deno.readTextFile(`${home}/id_ovtp`);
  assert.match(file, /^ovtp1-private-argon2id m=65536,t=3,p=1 /);
  // Any command that needs the private key asks for the passphrase.
  const wrong = await ovtp(["listen", "--port", "0"], {
    home,
    env: { OVTP_PASSPHRASE: "wrong" },
  });
  assert.equal(wrong.code, 5);
  assertOneError(wrong, /^ovtp: error: Wrong passphrase for ".*id_ovtp"$/);
  const none = await ovtp(["send", "127.0.0.1:1", "x"], { home });
  assert.equal(none.code, 5);
  assertOneError(none, /needs a passphrase, and there is no terminal/);
});

Deno.test("commands that need an identity say to run keygen", async () => {
  const home = await tempHome();
  for (const args of [["id"], ["send", "127.0.0.1:1", "hi"], ["listen", "--port", "0"]]) {
    const result = await ovtp(args, { home });
    assert.equal(result.code, 5, args.join(" "));
    assertOneError(result, /^ovtp: error: No identity in ".*"$/);
    assert.match(result.stderr, /ovtp: hint: run `ovtp keygen`/);
  }
});

Deno.test("add-key takes a line, a file or stdin, and ignores duplicates", async () => {
  const server = await tempHome();
  const alice = await homeWithIdentity("alice");
  const bob = await homeWithIdentity("bob");
  const carol = await homeWithIdentity("carol");

  const byArg = await ovtp(["add-key", alice.line], { home: server });
  assert.equal(byArg.code, 0, byArg.stderr);
  assert.match(byArg.stdout, /^Authorized "alice" \(SHA256:/);

  const file = `${server}.bob.pub`;
  await Deno.writeTextFile(file, `# bob's key\n\n${bob.line}\n`);
  const byFile = await ovtp(["add-key", file, "--name", "robert"], { home: server });
  assert.equal(byFile.code, 0, byFile.stderr);
  assert.match(byFile.stdout, /^Authorized "robert"/);

  const byStdin = await ovtp(["add-key", "-"], { home: server, stdin: carol.line + "\n" });
  assert.equal(byStdin.code, 0, byStdin.stderr);

  const duplicate = await ovtp(["add-key", alice.line, "--name", "other"], { home: server });
  assert.equal(duplicate.code, 0);
  assert.match(duplicate.stdout, /Already authorized as "alice"/);

  const text = await Deno.readTextFile(`${server}/authorized_keys`);
  assert.equal(text.trim().split("\n").length, 3);

  const list = await ovtp(["keys"], { home: server });
  assert.equal(list.code, 0, list.stderr);
  const names = list.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]);
  assert.deepEqual(names, ["alice", "robert", "carol"]);
  assert.match(list.stdout, FINGERPRINT_PATTERN);
});

Deno.test("add-key refuses a malformed line with the reason", async () => {
  const server = await tempHome();
  const cases: [string, RegExp][] = [
    ["ssh-ed25519 AAAAC3Nza", /Expected a key starting with "ovtp1"/],
    ["ovtp1", /The key is missing/],
    ["ovtp1 not*base64", /not valid base64url/],
    ["ovtp1 AAAA", /has 3 bytes; an ovtp1 key has 64/],
  ];
  for (const [line, reason] of cases) {
    const result = await ovtp(["add-key", line], { home: server });
    assert.equal(result.code, 5, line);
    assertOneError(result, reason);
  }
  const bad = `${server}.bad.pub`;
  const { line } = await homeWithIdentity("ok");
  await Deno.writeTextFile(bad, `${line}\n# comment\novtp1 tooshort\n`);
  const fromFile = await ovtp(["add-key", bad], { home: server });
  assert.equal(fromFile.code, 5);
  assertOneError(fromFile, /Line 3 of ".*bad\.pub" is not a valid public key/);
  // Nothing was written: the file is checked before any key is added.
  await assert.rejects(Deno.stat(`${server}/authorized_keys`), Deno.errors.NotFound);
  const missing = await ovtp(["add-key", `${server}/nope.pub`], { home: server });
  assert.equal(missing.code, 5);
  assertOneError(missing, /Cannot read key file ".*nope\.pub": no such file/);
});

Deno.test("keys remove deletes by name or fingerprint and refuses unknown names", async () => {
  const server = await tempHome();
  const alice = await homeWithIdentity("alice");
  const bob = await homeWithIdentity("bob");
  await ovtp(["add-key", alice.line], { home: server });
  await ovtp(["add-key", bob.line], { home: server });
  const byName = await ovtp(["keys", "remove", "alice"], { home: server });
  assert.equal(byName.code, 0, byName.stderr);
  assert.match(byName.stdout, /^Removed "alice"/);
  const bobFp = (await ovtp(["id", "--fingerprint"], { home: bob.home })).stdout.trim();
  const byFp = await ovtp(["keys", "remove", bobFp], { home: server });
  assert.equal(byFp.code, 0, byFp.stderr);
  assert.equal((await Deno.readTextFile(`${server}/authorized_keys`)).trim(), "");
  const unknown = await ovtp(["keys", "remove", "nobody"], { home: server });
  assert.equal(unknown.code, 7); // Not found.
  assertOneError(unknown, /No authorized key named "nobody"/);
});

Deno.test("keys reports a malformed authorized_keys line with its number", async () => {
  const server = await tempHome();
  const alice = await homeWithIdentity("alice");
  await Deno.writeTextFile(`${server}/authorized_keys`, `${alice.line}\ngarbage here\n`);
  const list = await ovtp(["keys"], { home: server });
  assert.equal(list.code, 5); // A key file to fix.
  assert.match(list.stdout, /^alice\s+SHA256:/);
  assert.match(list.stderr, /authorized_keys line 2: Expected a key starting with "ovtp1"/);
});

Deno.test("usage errors exit 2; --help prints on stdout and exits 0", async () => {
  const unknown = await ovtp(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^ovtp: error: Unknown command "frobnicate"/);
  assert.match(unknown.stderr, /Commands:/);
  // Names every object inherits are no commands either (one was a crash, exit 70).
  for (const inherited of ["constructor", "toString", "__proto__"]) {
    const result = await ovtp([inherited]);
    assert.equal(result.code, 2, inherited);
    assert.match(result.stderr, new RegExp(`^ovtp: error: Unknown command "${inherited}"`));
  }
  // A typo gets the closest command or option instead of the whole list.
  const typo = await ovtp(["sned", "x"]);
  assert.equal(typo.code, 2);
  assert.equal(typo.stdout, "");
  assert.equal(
    typo.stderr,
    'ovtp: error: Unknown command "sned"\novtp: hint: did you mean `ovtp send`?\n',
  );
  const option = await ovtp(["send", "x", "--tiemout", "3"]);
  assert.equal(option.code, 2);
  assert.equal(
    option.stderr,
    "ovtp: error: Unknown option --tiemout\n" +
      "ovtp: hint: did you mean --timeout? (see `ovtp send --help`)\n",
  );
  const far = await ovtp(["send", "x", "-q"]);
  assert.equal(far.code, 2);
  assert.equal(far.stderr, "ovtp: error: Unknown option -q\novtp: hint: see `ovtp send --help`\n");
  const help = await ovtp(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /keygen/);
  assert.equal(help.stderr, "");
  const sendHelp = await ovtp(["send", "--help"]);
  assert.equal(sendHelp.code, 0);
  assert.match(sendHelp.stdout, /^Usage: ovtp send/);
  const badFlag = await ovtp(["send", "--bogus"], { home: await tempHome() });
  assert.equal(badFlag.code, 2);
  assertOneError(badFlag, /Unknown option --bogus$/m);
  const noHost = await ovtp(["send"], { home: await tempHome() });
  assert.equal(noHost.code, 2);
  assertOneError(noHost, /Missing the HOST/);
});
