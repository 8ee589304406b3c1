import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  fingerprint,
  formatPublicKey,
  generateIdentity,
  hasControlCharacters,
  identityFromPrivateKeys,
  parsePublicKey,
  type PublicKey,
  publicKeyBytes,
  publicKeyFromBytes,
  samePublicKey,
} from "../lib/identity/keys.ts";
import { hex } from "./_vectors.ts";

// RFC 7748 section 6.1 (Alice) and RFC 8032 section 7.1 (TEST 1).
const X25519_PRIVATE = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const X25519_PUBLIC = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
const ED25519_SEED = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const ED25519_PUBLIC = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");

const KNOWN_KEY: PublicKey = { x25519: X25519_PUBLIC, ed25519: ED25519_PUBLIC };

/** Unpadded base64url, written here independently of lib/bytes.ts. */
function keyText(bytes: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...bytes));
  return base64.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function assertSyntaxError(line: string, message: string): void {
  assert.throws(() => parsePublicKey(line), (error: unknown) => {
    assert.ok(error instanceof SyntaxError, `expected SyntaxError for ${JSON.stringify(line)}`);
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("identityFromPrivateKeys() derives the RFC 7748 and RFC 8032 public keys", async () => {
  const identity = await identityFromPrivateKeys(X25519_PRIVATE, ED25519_SEED);
  assert.deepEqual(identity.publicKey.x25519, X25519_PUBLIC);
  assert.deepEqual(identity.publicKey.ed25519, ED25519_PUBLIC);
  assert.deepEqual(identity.x25519Private, X25519_PRIVATE);
  assert.deepEqual(identity.ed25519Private, ED25519_SEED);
});

Deno.test("generateIdentity() gives 32-byte keys whose public halves match the private ones", async () => {
  const identity = await generateIdentity();
  for (
    const key of [
      identity.x25519Private,
      identity.ed25519Private,
      identity.publicKey.x25519,
      identity.publicKey.ed25519,
    ]
  ) {
    assert.equal(key.length, 32);
  }
  const rebuilt = await identityFromPrivateKeys(identity.x25519Private, identity.ed25519Private);
  assert.ok(samePublicKey(rebuilt.publicKey, identity.publicKey));
  const other = await generateIdentity();
  assert.ok(!samePublicKey(other.publicKey, identity.publicKey));
});

Deno.test("formatPublicKey() writes the label, the X25519 then Ed25519 bytes, and the comment", () => {
  const expected = `ovtp1 ${keyText(new Uint8Array([...X25519_PUBLIC, ...ED25519_PUBLIC]))}`;
  assert.equal(formatPublicKey(KNOWN_KEY), expected);
  assert.equal(formatPublicKey(KNOWN_KEY, "alice@laptop"), `${expected} alice@laptop`);
  assert.match(formatPublicKey(KNOWN_KEY), /^ovtp1 [A-Za-z0-9_-]{86}$/);
});

Deno.test("parsePublicKey() round-trips formatPublicKey() with and without a comment", async () => {
  const { publicKey } = await generateIdentity();
  for (const comment of ["", "alice@laptop", "build server #2", "héllo wörld", "a  b"]) {
    const parsed = parsePublicKey(formatPublicKey(publicKey, comment));
    assert.ok(samePublicKey(parsed.key, publicKey));
    assert.deepEqual(parsed.key.x25519, publicKey.x25519);
    assert.deepEqual(parsed.key.ed25519, publicKey.ed25519);
    assert.equal(parsed.comment, comment);
  }
});

Deno.test("parsePublicKey() accepts surrounding whitespace, tabs between fields and a CRLF ending", () => {
  const encoded = keyText(publicKeyBytes(KNOWN_KEY));
  for (
    const line of [`  ovtp1 ${encoded}  `, `ovtp1\t${encoded}\tname`, `ovtp1 ${encoded} name\r`]
  ) {
    const parsed = parsePublicKey(line);
    assert.ok(samePublicKey(parsed.key, KNOWN_KEY));
  }
  assert.equal(parsePublicKey(`ovtp1\t${encoded}\tname`).comment, "name");
  assert.equal(parsePublicKey(`ovtp1 ${encoded} name\r`).comment, "name");
});

Deno.test("parsePublicKey() refuses an empty line", () => {
  assertSyntaxError("", "The key line is empty");
  assertSyntaxError("   \t ", "The key line is empty");
});

Deno.test("parsePublicKey() refuses a wrong label", () => {
  const encoded = keyText(publicKeyBytes(KNOWN_KEY));
  assertSyntaxError(`ovtp2 ${encoded}`, 'Expected a key starting with "ovtp1", found "ovtp2"');
  assertSyntaxError(`OVTP1 ${encoded}`, 'Expected a key starting with "ovtp1", found "OVTP1"');
  assertSyntaxError(
    `ssh-ed25519 ${encoded}`,
    'Expected a key starting with "ovtp1", found "ssh-ed25519"',
  );
  // The label is quoted, but cut to 20 characters.
  assertSyntaxError(
    "x".repeat(30),
    `Expected a key starting with "ovtp1", found "${"x".repeat(20)}"`,
  );
});

Deno.test("parsePublicKey() refuses a line with the label but no key", () => {
  assertSyntaxError("ovtp1", 'The key is missing after "ovtp1"');
  assertSyntaxError("ovtp1   ", 'The key is missing after "ovtp1"');
});

Deno.test("parsePublicKey() refuses a key that is not base64url", () => {
  const encoded = keyText(publicKeyBytes(KNOWN_KEY));
  const standard = encoded.replace(/-/g, "+").replace(/_/g, "/");
  assert.notEqual(standard, encoded, "the known key uses the characters that differ");
  const bad = [
    `${encoded.slice(0, 85)}!`, // a character outside any base64 alphabet
    standard, // the standard alphabet's + and /
    `${encoded}==`, // padded
    `${encoded.slice(0, 84)}==`, // padded to a multiple of 4
    encoded.slice(0, 85), // 85 characters: a length ≡ 1 (mod 4) is never base64
  ];
  for (const text of bad) {
    assertSyntaxError(`ovtp1 ${text}`, "The key is not valid base64url");
  }
});

Deno.test("parsePublicKey() refuses non-canonical base64url (nonzero trailing bits)", () => {
  const encoded = keyText(publicKeyBytes(KNOWN_KEY));
  // 64 bytes are 86 characters: the last one carries 2 data bits and 4 zero bits.
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const last = alphabet.indexOf(encoded[85]);
  assert.equal(last & 0x0f, 0);
  for (const extra of [1, 2, 4, 8]) {
    const variant = encoded.slice(0, 85) + alphabet[last | extra];
    assertSyntaxError(`ovtp1 ${variant}`, "The key is not valid base64url");
  }
});

Deno.test("parsePublicKey() refuses keys of 63 and 65 bytes", () => {
  const bytes = publicKeyBytes(KNOWN_KEY);
  assertSyntaxError(
    `ovtp1 ${keyText(bytes.subarray(0, 63))}`,
    "The key has 63 bytes; an ovtp1 key has 64",
  );
  assertSyntaxError(
    `ovtp1 ${keyText(new Uint8Array([...bytes, 0]))}`,
    "The key has 65 bytes; an ovtp1 key has 64",
  );
  assertSyntaxError(
    `ovtp1 ${keyText(bytes.subarray(0, 32))}`,
    "The key has 32 bytes; an ovtp1 key has 64",
  );
});

Deno.test("parsePublicKey() refuses C0 control characters and DEL in the comment", () => {
  const line = formatPublicKey(KNOWN_KEY);
  for (const comment of ["a\tb", "a\x00b", "a\x1b[31mred", "bell\x07", "del\x7f", "x\vy", "x\fy"]) {
    assertSyntaxError(`${line} ${comment}`, "The comment contains control characters");
  }
});

Deno.test("hasControlCharacters() flags C0 controls and DEL only", () => {
  assert.equal(hasControlCharacters("plain text, with ünïcode"), false);
  assert.equal(hasControlCharacters(""), false);
  for (const code of [0x00, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f]) {
    assert.equal(hasControlCharacters(`a${String.fromCharCode(code)}b`), true, `code ${code}`);
  }
  assert.equal(hasControlCharacters(" ~"), false);
});

Deno.test("fingerprint() is SHA256: and the unpadded base64 of SHA-256 over the 64 key bytes", async () => {
  const expected = createHash("sha256").update(publicKeyBytes(KNOWN_KEY)).digest("base64")
    .replace(/=+$/, "");
  const fp = await fingerprint(KNOWN_KEY);
  assert.equal(fp, `SHA256:${expected}`);
  assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
  const { publicKey } = await generateIdentity();
  assert.match(await fingerprint(publicKey), /^SHA256:[A-Za-z0-9+/]{43}$/);
  assert.notEqual(await fingerprint(publicKey), fp);
});

Deno.test("fingerprint() changes when either half of the key changes", async () => {
  const base = await fingerprint(KNOWN_KEY);
  const x = KNOWN_KEY.x25519.slice();
  x[0] ^= 1;
  const ed = KNOWN_KEY.ed25519.slice();
  ed[31] ^= 1;
  assert.notEqual(await fingerprint({ x25519: x, ed25519: KNOWN_KEY.ed25519 }), base);
  assert.notEqual(await fingerprint({ x25519: KNOWN_KEY.x25519, ed25519: ed }), base);
});

Deno.test("publicKeyFromBytes() splits 64 bytes and refuses other lengths with RangeError", () => {
  const bytes = publicKeyBytes(KNOWN_KEY);
  assert.equal(bytes.length, 64);
  const key = publicKeyFromBytes(bytes);
  assert.deepEqual(key.x25519, X25519_PUBLIC);
  assert.deepEqual(key.ed25519, ED25519_PUBLIC);
  for (const length of [0, 63, 65]) {
    assert.throws(() => publicKeyFromBytes(new Uint8Array(length)), {
      name: "RangeError",
      message: `A public key is 64 bytes, not ${length}`,
    });
  }
});

Deno.test("samePublicKey() compares both halves", () => {
  const x = KNOWN_KEY.x25519.slice();
  x[31] ^= 1;
  const ed = KNOWN_KEY.ed25519.slice();
  ed[0] ^= 1;
  assert.ok(
    samePublicKey(KNOWN_KEY, { x25519: X25519_PUBLIC.slice(), ed25519: ED25519_PUBLIC.slice() }),
  );
  assert.ok(!samePublicKey(KNOWN_KEY, { x25519: x, ed25519: ED25519_PUBLIC }));
  assert.ok(!samePublicKey(KNOWN_KEY, { x25519: X25519_PUBLIC, ed25519: ed }));
  assert.ok(
    !samePublicKey(KNOWN_KEY, { x25519: X25519_PUBLIC.subarray(0, 31), ed25519: ED25519_PUBLIC }),
  );
});
