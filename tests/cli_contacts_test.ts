/**
 * Contacts (`ovtp contacts`), the keys `seal -r` and `open --from` take, and
 * `-i FILE` for the commands that use the identity without a connection.
 */
import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { fingerprint, Keystore, type PublicKey } from "../mod.ts";
import { assertOneError, makePair, ovtp, type RunResult, startListen, tempHome } from "./_cli.ts";

interface Person {
  home: string;
  line: string;
  key: PublicKey;
  fp: string;
}

// Homes made in-process (the files `ovtp keygen` writes), so that the tests
// spend their time in the commands under test.
async function person(comment: string): Promise<Person> {
  const home = await tempHome();
  const { identity, line } = await new Keystore(home).createIdentity({ comment });
  return { home, line, key: identity.publicKey, fp: await fingerprint(identity.publicKey) };
}

const [alice, bob, carol, dave] = await Promise.all(["alice", "bob", "carol", "dave"].map(person));
const work = await tempDir({ prefix: "ovtp-contacts-test-" });

async function file(name: string, content: string): Promise<string> {
  await Deno.writeTextFile(`${work}/${name}`, content);
  return `${work}/${name}`;
}

async function readOrEmpty(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

function assertRefused(result: RunResult, code: number, pattern: RegExp) {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  assertOneError(result, pattern);
}

Deno.test("contacts add, list and remove; a name in use, a bad line and a reserved name are refused", async () => {
  const home = (await person("owner")).home;
  const contacts = `${home}/contacts`;
  const empty = await ovtp(["contacts"], { home });
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(empty.stdout, "");
  assert.match(empty.stderr, /^No contacts in .*contacts; add one/);

  const byLine = await ovtp(["contacts", "add", "bob", bob.line], { home });
  assert.equal(byLine.code, 0, byLine.stderr);
  assert.match(byLine.stdout, new RegExp(`^Added contact "bob" \\(${escape(bob.fp)}\\)`));
  const carolFile = await file("carol.pub", `# carol's key, as she sent it\n\n${carol.line}\n`);
  const byFile = await ovtp(["contacts", "add", "Carol C", carolFile, "--json"], { home });
  assert.equal(byFile.code, 0, byFile.stderr);
  assert.deepEqual(JSON.parse(byFile.stdout), {
    name: "Carol C",
    fingerprint: carol.fp,
    added: true,
  });
  // The line's comment ("bob") is not the name: the name given is.
  const lines = (await Deno.readTextFile(contacts)).split("\n");
  assert.deepEqual(lines.map((l) => l.split(" ").slice(2).join(" ")), ["bob", "Carol C", ""]);

  const before = await Deno.readTextFile(contacts);
  const taken = await ovtp(["contacts", "add", "bob", dave.line], { home });
  assertRefused(taken, 2, /Cannot add the contact "bob": another key \(SHA256:\S+, line 1 of/);
  const again = await ovtp(["contacts", "add", "bobby", bob.line], { home });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^Already a contact as "bob" .*; nothing changed/);
  const bad = await file("bad.pub", `# ok so far\n${dave.line}\novtp1 AAAA dave\n`);
  const malformed = await ovtp(["contacts", "add", "dave", bad], { home });
  assertRefused(malformed, 5, /^ovtp: error: Line 3 of ".*bad\.pub" is not a valid public key/);
  const two = await file("two.pub", `${dave.line}\n${alice.line}\n`);
  assertRefused(await ovtp(["contacts", "add", "dave", two], { home }), 2, /one key, and 2/);
  for (const name of ["self", "SHA256:x", " padded", "bob\u200b"]) {
    const reserved = await ovtp(["contacts", "add", name, dave.line], { home });
    assert.equal(reserved.code, 2, `${name}: ${reserved.stderr}`);
  }
  assert.equal(await Deno.readTextFile(contacts), before, "a refusal changes nothing");

  const listed = await ovtp(["contacts", "list", "--json"], { home });
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(listed.stdout.trim().split("\n").map((l) => JSON.parse(l)), [
    { name: "bob", fingerprint: bob.fp },
    { name: "Carol C", fingerprint: carol.fp },
  ]);
  const text = await ovtp(["contacts", "ls"], { home });
  assert.equal(text.stdout, `bob      ${bob.fp}\nCarol C  ${carol.fp}\n`);

  const removed = await ovtp(["contacts", "rm", carol.fp], { home });
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stdout, `Removed contact "Carol C" (${carol.fp})\n`);
  assertRefused(await ovtp(["contacts", "remove", "Carol C"], { home }), 7, /No contact "Carol C"/);
  assertRefused(await ovtp(["contacts", "frob"], { home }), 2, /Unknown action "frob"/);
  // Being a contact is no authorization.
  await assert.rejects(Deno.stat(`${home}/authorized_keys`), Deno.errors.NotFound);

  // A line damaged by hand is shown with its number, and the listing fails.
  await Deno.writeTextFile(contacts, `${bob.line.replace(/ bob$/, "")}\n`);
  const damaged = await ovtp(["contacts"], { home });
  assert.equal(damaged.code, 5);
  assert.match(damaged.stderr, /contacts line 1: The line has no name/);
});

Deno.test("seal -r CONTACT and open --from CONTACT round-trip with no authorized_keys on either side", async () => {
  const [ann, ben] = await Promise.all([person("ann"), person("ben")]);
  assert.equal((await ovtp(["contacts", "add", "ben", ben.line], { home: ann.home })).code, 0);
  assert.equal((await ovtp(["contacts", "add", "ann", ann.line], { home: ben.home })).code, 0);
  const input = await file("round.in", "for ben only");
  const out = `${work}/round.ovtp`;
  const sealed = await ovtp(["seal", "-r", "ben", input, "-o", out], { home: ann.home });
  assert.equal(sealed.code, 0, sealed.stderr);
  const opened = await ovtp(["open", out, "--from", "ann"], { home: ben.home });
  assert.equal(opened.code, 0, opened.stderr);
  assert.equal(opened.stdout, "for ben only");
  assert.equal(opened.stderr, `Sealed by ann (${ann.fp})\n`);
  const info = await ovtp(["open", "--info", "--json", out], { home: ben.home });
  assert.deepEqual(JSON.parse(info.stdout).sender, { fingerprint: ann.fp, name: "ann" });
  // A contact of ben's named ann with another key is not ann.
  const mallory = await person("mallory");
  const forged = `${work}/forged.ovtp`;
  await ovtp(["seal", "-r", ben.line, input, "-o", forged], { home: mallory.home });
  const refused = await ovtp(["open", forged, "--from", "ann"], { home: ben.home });
  assertRefused(
    refused,
    4,
    /was sealed by SHA256:\S+ \(not in contacts or authorized_keys\), not by "ann"/,
  );
  for (const home of [ann.home, ben.home]) {
    await assert.rejects(Deno.stat(`${home}/authorized_keys`), Deno.errors.NotFound);
  }
});

Deno.test("a file of public lines names several recipients, and several accepted senders", async () => {
  const team = await file("team.pub", `# the team\n${bob.line}\n\n${carol.line}\n`);
  const input = await file("team.in", "to the team");
  const out = `${work}/team.ovtp`;
  const sealed = await ovtp(["seal", "-r", team, input, "-o", out], { home: alice.home });
  assert.equal(sealed.code, 0, sealed.stderr);
  for (const reader of [bob, carol]) {
    const opened = await ovtp(["open", out], { home: reader.home });
    assert.equal(opened.stdout, "to the team", opened.stderr);
  }
  assert.equal((await ovtp(["open", out], { home: dave.home })).code, 5);
  // --from FILE accepts a sender among its keys, and no other.
  const senders = await file("senders.pub", `${dave.line}\n${alice.line}\n`);
  assert.equal((await ovtp(["open", out, "--from", senders], { home: bob.home })).code, 0);
  const others = await file("others.pub", `${dave.line}\n${carol.line}\n`);
  assert.equal((await ovtp(["open", out, "--from", others], { home: bob.home })).code, 4);
  const broken = await file("broken.pub", `${bob.line}\nnot a key\n`);
  assertRefused(
    await ovtp(["seal", "-r", broken, input], { home: alice.home }),
    5,
    /Line 2 of ".*broken\.pub" is not a valid public key/,
  );
});

Deno.test("a name in contacts and authorized_keys with different keys, or also a file, is refused; a prefix is no name", async () => {
  const home = (await person("owner")).home;
  await ovtp(["contacts", "add", "carol", carol.line], { home });
  await ovtp(["add-key", dave.line, "--name", "carol"], { home });
  const input = await file("amb.in", "x");
  const seal = await ovtp(["seal", "-r", "carol", input], { home });
  assertRefused(
    seal,
    7,
    new RegExp(
      `The recipient "carol" is ambiguous: contacts \\(${escape(carol.fp)}\\), ` +
        `authorized_keys line 1 \\(${escape(dave.fp)}\\)`,
    ),
  );
  const out = `${work}/amb.ovtp`;
  await ovtp(["seal", "-r", carol.line, input, "-o", out], { home: alice.home });
  assertRefused(
    await ovtp(["open", out, "--from", "carol"], { home }),
    7,
    /sender "carol" is ambiguous/,
  );
  // The fingerprint picks one; the same key under one name in both is no ambiguity.
  const byFp = await ovtp(["seal", "-r", dave.fp, input, "-o", `${work}/fp.ovtp`], { home });
  assert.equal(byFp.code, 0, byFp.stderr);
  await ovtp(["contacts", "add", "bob", bob.line], { home });
  await ovtp(["add-key", bob.line, "--name", "bob"], { home });
  assert.equal(
    (await ovtp(["seal", "-r", "bob", input, "-o", `${work}/b.ovtp`], { home })).code,
    0,
  );

  const prefix = await ovtp(["seal", "-r", "car", input], { home });
  assertRefused(prefix, 7, /Unknown recipient "car"/);
  assert.match(
    prefix.stderr,
    /hint: names match whole: did you mean carol \(contacts\), carol \(authorized_keys\)\?/,
  );
  // A contact named like a file in the working directory.
  await Deno.writeTextFile(`${work}/bob`, `${carol.line}\n`);
  const both = await ovtp(["seal", "-r", "bob", input], { home, cwd: work });
  assertRefused(
    both,
    7,
    /The recipient "bob" is ambiguous: contacts \(\S+\), authorized_keys line 2 \(\S+\), a file/,
  );
  assert.equal(
    (await ovtp(["seal", "-r", "./bob", input, "-o", "x.ovtp"], { home, cwd: work })).code,
    0,
  );
  // A damaged contacts file is not used to look names up, but a public line needs no lookup.
  await Deno.writeTextFile(`${home}/contacts`, "ovtp1 broken carol\n", { append: true });
  assertRefused(await ovtp(["seal", "-r", "bob", input], { home }), 5, /contacts": line 3: /);
  assert.equal(
    (await ovtp(["seal", "-r", bob.line, input, "-o", `${work}/l.ovtp`], { home })).code,
    0,
  );
});

Deno.test("-i FILE: seal signs and open decrypts with another key file; the home's identity is untouched", async () => {
  const home = alice.home;
  const second = await person("second");
  const keyFile = `${second.home}/id_ovtp`;
  const ownBefore = await Deno.readFile(`${home}/id_ovtp`);
  assert.equal((await ovtp(["contacts", "add", "bob", bob.line], { home })).code, 0);
  const input = await file("i.in", "for the second key");
  const out = `${work}/i.ovtp`;
  const sealed = await ovtp(["seal", "-r", second.line, input, "-o", out], { home: bob.home });
  assert.equal(sealed.code, 0, sealed.stderr);
  assertRefused(await ovtp(["open", out], { home }), 5, /is not sealed for your key/);
  const opened = await ovtp(["open", "-i", keyFile, out], { home });
  assert.equal(opened.code, 0, opened.stderr);
  assert.equal(opened.stdout, "for the second key");
  // The name comes from the home's files: bob is alice's contact.
  assert.equal(opened.stderr, `Sealed by bob (${bob.fp})\n`);

  // seal -i signs with that key, and self is that key.
  const signed = `${work}/signed.ovtp`;
  const bySecond = await ovtp(["seal", "--identity", keyFile, "-r", "self", input, "-o", signed], {
    home,
  });
  assert.equal(bySecond.code, 0, bySecond.stderr);
  const check = await ovtp(["open", "-i", keyFile, signed, "--from", second.fp], { home });
  assert.equal(check.code, 0, check.stderr);
  assert.equal(check.stderr, `Sealed by you (${second.fp})\n`);
  assert.equal((await ovtp(["open", signed], { home })).code, 5);
  const id = await ovtp(["id", "-i", keyFile], { home });
  assert.equal(id.stdout, `${second.line}\n`);

  assert.deepEqual(await Deno.readFile(`${home}/id_ovtp`), ownBefore);
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(second.home))).map((e) => e.name).sort(),
    ["id_ovtp", "id_ovtp.pub"],
  );
  // listen serves as the -i key, with the home's authorized_keys.
  const listener = await startListen(home, ["-i", keyFile]);
  try {
    assert.match(listener.stderr(), new RegExp(`listening on \\S+ as ${escape(second.fp)}`));
  } finally {
    await listener.stop();
  }
  assert.deepEqual(await Deno.readFile(`${home}/id_ovtp`), ownBefore);
  assertRefused(
    await ovtp(["seal", "-i", `${work}/nope`, "-r", "self", input], { home }),
    5,
    /No key file ".*nope"/,
  );
});

Deno.test("completions: bash offers the config's aliases for HOST, read when completing", async () => {
  const home = await tempHome();
  await Deno.writeTextFile(
    `${home}/config`,
    "host backup b2\n  port 4848\nhost *.lan\n  unknown-host accept-new\nhost bastion\n",
  );
  const hosts = await ovtp(["completions", "--hosts"], { home });
  assert.equal(hosts.code, 0, hosts.stderr);
  assert.equal(hosts.stdout, "backup\nb2\nbastion\n");
  const script = await ovtp(["completions", "bash"], { home });
  assert.equal(script.code, 0, script.stderr);
  if (Deno.build.os === "windows") {
    console.log("cli_contacts_test: bash completion is not run on Windows");
    return;
  }
  // `ovtp` on PATH runs this checkout, as an installed binary would.
  const bin = await tempDir();
  const main = new URL("../main.ts", import.meta.url).pathname;
  await Deno.writeTextFile(
    `${bin}/ovtp`,
    `#!/bin/sh\nexec "${Deno.execPath()}" run --quiet -A "${main}" "$@"\n`,
    { mode: 0o755 },
  );
  await Deno.writeTextFile(`${bin}/ovtp.bash`, script.stdout);
  const complete = async (words: string[]) => {
    const run = await new Deno.Command("bash", {
      args: [
        "-c",
        `source ovtp.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); ` +
        `COMP_CWORD=${words.length - 1}; _ovtp; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      cwd: bin,
      env: { PATH: `${bin}:${Deno.env.get("PATH")}`, OVTP_HOME: home, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(run.success, new TextDecoder().decode(run.stderr));
    return new TextDecoder().decode(run.stdout).trim().split("\n");
  };
  assert.deepEqual(await complete(["ovtp", "send", "b"]), ["backup", "b2", "bastion"]);
  assert.deepEqual(await complete(["ovtp", "chat", "ba"]), ["backup", "bastion"]);
  assert.ok((await complete(["ovtp", "known-hosts", "add", "b2"])).includes("b2"));
  // Not where no HOST goes.
  assert.ok(!(await complete(["ovtp", "seal", "b"])).includes("backup"));
  // A config with an error completes no alias, and says nothing on the terminal.
  await Deno.writeTextFile(`${home}/config`, "host backup\n  adress x\n");
  assert.deepEqual(await complete(["ovtp", "send", "b"]), [""]);
  const broken = await ovtp(["completions", "--hosts"], { home });
  assertRefused(broken, 2, /Cannot read ".*config": line 2: Unknown setting "adress"/);
});

Deno.test("known-hosts add and remove take a config alias with its port, as connecting does", async () => {
  const pair = await makePair();
  const listener = await startListen(pair.server.home);
  try {
    const home = pair.client.home;
    await Deno.writeTextFile(
      `${home}/config`,
      `host backup\n  address 127.0.0.1\n  port ${listener.port}\n`,
    );
    const fp = (await ovtp(["id", "--fingerprint"], { home: pair.server.home })).stdout.trim();
    const added = await ovtp(["known-hosts", "add", "backup", fp], { home });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stderr, new RegExp(`host backup:${listener.port} recorded`));
    // --strict: the entry just added is the one the alias's connection finds.
    const sent = await ovtp(["send", "--strict", "backup", "via alias"], { home });
    assert.equal(sent.code, 0, sent.stderr);
    const removed = await ovtp(["known-hosts", "remove", "backup"], { home });
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await readOrEmpty(`${home}/known_hosts`), "");
    const refused = await ovtp(["send", "--strict", "backup", "x"], { home });
    assertRefused(refused, 4, new RegExp(`Unknown host backup:${listener.port} .*--strict`));
  } finally {
    await listener.stop();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
