import assert from "node:assert/strict";
import {
  decodeKeyFile,
  DEFAULT_ARGON2ID,
  encodeKeyFile,
  isSealedKeyFile,
  WrongPassphraseError,
} from "../lib/identity/key_file.ts";
import { generateIdentity, type Identity, identityFromPrivateKeys } from "../lib/identity/keys.ts";
import { hex } from "./_vectors.ts";

// Cheap Argon2id parameters: the tests check the format, not the cost.
const FAST = { memory: 1024, passes: 1, parallelism: 1 };

const X25519_PRIVATE = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const ED25519_SEED = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");

/** A passphrase callback that records how often it was asked. */
function passphrase(value: string) {
  const ask = () => {
    ask.calls++;
    return Promise.resolve(value);
  };
  ask.calls = 0;
  return ask;
}

function assertSameIdentity(actual: Identity, expected: Identity): void {
  assert.deepEqual(actual.x25519Private, expected.x25519Private);
  assert.deepEqual(actual.ed25519Private, expected.ed25519Private);
  assert.deepEqual(actual.publicKey.x25519, expected.publicKey.x25519);
  assert.deepEqual(actual.publicKey.ed25519, expected.publicKey.ed25519);
}

function base64Url(bytes: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...bytes));
  return base64.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function fromBase64Url(text: string): Uint8Array {
  return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
}

/** Replaces field `index` of a sealed file's single line. */
function withField(text: string, index: number, value: string): string {
  const fields = text.trim().split(" ");
  fields[index] = value;
  return `${fields.join(" ")}\n`;
}

async function rejectsSyntax(text: string, message: string): Promise<void> {
  const ask = passphrase("secret");
  await assert.rejects(decodeKeyFile(text, ask), (error: unknown) => {
    assert.ok(error instanceof SyntaxError, `expected SyntaxError, got ${error}`);
    assert.equal(error.message, message);
    return true;
  });
  // A malformed file is refused before anyone is asked for a passphrase.
  assert.equal(ask.calls, 0);
}

async function rejectsWrongPassphrase(text: string, value = "secret"): Promise<void> {
  await assert.rejects(decodeKeyFile(text, passphrase(value)), (error: unknown) => {
    assert.ok(error instanceof WrongPassphraseError, `expected WrongPassphraseError, got ${error}`);
    assert.equal(error.name, "WrongPassphraseError");
    assert.equal(error.message, "Wrong passphrase");
    return true;
  });
}

Deno.test("encodeKeyFile() writes a plain file as one ovtp1-private line of the 64 key bytes", async () => {
  const identity = await identityFromPrivateKeys(X25519_PRIVATE, ED25519_SEED);
  const text = await encodeKeyFile(identity);
  const expected = base64Url(new Uint8Array([...X25519_PRIVATE, ...ED25519_SEED]));
  assert.equal(text, `ovtp1-private ${expected}\n`);
  assert.equal(isSealedKeyFile(text), false);
});

Deno.test("decodeKeyFile() round-trips a plain file without asking for a passphrase", async () => {
  const identity = await generateIdentity();
  const ask = passphrase("unused");
  assertSameIdentity(await decodeKeyFile(await encodeKeyFile(identity), ask), identity);
  assert.equal(ask.calls, 0);
});

Deno.test("decodeKeyFile() accepts a plain file with surrounding whitespace and CRLF", async () => {
  const identity = await generateIdentity();
  const text = (await encodeKeyFile(identity)).replace("\n", "\r\n");
  assertSameIdentity(await decodeKeyFile(`\n  ${text}`, passphrase("")), identity);
});

Deno.test("encodeKeyFile() seals with Argon2id parameters, a 16-byte salt and 80 sealed bytes", async () => {
  const identity = await generateIdentity();
  const text = await encodeKeyFile(identity, "secret", FAST);
  assert.match(
    text,
    /^ovtp1-private-argon2id m=1024,t=1,p=1 [A-Za-z0-9_-]{22} [A-Za-z0-9_-]{107}\n$/,
  );
  assert.equal(isSealedKeyFile(text), true);
  assert.equal(isSealedKeyFile(`  ${text}`), true);
  const plainKeys = base64Url(
    new Uint8Array([...identity.x25519Private, ...identity.ed25519Private]),
  );
  assert.ok(!text.includes(plainKeys.slice(0, 20)));
});

Deno.test("decodeKeyFile() round-trips a sealed file, asking for the passphrase once", async () => {
  const identity = await generateIdentity();
  const text = await encodeKeyFile(identity, "correct horse battery staple", FAST);
  const ask = passphrase("correct horse battery staple");
  assertSameIdentity(await decodeKeyFile(text, ask), identity);
  assert.equal(ask.calls, 1);
});

Deno.test("encodeKeyFile() uses a fresh salt, so two seals of one key differ", async () => {
  const identity = await generateIdentity();
  const a = await encodeKeyFile(identity, "secret", FAST);
  const b = await encodeKeyFile(identity, "secret", FAST);
  assert.notEqual(a.split(" ")[2], b.split(" ")[2]);
  assert.notEqual(a.split(" ")[3], b.split(" ")[3]);
});

Deno.test("encodeKeyFile() defaults to Argon2id with 64 MiB and 3 passes", () => {
  assert.deepEqual(DEFAULT_ARGON2ID, { memory: 65536, passes: 3, parallelism: 1 });
});

Deno.test("decodeKeyFile() refuses a wrong passphrase with WrongPassphraseError", async () => {
  const text = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  await rejectsWrongPassphrase(text, "Secret");
  await rejectsWrongPassphrase(text, "");
  await rejectsWrongPassphrase(text, "secret ");
});

Deno.test("decodeKeyFile() refuses a header whose text changed even when the derived key is the same", async () => {
  // m=01024 parses to the same 1024 KiB, so Argon2id gives the same key: only
  // the header being the associated data makes this fail.
  const text = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  await rejectsWrongPassphrase(withField(text, 1, "m=01024,t=1,p=1"));
  await rejectsWrongPassphrase(withField(text, 1, "m=1024,t=01,p=1"));
});

Deno.test("decodeKeyFile() refuses changed Argon2id parameters, salt or sealed bytes", async () => {
  const text = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  await rejectsWrongPassphrase(withField(text, 1, "m=2048,t=1,p=1"));
  await rejectsWrongPassphrase(withField(text, 1, "m=1024,t=2,p=1"));
  await rejectsWrongPassphrase(withField(text, 1, "m=1024,t=1,p=2"));
  const [, , salt, sealed] = text.trim().split(" ");
  const flipFirst = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
  await rejectsWrongPassphrase(withField(text, 2, flipFirst(salt)));
  await rejectsWrongPassphrase(withField(text, 3, flipFirst(sealed)));
  // Cut to 64 bytes (canonically re-encoded): the tag is missing.
  await rejectsWrongPassphrase(
    withField(text, 3, base64Url(fromBase64Url(sealed).subarray(0, 64))),
  );
});

Deno.test("decodeKeyFile() refuses malformed files with SyntaxError", async () => {
  const identity = await generateIdentity();
  const plain = (await encodeKeyFile(identity)).trim();
  const sealed = (await encodeKeyFile(identity, "secret", FAST)).trim();
  const fields = 'Expected "ovtp1-private" or "ovtp1-private-argon2id" with its fields';
  await rejectsSyntax("", fields);
  await rejectsSyntax("ovtp1-private", fields);
  await rejectsSyntax(`${plain} extra`, fields);
  await rejectsSyntax(plain.replace("ovtp1-private", "ovtp2-private"), fields);
  await rejectsSyntax(sealed.split(" ").slice(0, 3).join(" "), fields);
  await rejectsSyntax(`${sealed} extra`, fields);
  await rejectsSyntax(sealed.replace("ovtp1-private-argon2id", "ovtp1-private"), fields);
  await rejectsSyntax(`${plain}\n${plain}`, fields);
  await rejectsSyntax("ovtp1-private abc$", "The key is not valid base64url");
  await rejectsSyntax("ovtp1-private abc=", "The key is not valid base64url");
  await rejectsSyntax(
    withField(sealed, 2, "salt!salt"),
    "The salt is not valid base64url",
  );
  await rejectsSyntax(
    withField(sealed, 3, "A"),
    "The sealed key is not valid base64url",
  );
});

Deno.test("decodeKeyFile() refuses a plain file whose key is not 64 bytes", async () => {
  const b64 = (n: number) => base64Url(new Uint8Array(n).fill(7));
  await rejectsSyntax(`ovtp1-private ${b64(63)}`, "The private keys have 63 bytes, not 64");
  await rejectsSyntax(`ovtp1-private ${b64(65)}`, "The private keys have 65 bytes, not 64");
});

Deno.test("decodeKeyFile() refuses unparsable Argon2id parameters with SyntaxError", async () => {
  const sealed = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  for (
    const params of [
      "m=1024,t=1",
      "t=1,m=1024,p=1",
      "m=1024,t=1,p=1,",
      "m=-1,t=1,p=1",
      "m=1e3,t=1,p=1",
      "m=123456789,t=1,p=1", // nine digits
      "m=1024,t=1000,p=1",
      "m=1024,t=1,p=100",
    ]
  ) {
    await rejectsSyntax(withField(sealed, 1, params), `Invalid Argon2id parameters "${params}"`);
  }
});

Deno.test("decodeKeyFile() refuses out-of-range Argon2id parameters with SyntaxError", async () => {
  const sealed = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  for (
    const params of [
      "m=7,t=1,p=1", // below 8 KiB per lane
      "m=15,t=1,p=2",
      "m=4194305,t=1,p=1", // above 4 GiB
      "m=1024,t=0,p=1",
      "m=1024,t=65,p=1",
      "m=1024,t=1,p=0",
    ]
  ) {
    await rejectsSyntax(
      withField(sealed, 1, params),
      `Argon2id parameters out of range "${params}"`,
    );
  }
});

Deno.test("decodeKeyFile() accepts the Argon2id parameter bounds", async () => {
  // m=8·p and t=64 are in range; with a wrong header text they end as a wrong
  // passphrase, which shows they got past the range check.
  const sealed = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  await rejectsWrongPassphrase(withField(sealed, 1, "m=8,t=1,p=1"));
  await rejectsWrongPassphrase(withField(sealed, 1, "m=16,t=1,p=2"));
});
