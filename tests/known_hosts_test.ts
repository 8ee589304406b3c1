import assert from "node:assert/strict";
import { formatKnownHost, parseKnownHosts } from "../lib/trust/known_hosts.ts";
import { formatPublicKey, generateIdentity, type PublicKey } from "../lib/identity/keys.ts";

const [SERVER_A, SERVER_B] = (await Promise.all([generateIdentity(), generateIdentity()]))
  .map((identity) => identity.publicKey);

function base64Url(bytes: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...bytes));
  return base64.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function assertSameKey(actual: PublicKey, expected: PublicKey): void {
  assert.deepEqual(actual.x25519, expected.x25519);
  assert.deepEqual(actual.ed25519, expected.ed25519);
}

Deno.test("parseKnownHosts() skips comments and blank lines and keeps line numbers", () => {
  const text = [
    "# hosts this client has accepted", // 1
    formatKnownHost("example.org:7022", SERVER_A), // 2
    "", // 3
    "   # indented comment", // 4
    `  ${formatKnownHost("[::1]:7022", SERVER_B)}  `, // 5
    "", // 6
  ].join("\n");
  const { entries, errors } = parseKnownHosts(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(entries.map((e) => [e.line, e.host]), [[2, "example.org:7022"], [
    5,
    "[::1]:7022",
  ]]);
  assertSameKey(entries[0].key!, SERVER_A);
  assertSameKey(entries[1].key!, SERVER_B);
});

Deno.test("parseKnownHosts() reports malformed lines with their numbers and keeps the valid ones", () => {
  const good = formatKnownHost("a.example:7022", SERVER_A);
  const encoded = formatPublicKey(SERVER_B).split(" ")[1];
  const text = [
    "lonely-host:7022", // 1
    good, // 2
    "b.example:7022 ovtp1", // 3
    `c.example:7022 ovtp9 ${encoded}`, // 4
    `d.example:7022 ovtp1 ${encoded}==`, // 5
    `e.example:7022 ${formatPublicKey(SERVER_B)} note\x07`, // 6
    `f.example:7022 ovtp1 ${base64Url(SERVER_B.x25519)}`, // 7: 32 bytes
    formatKnownHost("g.example:7022", SERVER_B), // 8
  ].join("\n");
  const { entries, errors } = parseKnownHosts(text);
  assert.deepEqual(entries.map((e) => [e.line, e.host]), [[2, "a.example:7022"], [
    8,
    "g.example:7022",
  ]]);
  assertSameKey(entries[1].key!, SERVER_B);
  assert.deepEqual(errors, [
    { line: 1, message: "Expected a host and a key" },
    { line: 3, message: 'The key is missing after "ovtp1"' },
    { line: 4, message: 'Expected a key starting with "ovtp1", found "ovtp9"' },
    { line: 5, message: "The key is not valid base64url" },
    { line: 6, message: "The comment contains control characters" },
    { line: 7, message: "The key has 32 bytes; an ovtp1 key has 64" },
  ]);
});

Deno.test("parseKnownHosts() accepts tabs, extra spaces and CRLF line endings", () => {
  const key = formatPublicKey(SERVER_A);
  const text = `h1:1\t${key}\r\nh2:2    ${key}\r\n`;
  const { entries, errors } = parseKnownHosts(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(entries.map((e) => [e.line, e.host]), [[1, "h1:1"], [2, "h2:2"]]);
});

Deno.test("parseKnownHosts() of an empty file has no entries and no errors", () => {
  assert.deepEqual(parseKnownHosts(""), { entries: [], errors: [] });
  assert.deepEqual(parseKnownHosts("# only a comment\n\n"), { entries: [], errors: [] });
});

Deno.test("parseKnownHosts() keeps every line for a host listed twice, in file order", () => {
  const text = [formatKnownHost("h:1", SERVER_A), formatKnownHost("h:1", SERVER_B)].join("\n");
  const { entries } = parseKnownHosts(text);
  assert.deepEqual(entries.map((e) => [e.line, e.host]), [[1, "h:1"], [2, "h:1"]]);
  assertSameKey(entries[0].key!, SERVER_A);
  assertSameKey(entries[1].key!, SERVER_B);
});

Deno.test("formatKnownHost() writes host, a space and the key line without a comment", () => {
  assert.equal(
    formatKnownHost("example.org:7022", SERVER_A),
    `example.org:7022 ${formatPublicKey(SERVER_A)}`,
  );
  const { entries } = parseKnownHosts(formatKnownHost("example.org:7022", SERVER_A));
  assertSameKey(entries[0].key!, SERVER_A);
});
