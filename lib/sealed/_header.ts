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
import { ed25519Sign, ed25519Verify } from "../crypto/mod.ts";
import {
  type Identity,
  type PublicKey,
  publicKeyBytes,
  publicKeyFromBytes,
  samePublicKey,
} from "../keys.ts";
import { unwrapKey, wrapKey } from "../key_wrap.ts";
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
  STANZA_SIZE,
} from "./format.ts";

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
  /** The stanzas as on the wire. */
  stanzas: Uint8Array[];
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
  if (recipients.length === 0 || recipients.length > MAX_SEALED_RECIPIENTS) {
    throw new RangeError(`A sealed file has 1 to ${MAX_SEALED_RECIPIENTS} recipients`);
  }
  const fileKey = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_SIZE));
  const senderBytes = publicKeyBytes(sender.publicKey);
  const aad = concat(senderBytes, nonce);
  const stanzas = recipients.map((recipient) => {
    const { enc, wrapped } = wrapKey(recipient.x25519, fileKey, { info: FILE_KEY_INFO, aad });
    return concat(publicKeyBytes(recipient), enc, wrapped);
  });
  const { payloadKey, commitment } = deriveKeys(fileKey, nonce);
  const count = new Uint8Array(2);
  new DataView(count.buffer).setUint16(0, recipients.length);
  const signed = concat(SEALED_MAGIC, senderBytes, nonce, count, ...stanzas, commitment);
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
  const count = new DataView(prefix.buffer, prefix.byteOffset).getUint16(HEADER_PREFIX_SIZE - 2);
  if (count === 0 || count > MAX_SEALED_RECIPIENTS) {
    throw new SealedError("malformed", `The header names ${count} recipients`);
  }
  const rest = await readExactly(reader, count * STANZA_SIZE + COMMITMENT_SIZE + SIGNATURE_SIZE);
  const bytes = concat(prefix, rest);
  const signedLength = bytes.length - SIGNATURE_SIZE;
  const sender = publicKeyFromBytes(bytes.slice(4, 4 + PUBLIC_KEY_SIZE));
  const verified = await ed25519Verify(
    sender.ed25519,
    bytes.subarray(signedLength),
    concat(HEADER_SIGNATURE_CONTEXT, bytes.subarray(0, signedLength)),
  );
  if (!verified) {
    throw new SealedError("header-signature", "The header's signature is not valid");
  }
  const stanzas: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const start = HEADER_PREFIX_SIZE + i * STANZA_SIZE;
    stanzas.push(bytes.subarray(start, start + STANZA_SIZE));
  }
  return {
    sender,
    recipients: stanzas.map((stanza) => publicKeyFromBytes(stanza.slice(0, PUBLIC_KEY_SIZE))),
    nonce: bytes.slice(4 + PUBLIC_KEY_SIZE, 4 + PUBLIC_KEY_SIZE + NONCE_SIZE),
    commitment: bytes.slice(signedLength - COMMITMENT_SIZE, signedLength),
    stanzas,
    bytes,
  };
}

/**
 * Finds the reader's stanza, unwraps the file key and checks it against the
 * commitment. Throws a {@linkcode SealedError}: `not-recipient` or
 * `wrapped-key`.
 *
 * @returns The payload key.
 */
export function unwrapPayloadKey(header: Header, identity: Identity): Uint8Array {
  const index = header.recipients.findIndex((recipient) =>
    samePublicKey(recipient, identity.publicKey)
  );
  if (index < 0) {
    throw new SealedError("not-recipient", "The file is not sealed for this key");
  }
  const stanza = header.stanzas[index];
  const enc = stanza.subarray(PUBLIC_KEY_SIZE, PUBLIC_KEY_SIZE + 32);
  const wrapped = stanza.subarray(PUBLIC_KEY_SIZE + 32);
  let fileKey: Uint8Array;
  try {
    fileKey = unwrapKey({ enc, wrapped }, identity, {
      info: FILE_KEY_INFO,
      aad: concat(publicKeyBytes(header.sender), header.nonce),
    });
  } catch {
    throw new SealedError("wrapped-key", "The file key wrapped for this key does not open");
  }
  const { payloadKey, commitment } = deriveKeys(fileKey, header.nonce);
  if (!constantTimeEqual(commitment, header.commitment)) {
    throw new SealedError(
      "wrapped-key",
      "The file key wrapped for this key does not match the header's commitment",
    );
  }
  return payloadKey;
}

async function readExactly(reader: ByteReader, count: number): Promise<Uint8Array> {
  if (!await reader.fill(count)) {
    throw new SealedError("truncated", "The file ends inside its header");
  }
  return reader.take(count);
}
