import assert from "node:assert/strict";
import { concat, utf8 } from "../lib/bytes.ts";
import { ENVELOPE_RECIPIENTS, EnvelopeError } from "../lib/envelope/envelope.ts";
import { FieldReader } from "../lib/recipients/field_reader.ts";
import { generateIdentity, type Identity, publicKeyBytes } from "../lib/identity/keys.ts";
import {
  copyKeys,
  encodeRecipients,
  entryLength,
  findEntry,
  readRecipients,
  type RecipientFormat,
  unwrapEntry,
} from "../lib/recipients/entries.ts";
import { SealedError } from "../lib/sealed/errors.ts";
import { SEALED_RECIPIENTS } from "../lib/sealed/_header.ts";

const [bob, carol, dave] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
/** Either format's error class. */
type ErrorType = new (...args: never[]) => Error;
const key = crypto.getRandomValues(new Uint8Array(32));
const aad = utf8("sender and message");
const FORMATS: [RecipientFormat, ErrorType][] = [
  [ENVELOPE_RECIPIENTS, EnvelopeError],
  [SEALED_RECIPIENTS, SealedError],
];

function read(format: RecipientFormat, bytes: Uint8Array) {
  const fields = new FieldReader(bytes, (what) => format.fail("malformed", `short ${what}`));
  const list = readRecipients(fields, format);
  return { list, offset: fields.offset };
}

/** A throw of `type` with `reason`, checked by assert.throws. */
function refusal(type: ErrorType, reason: string) {
  return (error: unknown) => {
    assert.ok(error instanceof type, String(error));
    assert.equal((error as { reason?: string }).reason, reason, String(error));
    return true;
  };
}

Deno.test("the entries are laid out as docs/protocol.md says, for each format", () => {
  // Section 15: X25519 key (32) || enc || wrapped key; section 19: whole key (64) || enc || wrapped key.
  assert.equal(entryLength(ENVELOPE_RECIPIENTS), 32 + 32 + 48);
  assert.equal(entryLength(SEALED_RECIPIENTS), 64 + 32 + 48);
  for (const [format] of FORMATS) {
    const bytes = encodeRecipients(format, [bob.publicKey, carol.publicKey], key, aad);
    const length = entryLength(format);
    assert.equal(bytes.length, 2 + 2 * length);
    assert.deepEqual([...bytes.subarray(0, 2)], [0, 2]);
    const named = publicKeyBytes(carol.publicKey).subarray(0, format.keyLength);
    assert.deepEqual(bytes.subarray(2 + length, 2 + length + format.keyLength), named);
    const { list, offset } = read(format, bytes);
    assert.equal(offset, bytes.length);
    assert.deepEqual(
      copyKeys(list)(),
      [bob, carol].map((p) => publicKeyBytes(p.publicKey).subarray(0, format.keyLength)),
    );
    // An envelope reuses one ephemeral key; a sealed file draws one per recipient.
    const enc = (i: number) => bytes.subarray(2 + i * length + format.keyLength).subarray(0, 32);
    assert.equal(enc(0).every((byte, i) => byte === enc(1)[i]), format.sharedEphemeral);
  }
});

Deno.test("each recipient unwraps the key from its own entry, whatever its position", () => {
  for (const [format] of FORMATS) {
    const people = [bob, carol, dave];
    const { list } = read(
      format,
      encodeRecipients(format, people.map((p) => p.publicKey), key, aad),
    );
    for (const person of people) {
      assert.deepEqual(unwrapEntry(format, findEntry(list, person), person, aad), key);
    }
  }
});

Deno.test("an envelope names a recipient by its X25519 key, a sealed file by both halves", () => {
  // Bob's X25519 key with Carol's Ed25519 key: the same recipient to an
  // envelope, another one to a sealed file.
  const hybrid: Identity = {
    ...bob,
    publicKey: { ...bob.publicKey, ed25519: carol.publicKey.ed25519 },
  };
  const envelope = read(
    ENVELOPE_RECIPIENTS,
    encodeRecipients(ENVELOPE_RECIPIENTS, [bob.publicKey], key, aad),
  );
  assert.deepEqual(
    unwrapEntry(ENVELOPE_RECIPIENTS, findEntry(envelope.list, hybrid), hybrid, aad),
    key,
  );
  const sealed = read(
    SEALED_RECIPIENTS,
    encodeRecipients(SEALED_RECIPIENTS, [bob.publicKey], key, aad),
  );
  assert.throws(() => findEntry(sealed.list, hybrid), refusal(SealedError, "not-recipient"));
});

Deno.test("a key that differs from a recipient's in its last named byte is not a recipient", () => {
  for (const [format, type] of FORMATS) {
    const { list } = read(format, encodeRecipients(format, [bob.publicKey], key, aad));
    const near = { x25519: bob.publicKey.x25519.slice(), ed25519: bob.publicKey.ed25519.slice() };
    (format.keyLength === 32 ? near.x25519 : near.ed25519)[31] ^= 1;
    const impostor: Identity = { ...bob, publicKey: near };
    assert.throws(() => findEntry(list, impostor), refusal(type, "not-recipient"));
  }
});

Deno.test("each failure is the format's own error with the shared reason", () => {
  for (const [format, type] of FORMATS) {
    const bytes = encodeRecipients(format, [bob.publicKey, carol.publicKey], key, aad);
    const { list } = read(format, bytes);
    assert.throws(() => findEntry(list, dave), refusal(type, "not-recipient"));
    assert.throws(
      () => unwrapEntry(format, findEntry(list, bob), bob, utf8("other")),
      refusal(type, "wrapped-key"),
    );
    // Carol's entry opened with Bob's key: her wrapped key is not his.
    const carols = findEntry(list, carol);
    assert.throws(() => unwrapEntry(format, carols, bob, aad), refusal(type, "wrapped-key"));
    for (const count of [0, format.maxRecipients + 1]) {
      const bad = concat(new Uint8Array([count >> 8, count & 0xff]), bytes.subarray(2));
      assert.throws(() => read(format, bad), refusal(type, "malformed"));
    }
    // One byte short of the entries the count announces.
    assert.throws(
      () => read(format, bytes.subarray(0, bytes.length - 1)),
      refusal(type, "malformed"),
    );
  }
});

Deno.test("a writer is refused no recipient or more than the format allows", () => {
  for (const [format] of FORMATS) {
    assert.throws(() => encodeRecipients(format, [], key, aad), RangeError);
    const many = Array(format.maxRecipients + 1).fill(bob.publicKey);
    assert.throws(() => encodeRecipients(format, many, key, aad), RangeError);
  }
});

Deno.test("FieldReader never reads past the end, and a short read does not move it", () => {
  const fields = new FieldReader(
    Uint8Array.from([0, 1, 2, 3, 4, 5]),
    (what) => new RangeError(`short ${what}`),
  );
  assert.equal(fields.u16("a"), 1);
  assert.throws(() => fields.u64("b"), /short b/);
  assert.throws(() => fields.take(5, "c"), /short c/);
  assert.equal(fields.offset, 2);
  assert.throws(() => fields.end(() => new Error("trailing")), /trailing/);
  assert.equal(fields.u32("d"), 0x02030405);
  assert.throws(() => fields.take(1, "e"), /short e/);
  fields.end(() => new Error("trailing"));
  const shifted = new FieldReader(Uint8Array.from([9, 0, 7]).subarray(1), () => new Error("short"));
  assert.equal(shifted.u16("f"), 7); // A view's own offset, not its buffer's.
});
