import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { fingerprint, formatPublicKey, Keystore, type PublicKey } from "../mod.ts";
import { assertOneError, CLI_ENV, MAIN, ovtp, type RunResult, tempHome } from "./_cli.ts";

// Windows has no file modes: an opened file gets the default permissions.
const MODES = Deno.build.os !== "windows";
if (!MODES) {
  console.log("cli_seal_test: Windows has no file modes: the 0600 of open -o is not checked");
}

// Homes are made in-process (the same files `ovtp keygen` and `add-key`
// write), so that the tests spend their time in seal and open.
interface Person {
  home: string;
  line: string;
  key: PublicKey;
  fp: string;
}

async function person(comment: string): Promise<Person> {
  const home = await tempHome();
  const { identity, line } = await new Keystore(home).createIdentity({ comment });
  return { home, line, key: identity.publicKey, fp: await fingerprint(identity.publicKey) };
}

const [alice, bob, carol, outsider] = await Promise.all(
  ["alice", "bob", "carol", "outsider"].map(person),
);
// Alice knows bob and carol by name; bob knows alice; carol knows nobody.
await new Keystore(alice.home).addAuthorizedKey(bob.key, "bob");
await new Keystore(alice.home).addAuthorizedKey(carol.key, "carol");
await new Keystore(bob.home).addAuthorizedKey(alice.key, "alice");

const work = await tempDir({ prefix: "ovtp-seal-test-" });
const CHUNK = 64 * 1024;
const FULL_CHUNK = CHUNK + 16;
/** The header of a file for `n` recipients: prefix, stanzas, commitment, signature. */
const header = (n: number) => 86 + 144 * n + 32 + 64;

function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function file(name: string, content: Uint8Array | string): Promise<string> {
  const path = `${work}/${name}`;
  if (typeof content === "string") await Deno.writeTextFile(path, content);
  else await Deno.writeFile(path, content);
  return path;
}

/** Seals `content` from alice for bob (and `more`), into a file. */
async function sealed(name: string, content: Uint8Array, more: string[] = []): Promise<string> {
  const input = await file(`${name}.in`, content);
  const out = `${work}/${name}.ovtp`;
  const result = await ovtp(["seal", "-r", "bob", ...more, input, "-o", out], {
    home: alice.home,
  });
  assert.equal(result.code, 0, result.stderr);
  return out;
}

async function flipped(path: string, at: number): Promise<string> {
  const copy = await Deno.readFile(path);
  copy[at] ^= 0x01;
  return await file(`${path.split("/").pop()}.flip${at}`, copy);
}

function assertRefused(result: RunResult, code: number, pattern: RegExp) {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  assertOneError(result, pattern);
}

Deno.test("seal and open round-trip 0, 1, 65536, 65537 bytes and 3 MiB, by files and pipes", async () => {
  for (const size of [0, 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024]) {
    const content = bytes(size, size + 1);
    const path = await sealed(`size${size}`, content);
    const out = `${work}/size${size}.out`;
    const opened = await ovtp(["open", path, "-o", out], { home: bob.home });
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(await Deno.readFile(out), content, `${size}`);
    if (MODES) assert.equal((await Deno.stat(out)).mode! & 0o777, 0o600);
  }
  // stdin to stdout, both ways, binary.
  const content = bytes(CHUNK + 10);
  const piped = await binary(["seal", "-r", "bob"], alice.home, content);
  assert.equal(piped.code, 0);
  assert.equal(piped.stdout.length, header(1) + content.length + 2 * 16 + 72);
  const back = await binary(["open"], bob.home, piped.stdout);
  assert.equal(back.code, 0);
  assert.deepEqual(back.stdout, content);
});

/** Runs the CLI with binary stdin and stdout. */
async function binary(args: string[], home: string, stdin: Uint8Array) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, ...args],
    env: { ...CLI_ENV, OVTP_HOME: home, HOME: `${home}.user` },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(stdin);
  await writer.close();
  const { code, stdout } = await child.output();
  return { code, stdout };
}

Deno.test("open prints who sealed it: the name if known, the fingerprint always", async () => {
  const path = await sealed("who", new TextEncoder().encode("who?"), ["-r", "carol", "-r", "self"]);
  const byBob = await ovtp(["open", path], { home: bob.home });
  assert.equal(byBob.code, 0, byBob.stderr);
  assert.equal(byBob.stderr, `Sealed by alice (${alice.fp})\n`);
  const byCarol = await ovtp(["open", path], { home: carol.home });
  assert.equal(byCarol.stderr, `Sealed by ${alice.fp} (not in contacts or authorized_keys)\n`);
  const byAlice = await ovtp(["open", path], { home: alice.home });
  assert.equal(byAlice.stderr, `Sealed by you (${alice.fp})\n`);
  assert.equal(byAlice.stdout, "who?");
});

Deno.test("recipients by public line, by key file, by fingerprint and self", async () => {
  const carolFile = await file("carol.pub", `# carol's key\n${carol.line}\n`);
  const input = await file("by.in", "four ways");
  const out = `${work}/by.ovtp`;
  const result = await ovtp([
    "seal",
    "-r",
    outsider.line,
    "-r",
    carolFile,
    "-r",
    bob.fp,
    "-r",
    "self",
    input,
    "-o",
    out,
  ], { home: alice.home });
  assert.equal(result.code, 0, result.stderr);
  for (const reader of [outsider, carol, bob, alice]) {
    const opened = await ovtp(["open", out], { home: reader.home });
    assert.equal(opened.stdout, "four ways", opened.stderr);
  }
});

Deno.test("a file sealed for twenty recipients opens for them", async () => {
  const twenty = await Promise.all(Array.from({ length: 20 }, (_, i) => person(`p${i}`)));
  const args = twenty.flatMap((p) => ["-r", p.line]);
  const input = await file("twenty.in", bytes(70_000));
  const out = `${work}/twenty.ovtp`;
  const result = await ovtp(["seal", ...args, input, "-o", out], { home: alice.home });
  assert.equal(result.code, 0, result.stderr);
  const info = await ovtp(["open", "--info", out], { home: alice.home });
  assert.equal(info.stdout.match(/SHA256:/g)!.length, 21);
  for (const reader of [twenty[0], twenty[9], twenty[19]]) {
    const plain = `${out}.${reader.fp.slice(7, 12).replace(/\W/g, "_")}`;
    const opened = await ovtp(["open", out, "-o", plain], { home: reader.home });
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(await Deno.readFile(plain), bytes(70_000));
  }
});

Deno.test("--armor writes text that opens from a file or from stdin", async () => {
  const input = await file("armor.in", bytes(CHUNK + 3));
  const result = await ovtp(["seal", "-r", "bob", "--armor", input], { home: alice.home });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^-----BEGIN OVTP SEALED FILE-----\n([A-Za-z0-9+/]{64}\n)+/);
  assert.match(result.stdout, /\n-----END OVTP SEALED FILE-----\n$/);
  const path = await file("armor.asc", result.stdout);
  const out = `${work}/armor.out`;
  const opened = await ovtp(["open", path, "-o", out], { home: bob.home });
  assert.equal(opened.code, 0, opened.stderr);
  assert.deepEqual(await Deno.readFile(out), bytes(CHUNK + 3));
  const piped = await ovtp(["open"], { home: bob.home, stdin: "\n" + result.stdout });
  assert.equal(piped.code, 0, piped.stderr);
});

Deno.test("open --info shows the sender and the recipients without a key", async () => {
  const path = await sealed("info", bytes(5), ["-r", "carol"]);
  const info = await ovtp(["open", "--info", path], { home: await tempHome() });
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /ovtp sealed v1, binary/);
  assert.ok(info.stdout.includes(`Sealed by:  ${alice.fp}`));
  assert.ok(info.stdout.includes(bob.fp) && info.stdout.includes(carol.fp));
  const named = await ovtp(["open", "--info", path], { home: alice.home });
  assert.ok(named.stdout.includes(`bob (${bob.fp})`));
});

Deno.test("a key that is not a recipient is refused (exit 5)", async () => {
  const path = await sealed("notme", bytes(5));
  const result = await ovtp(["open", path], { home: carol.home });
  assertRefused(result, 5, /is not sealed for your key \(SHA256:/);
});

Deno.test("--from refuses a file from another sender (exit 4) and accepts the right one", async () => {
  const path = await sealed("from", bytes(5));
  const wrong = await ovtp(["open", path, "--from", carol.fp], { home: bob.home });
  assertRefused(wrong, 4, /was sealed by alice \(SHA256:.*\), not by "SHA256:/);
  assert.ok(wrong.stderr.includes(`not by "${carol.fp}"`));
  const self = await ovtp(["open", path, "--from", "self"], { home: bob.home });
  assertRefused(self, 4, /not by "self"/);
  const right = await ovtp(["open", path, "--from", "alice"], { home: bob.home });
  assert.equal(right.code, 0, right.stderr);
  const unknown = await ovtp(["open", path, "--from", "mallory"], { home: bob.home });
  assertRefused(unknown, 7, /Unknown sender "mallory": not a public line, a contact/);
});

Deno.test("a flipped byte in the header is refused", async () => {
  const path = await sealed("hdr", bytes(100));
  const result = await ovtp(["open", await flipped(path, 4 + 64 + 2)], { home: bob.home });
  assertRefused(result, 3, /The header signature of ".*" is not valid/);
});

Deno.test("a flipped byte in a wrapped key is refused (the header signature covers it)", async () => {
  const path = await sealed("wrap", bytes(100));
  const result = await ovtp(["open", await flipped(path, 86 + 64 + 32 + 5)], { home: bob.home });
  assertRefused(result, 3, /The header signature of ".*" is not valid/);
});

Deno.test("a flipped byte in a chunk is refused, naming the chunk", async () => {
  const path = await sealed("chunk", bytes(3 * CHUNK));
  const at = header(1) + FULL_CHUNK + 100;
  const result = await ovtp(["open", await flipped(path, at)], { home: bob.home });
  assert.equal(result.code, 3);
  assertOneError(result, /Chunk 1 of ".*" fails authentication/);
  assert.match(
    result.stderr,
    /hint: the 65536 bytes already written to stdout cannot be taken back/,
  );
});

Deno.test("a flipped byte in either signature is refused", async () => {
  const path = await sealed("sig", bytes(100));
  const inHeader = await ovtp(["open", await flipped(path, header(1) - 5)], { home: bob.home });
  assertRefused(inHeader, 3, /The header signature of ".*" is not valid/);
  const size = (await Deno.stat(path)).size;
  const atEnd = await ovtp(["open", await flipped(path, size - 5)], { home: bob.home });
  assertRefused(atEnd, 3, /The payload signature of ".*" is not valid: .* not sealed by alice/);
});

Deno.test("a truncated file is refused", async () => {
  const path = await sealed("cut", bytes(2 * CHUNK + 10));
  const content = await Deno.readFile(path);
  for (const length of [60, header(1) + FULL_CHUNK, content.length - 30]) {
    const cut = await file(`cut${length}.ovtp`, content.subarray(0, length));
    const result = await ovtp(["open", cut], { home: bob.home });
    assert.equal(result.code, 3, result.stderr);
    assertOneError(result, /is truncated/);
  }
});

Deno.test("data after the end is refused", async () => {
  const path = await sealed("tail", bytes(100));
  const content = await Deno.readFile(path);
  const longer = await file("tail2.ovtp", new Uint8Array([...content, 0, 1, 2]));
  assertRefused(await ovtp(["open", longer], { home: bob.home }), 3, /has data after its end/);
});

Deno.test("two chunks swapped are refused", async () => {
  const path = await sealed("swap", bytes(3 * CHUNK + 10));
  const content = await Deno.readFile(path);
  const first = content.slice(header(1), header(1) + FULL_CHUNK);
  content.copyWithin(header(1), header(1) + FULL_CHUNK, header(1) + 2 * FULL_CHUNK);
  content.set(first, header(1) + FULL_CHUNK);
  const result = await ovtp(["open", await file("swapped.ovtp", content)], { home: bob.home });
  assertRefused(result, 3, /Chunk 0 of ".*" fails authentication/);
});

Deno.test("a chunk spliced in from another sealed file is refused", async () => {
  const one = await Deno.readFile(await sealed("spliceA", bytes(3 * CHUNK)));
  const other = await Deno.readFile(await sealed("spliceB", bytes(3 * CHUNK)));
  const at = header(1) + FULL_CHUNK;
  one.set(other.subarray(at, at + FULL_CHUNK), at);
  const result = await ovtp(["open", await file("spliced.ovtp", one)], { home: bob.home });
  assert.equal(result.code, 3);
  assertOneError(result, /Chunk 1 of ".*" fails authentication/);
});

Deno.test("armor with a damaged line is refused with the line number", async () => {
  const input = await file("darmor.in", bytes(1000));
  const armored = (await ovtp(["seal", "-r", "bob", "-a", input], { home: alice.home })).stdout;
  const lines = armored.split("\n");
  lines[4] = lines[4].slice(0, 20) + "!" + lines[4].slice(21);
  const bad = await file("damaged.asc", lines.join("\n"));
  const result = await ovtp(["open", bad], { home: bob.home });
  assertRefused(result, 3, /The armor of ".*" is damaged at line 5: a character outside base64/);
  lines[4] = lines[4].slice(0, 40);
  const short = await file("short.asc", lines.join("\n"));
  assertRefused(await ovtp(["open", short], { home: bob.home }), 3, /damaged at line 5/);
});

Deno.test("a failure after the first chunks leaves no output file, and an old one untouched", async () => {
  const path = await sealed("partial", bytes(3 * 1024 * 1024));
  const damaged = await flipped(path, header(1) + 40 * FULL_CHUNK + 7);
  const dir = `${work}/partial-out`;
  await Deno.mkdir(dir);
  const fresh = await ovtp(["open", damaged, "-o", `${dir}/plain`], { home: bob.home });
  assert.equal(fresh.code, 3);
  assertOneError(fresh, /Chunk 40 of ".*" fails authentication/);
  assert.match(fresh.stderr, /hint: nothing was written to ".*plain"/);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  await Deno.writeTextFile(`${dir}/plain`, "previous content");
  // --force: the old file would be replaced, but only by a file that verified.
  const again = await ovtp(["open", damaged, "-o", `${dir}/plain`, "--force"], {
    home: bob.home,
  });
  assert.equal(again.code, 3);
  assert.equal(await Deno.readTextFile(`${dir}/plain`), "previous content");
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["plain"]);
});

Deno.test("seal -o and open -o never replace a file without --force, the input itself included", async () => {
  // Invariant: an existing file at OUT is replaced only when the user said
  // --force. `seal -r bob -o notes.txt notes.txt` used to replace the only
  // plaintext with a file that only bob can open.
  const input = await file("keep.txt", "the only copy");
  assertRefused(
    await ovtp(["seal", "-r", "bob", input, "-o", input], { home: alice.home }),
    6,
    /Cannot write ".*keep\.txt": it already exists/,
  );
  assert.equal(await Deno.readTextFile(input), "the only copy");
  const out = await file("sealed-before.ovtp", "an older file");
  assertRefused(
    await ovtp(["seal", "-r", "bob", input, "-o", out], { home: alice.home }),
    6,
    /it already exists/,
  );
  assert.equal(await Deno.readTextFile(out), "an older file");
  const forced = await ovtp(["seal", "-r", "bob", input, "-o", out, "--force"], {
    home: alice.home,
  });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, "");
  const plain = await file("opened-before.txt", "an older plaintext");
  assertRefused(await ovtp(["open", out, "-o", plain], { home: bob.home }), 6, /already exists/);
  assert.equal(await Deno.readTextFile(plain), "an older plaintext");
  const opened = await ovtp(["open", out, "-o", plain, "--force"], { home: bob.home });
  assert.equal(opened.code, 0, opened.stderr);
  assert.equal(await Deno.readTextFile(plain), "the only copy");
  assertRefused(
    await ovtp(["seal", "-r", "bob", input, "--force"], { home: alice.home }),
    2,
    /--force applies to -o OUT/,
  );
});

Deno.test("seal refuses missing or unknown recipients and open refuses bad flag mixes", async () => {
  const input = await file("usage.in", "x");
  assertRefused(await ovtp(["seal", input], { home: alice.home }), 2, /at least one recipient/);
  assertRefused(
    await ovtp(["seal", "-r", "nobody", input], { home: alice.home }),
    7,
    /Unknown recipient "nobody"/,
  );
  assertRefused(
    await ovtp(["seal", "-r", "ovtp1 AAAA", input], { home: alice.home }),
    5,
    /The recipient is not a valid public key/,
  );
  assertRefused(
    await ovtp(["open", "--info", input, "-o", "x"], { home: alice.home }),
    2,
    /--info decrypts nothing/,
  );
  const notSealed = await ovtp(["open", input], { home: bob.home });
  assertRefused(notSealed, 3, /is not an ovtp sealed file/);
  assert.ok(formatPublicKey(alice.key).startsWith("ovtp1 "));
});
