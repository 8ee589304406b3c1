/**
 * The recipient list shared by the two multi-recipient formats, envelopes
 * (lib/envelope/envelope.ts) and sealed files (lib/sealed/): how a random key is
 * wrapped for each recipient, how the list is written and read, how a
 * reader finds its entry and unwraps the key, and why that fails. A new
 * recipient type lands here once. Only lib/ imports it.
 *
 * On the wire (docs/protocol.md, sections 15 and 19), in both formats:
 *
 * ```
 * count (u16, 1..max) || count × (recipient (keyLength) || enc (32) || wrapped key (48))
 * ```
 *
 * The formats differ in what they keep fixed, and a {@linkcode RecipientFormat}
 * says which: an envelope names a recipient by its X25519 key (32 bytes) and
 * wraps for everyone with one ephemeral key; a sealed file names the whole
 * public key (64 bytes, X25519 || Ed25519), so a reader matches both
 * halves, and draws an ephemeral key per recipient.
 *
 * @module
 */

import type { FieldReader } from "./field_reader.ts";
import {
  unwrapKey,
  WRAP_ENC_LENGTH,
  wrapKey,
  wrapKeyForAll,
  WRAPPED_KEY_LENGTH,
} from "./key_wrap.ts";
import { type Identity, type PublicKey, publicKeyBytes } from "../identity/keys.ts";

/**
 * Why a recipient list was refused, in both formats (each format's own
 * failure type includes these):
 * - `malformed`: the count is out of range
 * - `not-recipient`: no entry names the reader's key
 * - `wrapped-key`: the reader's entry does not open
 */
export type RecipientFailure = "malformed" | "not-recipient" | "wrapped-key";

/** What a format fixes about its recipient list. */
export interface RecipientFormat {
  /** What the format is called in messages: `envelope`, `sealed file`. */
  name: string;
  /** What the wrapped key is called in messages: `content key`, `file key`. */
  keyName: string;
  /** Bytes naming a recipient: 32 (its X25519 key) or 64 (X25519 || Ed25519). */
  keyLength: 32 | 64;
  /** The most recipients. */
  maxRecipients: number;
  /** One ephemeral key for every recipient (`enc` repeated), or one each. */
  sharedEphemeral: boolean;
  /** HPKE `info` of the wrapped key: it names the format. */
  info: Uint8Array;
  /** The format's error for a failure. */
  fail(reason: RecipientFailure, message: string): Error;
}

/** A recipient list as read: views into the bytes it was read from. */
export interface RecipientList {
  /** The format it was read as. */
  format: RecipientFormat;
  /** How many entries. */
  count: number;
  /** Every entry, back to back. */
  entries: Uint8Array;
}

/** Bytes of one entry of `format`. */
export function entryLength(format: RecipientFormat): number {
  return format.keyLength + WRAP_ENC_LENGTH + WRAPPED_KEY_LENGTH;
}

/** Throws a RangeError unless a writer may name `count` recipients. */
export function checkRecipientCount(format: RecipientFormat, count: number): void {
  if (count === 0 || count > format.maxRecipients) {
    throw new RangeError(
      `Cannot seal for ${count} recipients: one ${format.name} takes 1 to ${format.maxRecipients}`,
    );
  }
}

/**
 * The list (count and entries) with `key` wrapped for each recipient,
 * `aad` binding it to the sender and the message.
 */
export function encodeRecipients(
  format: RecipientFormat,
  recipients: PublicKey[],
  key: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  checkRecipientCount(format, recipients.length);
  const options = { info: format.info, aad };
  const keys = recipients.map((recipient) => recipient.x25519);
  // A shared ephemeral key halves the X25519 work (docs/security.md section 7).
  const wrapped = format.sharedEphemeral
    ? wrapKeyForAll(keys, key, options)
    : keys.map((x25519) => wrapKey(x25519, key, options));
  const length = entryLength(format);
  const out = new Uint8Array(2 + recipients.length * length);
  new DataView(out.buffer).setUint16(0, recipients.length);
  recipients.forEach((recipient, i) => {
    const at = 2 + i * length;
    out.set(nameOf(format, recipient), at);
    out.set(wrapped[i].enc, at + format.keyLength);
    out.set(wrapped[i].wrapped, at + format.keyLength + WRAP_ENC_LENGTH);
  });
  return out;
}

/** Reads the count, checked against the format's range (`malformed`). */
export function readRecipientCount(fields: FieldReader, format: RecipientFormat): number {
  const count = fields.u16("recipient count");
  if (count === 0 || count > format.maxRecipients) {
    throw format.fail(
      "malformed",
      `The ${format.name} names ${count} recipients, not 1 to ${format.maxRecipients}`,
    );
  }
  return count;
}

/** Reads a whole list: the count, checked, then the entries. */
export function readRecipients(fields: FieldReader, format: RecipientFormat): RecipientList {
  const count = readRecipientCount(fields, format);
  return { format, count, entries: fields.take(count * entryLength(format), "recipient") };
}

/**
 * Copies the recipients' keys out of the list now (the caller may reuse
 * the bytes), into one buffer; the returned function splits it into one
 * array per key when first called, and returns that same array after.
 */
export function copyKeys(list: RecipientList): () => Uint8Array[] {
  const { keyLength } = list.format;
  const length = entryLength(list.format);
  const keys = new Uint8Array(list.count * keyLength);
  for (let i = 0; i < list.count; i++) {
    keys.set(list.entries.subarray(i * length, i * length + keyLength), i * keyLength);
  }
  let split: Uint8Array[] | undefined;
  return () =>
    split ??= Array.from(
      { length: list.count },
      (_, i) => keys.slice(i * keyLength, (i + 1) * keyLength),
    );
}

/**
 * The first entry naming `identity`, compared in place; throws
 * `not-recipient` when none does. Recipient keys are public, so the search
 * may stop at the first difference.
 */
export function findEntry(list: RecipientList, identity: Identity): Uint8Array {
  const name = nameOf(list.format, identity.publicKey);
  const length = entryLength(list.format);
  const { entries } = list;
  search: for (let at = 0; at < entries.length; at += length) {
    for (let i = 0; i < name.length; i++) if (entries[at + i] !== name[i]) continue search;
    return entries.subarray(at, at + length);
  }
  throw list.format.fail("not-recipient", `The ${list.format.name} is not addressed to this key`);
}

/** Unwraps the key in `entry`, found by {@linkcode findEntry}; throws `wrapped-key`. */
export function unwrapEntry(
  format: RecipientFormat,
  entry: Uint8Array,
  identity: Identity,
  aad: Uint8Array,
): Uint8Array {
  const enc = entry.subarray(format.keyLength, format.keyLength + WRAP_ENC_LENGTH);
  const wrapped = entry.subarray(format.keyLength + WRAP_ENC_LENGTH);
  try {
    return unwrapKey({ enc, wrapped }, identity, { info: format.info, aad });
  } catch {
    throw format.fail("wrapped-key", `The ${format.keyName} wrapped for this key does not open`);
  }
}

/** How `format` names `key` in an entry. */
function nameOf(format: RecipientFormat, key: PublicKey): Uint8Array {
  return format.keyLength === 32 ? key.x25519 : publicKeyBytes(key);
}
