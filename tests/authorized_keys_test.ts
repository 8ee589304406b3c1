import assert from "node:assert/strict";
import {
  defaultKeyName,
  formatAuthorizedKey,
  parseAuthorizedKeys,
} from "../lib/trust/authorized_keys.ts";
import {
  fingerprint,
  formatPublicKey,
  generateIdentity,
  type PublicKey,
} from "../lib/identity/keys.ts";

const [ALICE, BOB, CAROL] =
  (await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()]))
    .map((identity) => identity.publicKey);

function assertSameKey(actual: PublicKey, expected: PublicKey): void {
  assert.deepEqual(actual.x25519, expected.x25519);
  assert.deepEqual(actual.ed25519, expected.ed25519);
}

Deno.test("parseAuthorizedKeys() skips comments and blank lines and keeps line numbers", () => {
  const text = [
    "# clients allowed to connect", // 1
    "", // 2
    formatPublicKey(ALICE, "alice@laptop"), // 3
    "   ", // 4
    "  # an indented comment", // 5
    `  ${formatPublicKey(BOB, "bob")}  `, // 6
    "\t", // 7
    formatPublicKey(CAROL), // 8
    "", // 9 (trailing newline)
  ].join("\n");
  const { entries, errors } = parseAuthorizedKeys(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(entries.map((e) => [e.line, e.name]), [[3, "alice@laptop"], [6, "bob"], [
    8,
    "",
  ]]);
  assertSameKey(entries[0].key, ALICE);
  assertSameKey(entries[1].key, BOB);
  assertSameKey(entries[2].key, CAROL);
});

Deno.test("parseAuthorizedKeys() reports malformed lines with their numbers and keeps the valid ones", () => {
  const alice = formatPublicKey(ALICE, "alice");
  const encoded = alice.split(" ")[1];
  const text = [
    alice, // 1
    `ssh-ed25519 ${encoded} old`, // 2
    "ovtp1", // 3
    `ovtp1 ${encoded.slice(0, 85)}!`, // 4
    `ovtp1 ${encoded.slice(0, 84)}`, // 5: 63 bytes
    `${formatPublicKey(BOB)} bad\x1bcomment`, // 6
    "# fine", // 7
    formatPublicKey(CAROL, "carol"), // 8
  ].join("\n");
  const { entries, errors } = parseAuthorizedKeys(text);
  assert.deepEqual(entries.map((e) => [e.line, e.name]), [[1, "alice"], [8, "carol"]]);
  assertSameKey(entries[1].key, CAROL);
  assert.deepEqual(errors, [
    { line: 2, message: 'Expected a key starting with "ovtp1", found "ssh-ed25519"' },
    { line: 3, message: 'The key is missing after "ovtp1"' },
    { line: 4, message: "The key is not valid base64url" },
    { line: 5, message: "The key has 63 bytes; an ovtp1 key has 64" },
    { line: 6, message: "The comment contains control characters" },
  ]);
});

Deno.test("parseAuthorizedKeys() accepts CRLF line endings", () => {
  const text = `# keys\r\n${formatPublicKey(ALICE, "alice")}\r\n\r\n${
    formatPublicKey(BOB, "bob")
  }\r\n`;
  const { entries, errors } = parseAuthorizedKeys(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(entries.map((e) => [e.line, e.name]), [[2, "alice"], [4, "bob"]]);
});

Deno.test("parseAuthorizedKeys() of an empty file has no entries and no errors", () => {
  assert.deepEqual(parseAuthorizedKeys(""), { entries: [], errors: [] });
  assert.deepEqual(parseAuthorizedKeys("\n\n# nothing\n"), { entries: [], errors: [] });
});

Deno.test("parseAuthorizedKeys() keeps a name with spaces and a key listed twice", () => {
  const text = [
    formatAuthorizedKey(ALICE, "Alice's build box"),
    formatAuthorizedKey(ALICE, "again"),
  ]
    .join("\n");
  const { entries } = parseAuthorizedKeys(text);
  assert.deepEqual(entries.map((e) => [e.line, e.name]), [[1, "Alice's build box"], [2, "again"]]);
});

Deno.test("formatAuthorizedKey() writes a line that parseAuthorizedKeys() reads back", () => {
  const line = formatAuthorizedKey(BOB, "bob@desk");
  assert.equal(line, formatPublicKey(BOB, "bob@desk"));
  const { entries } = parseAuthorizedKeys(line);
  assertSameKey(entries[0].key, BOB);
  assert.equal(entries[0].name, "bob@desk");
});

Deno.test("defaultKeyName() is key- and the first 8 characters of the fingerprint", async () => {
  const fp = await fingerprint(ALICE);
  const name = await defaultKeyName(ALICE);
  assert.equal(name, `key-${fp.slice(7, 15)}`);
  assert.match(name, /^key-[A-Za-z0-9+/]{8}$/);
});
