/**
 * The sealed file's header: its bytes, the sender's signature over them,
 * and the file key wrapped for each recipient. Only the files in
 * lib/sealed/ import it.
 *
 * ```
 * "OVS1" || sender (64) || nonce (16) || count (u16)
 * || count × (recipient (64) || enc (32) || wrapped file key (48))
 * || commitment (32) || signature (64)
 * ```
 *
 * @module
 */

import { concat, constantTimeEqual } from "../bytes.ts";
import { ed25519Sign, ed25519VerifyOnce } from "../crypto/mod.ts";
import { FieldReader } from "../recipients/field_reader.ts";
import {
  copyKeys,
  encodeRecipients,
  entryLength,
  findEntry,
  readRecipientCount,
  readRecipients,
  type RecipientFormat,
  type RecipientList,
  unwrapEntry,
} from "../recipients/entries.ts";
import {
  type Identity,
  type PublicKey,
  publicKeyBytes,
  publicKeyFromBytes,
} from "../identity/keys.ts";
import type { ByteReader } from "./_byte_reader.ts";
import { deriveKeys } from "./_keys.ts";
import { SealedError } from "./errors.ts";
import {
  COMMITMENT_SIZE,
  FILE_KEY_INFO,
  HEADER_PREFIX_SIZE,
  HEADER_SIGNATURE_CONTEXT,
  MAX_SEALED_RECIPIENTS,
  NONCE_SIZE,
  PUBLIC_KEY_SIZE,
  SEALED_MAGIC,
  SIGNATURE_SIZE,
} from "./format.ts";

/**
 * A sealed file names each recipient by its whole public key, and wraps
 * the file key under an ephemeral key of its own (docs/protocol.md section 19).
 */
export const SEALED_RECIPIENTS: RecipientFormat = {
  name: "sealed file",
  keyName: "file key",
  keyLength: PUBLIC_KEY_SIZE,
  maxRecipients: MAX_SEALED_RECIPIENTS,
  sharedEphemeral: false,
  info: FILE_KEY_INFO,
  fail: (reason, message) => new SealedError(reason, message),
};

/** A parsed header whose signature has been checked. */
export interface Header {
  /** The sender's public key; the header signature verified under it. */
  sender: PublicKey;
  /** The recipients' public keys, in header order. */
  recipients: PublicKey[];
  /** The random salt of the key derivation. */
  nonce: Uint8Array;
  /** The commitment to the file key. */
  commitment: Uint8Array;
  /** The recipient list as on the wire. */
  list: RecipientList;
  /** The whole header as on the wire, signature included. */
  bytes: Uint8Array;
}

/**
 * Creates a header for `recipients`, signed by `sender`, with a fresh file
 * key; returns its bytes and the payload key.
 */
export async function createHeader(
  sender: Identity,
  recipients: PublicKey[],
): Promise<{ bytes: Uint8Array; payloadKey: Uint8Array }> {
  const fileKey = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_SIZE));
  const senderBytes = publicKeyBytes(sender.publicKey);
  const list = encodeRecipients(SEALED_RECIPIENTS, recipients, fileKey, concat(senderBytes, nonce));
  const { payloadKey, commitment } = deriveKeys(fileKey, nonce);
  const signed = concat(SEALED_MAGIC, senderBytes, nonce, list, commitment);
  const signature = await ed25519Sign(
    sender.ed25519Private,
    concat(HEADER_SIGNATURE_CONTEXT, signed),
  );
  return { bytes: concat(signed, signature), payloadKey };
}

/**
 * Reads a header, checking every length before reading, then its
 * signature. Throws a {@linkcode SealedError}: `truncated`, `malformed` or
 * `header-signature`.
 */
export async function readHeader(reader: ByteReader): Promise<Header> {
  await reader.fill(SEALED_MAGIC.length);
  const magic = new Uint8Array(Math.min(reader.buffered, SEALED_MAGIC.length));
  reader.peek(magic);
  if (!constantTimeEqual(magic, SEALED_MAGIC.subarray(0, magic.length)) || magic.length === 0) {
    throw new SealedError("malformed", "Not an ovtp sealed file (unknown magic bytes)");
  }
  const prefix = await readExactly(reader, HEADER_PREFIX_SIZE);
  const count = readRecipientCount(
    new FieldReader(prefix, truncated, HEADER_PREFIX_SIZE - 2),
    SEALED_RECIPIENTS,
  );
  const length = count * entryLength(SEALED_RECIPIENTS) + COMMITMENT_SIZE + SIGNATURE_SIZE;
  const rest = await readExactly(reader, length);
  // One copy of the whole header: the transcript starts with it, and the
  // fields below are views into it.
  const bytes = concat(prefix, rest);
  const fields = new FieldReader(bytes, truncated, SEALED_MAGIC.length);
  const sender = publicKeyFromBytes(fields.take(PUBLIC_KEY_SIZE, "sender").slice());
  const nonce = fields.take(NONCE_SIZE, "nonce").slice();
  const list = readRecipients(fields, SEALED_RECIPIENTS);
  const commitment = fields.take(COMMITMENT_SIZE, "commitment").slice();
  const signed = bytes.subarray(0, fields.offset);
  const signature = fields.take(SIGNATURE_SIZE, "header signature");
  const verified = await ed25519VerifyOnce(
    sender.ed25519,
    signature,
    concat(HEADER_SIGNATURE_CONTEXT, signed),
  );
  if (!verified) {
    throw new SealedError("header-signature", "The header's signature is not valid");
  }
  const recipients = copyKeys(list)().map(publicKeyFromBytes);
  return { sender, recipients, nonce, commitment, list, bytes };
}

/**
 * Finds the reader's entry, unwraps the file key and checks it against the
 * commitment. Throws a {@linkcode SealedError}: `not-recipient` or
 * `wrapped-key`.
 *
 * @returns The payload key.
 */
export function unwrapPayloadKey(header: Header, identity: Identity): Uint8Array {
  const entry = findEntry(header.list, identity);
  const aad = concat(publicKeyBytes(header.sender), header.nonce);
  const fileKey = unwrapEntry(SEALED_RECIPIENTS, entry, identity, aad);
  const { payloadKey, commitment } = deriveKeys(fileKey, header.nonce);
  if (!constantTimeEqual(commitment, header.commitment)) {
    throw new SealedError(
      "wrapped-key",
      "The file key wrapped for this key does not match the header's commitment",
    );
  }
  return payloadKey;
}

function truncated(): SealedError {
  return new SealedError("truncated", "The file ends inside its header");
}

async function readExactly(reader: ByteReader, count: number): Promise<Uint8Array> {
  if (!await reader.fill(count)) throw truncated();
  return reader.take(count);
}
