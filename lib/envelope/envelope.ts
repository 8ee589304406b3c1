/**
 * Envelopes: a message sealed for one or many recipients and signed by its
 * sender, so that a relay can carry and store it but neither read it nor
 * change who sent it, to whom, for which context (a chat room), or when.
 *
 * A random content key encrypts the body once (ChaCha20-Poly1305, the
 * header as associated data); HPKE (RFC 9180, base mode, DHKEM X25519,
 * HKDF-SHA256, ChaCha20-Poly1305) wraps that key for each recipient; the
 * sender's Ed25519 key signs everything. The layout is in docs/protocol.md.
 *
 * @module
 */

import { concat, constantTimeEqual, toHex, utf8 } from "../bytes.ts";
import { ed25519Sign, ed25519Verify } from "../crypto/mod.ts";
import { FieldReader } from "../recipients/field_reader.ts";
import {
  checkRecipientCount,
  copyKeys,
  encodeRecipients,
  findEntry,
  readRecipients,
  type RecipientFormat,
  type RecipientList,
  unwrapEntry,
} from "../recipients/entries.ts";
import {
  type Identity,
  KEY_LENGTH,
  type PublicKey,
  publicKeyBytes,
  publicKeyFromBytes,
} from "../identity/keys.ts";
import { CHACHA_POLY, DecryptError } from "../channel/noise/aead.ts";

/** The first bytes of every envelope: format version 1. */
export const ENVELOPE_MAGIC: Uint8Array = utf8("OVE1");
/** The most recipients one envelope may have. */
export const MAX_RECIPIENTS = 1024;
/** The longest context, in bytes. */
export const MAX_CONTEXT_LENGTH = 1024;
/** The largest body, in bytes. */
export const MAX_BODY_LENGTH = 16 * 1024 * 1024;

const HPKE_INFO = utf8("ovtp envelope v1 content key");
const SIGNATURE_CONTEXT = utf8("ovtp envelope v1 signature\0");
const ID_LENGTH = 16;
const SIGNATURE_LENGTH = 64;

/**
 * An envelope's recipient list (docs/protocol.md section 15): each
 * recipient named by its X25519 key, one ephemeral key for all. Exported
 * for the tests of lib/recipients/entries.ts; mod.ts does not export it.
 */
export const ENVELOPE_RECIPIENTS: RecipientFormat = {
  name: "envelope",
  keyName: "content key",
  keyLength: KEY_LENGTH,
  maxRecipients: MAX_RECIPIENTS,
  sharedEphemeral: true,
  info: HPKE_INFO,
  fail: (reason, message) => new EnvelopeError(reason, message),
};

/**
 * Why an envelope was refused: callers branch on it.
 * - `malformed`: not an envelope, or a field out of range
 * - `signature`: the sender's signature is not valid (the bytes were changed)
 * - `context`: sealed for another context than the one expected
 * - `expired`, `future`: the timestamp is too old, or too far ahead
 * - `replay`: its message id was already received
 * - `not-recipient`: not addressed to this key
 * - `wrapped-key`, `body`: the content key or the body does not decrypt
 *
 * @example Tell "not for me" from tampering
 * ```ts
 * import {
 *   EnvelopeError,
 *   type EnvelopeFailure,
 *   generateIdentity,
 *   openEnvelope,
 *   sealEnvelope,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
 * const envelope = await sealEnvelope(alice, [bob.publicKey], new Uint8Array([7]), {
 *   context: "inbox",
 * });
 * const reason = await openEnvelope(envelope, carol, { context: "inbox" }).then(
 *   (): EnvelopeFailure | undefined => undefined,
 *   (error: EnvelopeError): EnvelopeFailure => error.reason,
 * );
 * assert.equal(reason, "not-recipient"); // Skip it quietly: it is for someone else.
 * ```
 */
export type EnvelopeFailure =
  | "malformed"
  | "signature"
  | "context"
  | "expired"
  | "future"
  | "replay"
  | "not-recipient"
  | "wrapped-key"
  | "body";

/**
 * An envelope that could not be opened, with the reason.
 *
 * @example A changed byte is caught by the signature
 * ```ts
 * import { EnvelopeError, generateIdentity, openEnvelope, sealEnvelope } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const envelope = await sealEnvelope(alice, [bob.publicKey], new Uint8Array(100), {
 *   context: "inbox",
 * });
 * envelope[envelope.length - 100] ^= 1; // Inside the sealed body.
 * await assert.rejects(openEnvelope(envelope, bob, { context: "inbox" }), (error) => {
 *   assert.ok(error instanceof EnvelopeError);
 *   assert.equal(error.reason, "signature");
 *   return true;
 * });
 * ```
 */
export class EnvelopeError extends Error {
  /** What failed. */
  readonly reason: EnvelopeFailure;

  /** Creates the error. */
  constructor(reason: EnvelopeFailure, message: string) {
    super(message);
    this.name = "EnvelopeError";
    this.reason = reason;
  }
}

/**
 * The public part of an envelope, readable without any key.
 *
 * @example Route by recipient
 * ```ts
 * import {
 *   type EnvelopeHeader,
 *   generateIdentity,
 *   parseEnvelope,
 *   type PublicKey,
 *   sealEnvelope,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function isFor(header: EnvelopeHeader, key: PublicKey): boolean {
 *   return header.recipients.some((r) => r.every((byte, i) => byte === key.x25519[i]));
 * }
 * const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
 * const body = new TextEncoder().encode("lunch?");
 * const envelope = await sealEnvelope(alice, [bob.publicKey], body, { context: "dm" });
 * const header = parseEnvelope(envelope);
 * assert.ok(isFor(header, bob.publicKey));
 * assert.ok(!isFor(header, carol.publicKey));
 * assert.equal(header.bodyLength, body.length + 16); // The ciphertext carries a 16-byte tag.
 * ```
 */
export interface EnvelopeHeader {
  /** The sender's public key (its signature is checked by {@linkcode openEnvelope}). */
  sender: PublicKey;
  /** Milliseconds since the epoch, as the sender's clock said. */
  timestamp: number;
  /** 16 random bytes, hex: unique per message. */
  messageId: string;
  /** What the message is for, e.g. `room:ops`. */
  context: string;
  /** The recipients' X25519 public keys. */
  recipients: Uint8Array[];
  /** The body's ciphertext length. */
  bodyLength: number;
}

/**
 * An opened, verified envelope.
 *
 * @example Read the body and who sent it
 * ```ts
 * import {
 *   generateIdentity,
 *   type OpenedEnvelope,
 *   openEnvelope,
 *   samePublicKey,
 *   sealEnvelope,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const sealed = await sealEnvelope(alice, [bob.publicKey], new TextEncoder().encode("hi bob"), {
 *   context: "dm",
 * });
 * const opened: OpenedEnvelope = await openEnvelope(sealed, bob, { context: "dm" });
 * assert.equal(new TextDecoder().decode(opened.body), "hi bob");
 * assert.ok(samePublicKey(opened.sender, alice.publicKey));
 * assert.match(opened.messageId, /^[0-9a-f]{32}$/);
 * ```
 */
export interface OpenedEnvelope extends EnvelopeHeader {
  /** The plaintext. */
  body: Uint8Array;
}

/**
 * Options of {@linkcode sealEnvelope}.
 *
 * @example Stamp the context and the time
 * ```ts
 * import { generateIdentity, parseEnvelope, sealEnvelope, type SealOptions } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const options: SealOptions = { context: "room:ops", timestamp: Date.UTC(2025, 0, 1) };
 * const envelope = await sealEnvelope(alice, [bob.publicKey], new Uint8Array([1]), options);
 * const { context, timestamp } = parseEnvelope(envelope);
 * assert.deepEqual({ context, timestamp }, options);
 * ```
 */
export interface SealOptions {
  /** What the message is for; a recipient refuses any other. */
  context: string;
  /** The time to stamp. @default Date.now() */
  timestamp?: number;
}

/**
 * Seals `body` for `recipients`, signed by `sender`. Throws a RangeError for
 * no recipient or more than 1024, a context over 1 KiB, or a body over
 * 16 MiB.
 *
 * @param sender The identity that signs the envelope.
 * @param recipients The keys that can open it (1 to 1024).
 * @param body The plaintext.
 * @param options The context and the timestamp.
 * @returns The envelope's bytes.
 *
 * @example One message for two recipients
 * ```ts
 * import { generateIdentity, openEnvelope, sealEnvelope } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateIdentity()));
 * const body = new TextEncoder().encode("deploy at 5");
 * const envelope = await sealEnvelope(alice, [bob.publicKey, carol.publicKey], body, {
 *   context: "room:ops",
 * });
 * for (const reader of [bob, carol]) {
 *   const opened = await openEnvelope(envelope, reader, { context: "room:ops" });
 *   assert.deepEqual(opened.body, body);
 * }
 * ```
 */
export async function sealEnvelope(
  sender: Identity,
  recipients: PublicKey[],
  body: Uint8Array,
  options: SealOptions,
): Promise<Uint8Array> {
  const context = utf8(options.context);
  checkRecipientCount(ENVELOPE_RECIPIENTS, recipients.length);
  if (context.length > MAX_CONTEXT_LENGTH) throw new RangeError("The context is too long");
  if (body.length > MAX_BODY_LENGTH) throw new RangeError("The body is too large");
  const contentKey = crypto.getRandomValues(new Uint8Array(32));
  const messageId = crypto.getRandomValues(new Uint8Array(ID_LENGTH));
  const senderBytes = publicKeyBytes(sender.publicKey);
  const list = encodeRecipients(
    ENVELOPE_RECIPIENTS,
    recipients,
    contentKey,
    concat(senderBytes, messageId),
  );
  const fixed = new Uint8Array(8 + ID_LENGTH + 2);
  const view = new DataView(fixed.buffer);
  view.setBigUint64(0, BigInt(options.timestamp ?? Date.now()));
  fixed.set(messageId, 8);
  view.setUint16(8 + ID_LENGTH, context.length);
  const header = concat(ENVELOPE_MAGIC, senderBytes, fixed, context, list);
  // The content key is fresh and random for every envelope, so the fixed
  // nonce 0 is never reused with one key.
  const sealedBody = CHACHA_POLY.seal(contentKey, 0, header, body);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, sealedBody.length);
  const signed = concat(header, length, sealedBody);
  const signature = await ed25519Sign(sender.ed25519Private, concat(SIGNATURE_CONTEXT, signed));
  return concat(signed, signature);
}

/**
 * An envelope's fields, and where its parts lie in its bytes: views,
 * nothing copied but the sender's key.
 */
interface Parsed extends Omit<EnvelopeHeader, "recipients"> {
  /** The sender's key and the message id, as they lie in the bytes. */
  senderBytes: Uint8Array;
  idBytes: Uint8Array;
  header: Uint8Array;
  recipients: RecipientList;
  sealedBody: Uint8Array;
  signed: Uint8Array;
  signature: Uint8Array;
}

const UTF8_STRICT = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads an envelope's public part without checking anything but its
 * shape. A relay uses it to route; {@linkcode openEnvelope} verifies.
 * Throws an {@linkcode EnvelopeError} (`malformed`) for bytes that are not
 * an envelope.
 *
 * @param bytes The envelope.
 * @returns Its header: nothing in it is verified yet.
 *
 * @example What a relay can see
 * ```ts
 * import {
 *   EnvelopeError,
 *   generateIdentity,
 *   parseEnvelope,
 *   samePublicKey,
 *   sealEnvelope,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const envelope = await sealEnvelope(alice, [bob.publicKey], new Uint8Array(10), {
 *   context: "room:ops",
 * });
 * const header = parseEnvelope(envelope);
 * assert.equal(header.context, "room:ops");
 * assert.ok(samePublicKey(header.sender, alice.publicKey));
 * assert.equal(header.recipients.length, 1);
 *
 * assert.throws(() => parseEnvelope(envelope.subarray(0, 50)), EnvelopeError);
 * ```
 */
export function parseEnvelope(bytes: Uint8Array): EnvelopeHeader {
  const { sender, timestamp, messageId, context, bodyLength, recipients } = parse(bytes);
  return { sender, timestamp, messageId, context, recipients: copyKeys(recipients)(), bodyLength };
}

function malformed(what: string): EnvelopeError {
  return new EnvelopeError("malformed", `Malformed envelope: ${what}`);
}

function parse(bytes: Uint8Array): Parsed {
  const fields = new FieldReader(bytes, (what) => malformed(`truncated ${what}`));
  if (!constantTimeEqual(fields.take(4, "magic"), ENVELOPE_MAGIC)) {
    throw malformed("not an ovtp envelope");
  }
  const senderBytes = fields.take(2 * KEY_LENGTH, "sender");
  const sender = publicKeyFromBytes(senderBytes);
  const timestamp = fields.u64("timestamp");
  const idBytes = fields.take(ID_LENGTH, "message id");
  const contextLength = fields.u16("context length");
  if (contextLength > MAX_CONTEXT_LENGTH) throw malformed("context too long");
  const contextBytes = fields.take(contextLength, "context");
  let context: string;
  try {
    context = UTF8_STRICT.decode(contextBytes);
  } catch {
    throw malformed("context is not UTF-8");
  }
  const recipients = readRecipients(fields, ENVELOPE_RECIPIENTS);
  const header = bytes.subarray(0, fields.offset);
  const bodyLength = fields.u32("body length");
  if (bodyLength < 16 || bodyLength > MAX_BODY_LENGTH + 16) throw malformed("bad body length");
  const sealedBody = fields.take(bodyLength, "body");
  const signed = bytes.subarray(0, fields.offset);
  const signature = fields.take(SIGNATURE_LENGTH, "signature");
  fields.end(() => malformed("trailing bytes"));
  return {
    sender,
    timestamp,
    messageId: toHex(idBytes),
    context,
    bodyLength,
    senderBytes,
    idBytes,
    header,
    recipients,
    sealedBody,
    signed,
    signature,
  };
}

/**
 * Remembers message ids to refuse replays, forgetting the oldest past a bound.
 * Keep one per recipient and pass it to every {@linkcode openEnvelope}.
 *
 * @example The same envelope twice
 * ```ts
 * import {
 *   EnvelopeError,
 *   generateIdentity,
 *   openEnvelope,
 *   ReplayGuard,
 *   sealEnvelope,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const envelope = await sealEnvelope(alice, [bob.publicKey], new Uint8Array([1]), {
 *   context: "dm",
 * });
 * const replay = new ReplayGuard();
 * await openEnvelope(envelope, bob, { context: "dm", replay });
 * await assert.rejects(
 *   openEnvelope(envelope, bob, { context: "dm", replay }),
 *   (error) => error instanceof EnvelopeError && error.reason === "replay",
 * );
 * ```
 */
export class ReplayGuard {
  #seen = new Set<string>();
  #limit: number;

  /** Remembers up to `limit` ids. @default 100000 */
  constructor(limit = 100_000) {
    this.#limit = limit;
  }

  /** Records `id`; false when it was seen before. */
  remember(id: string): boolean {
    if (this.#seen.has(id)) return false;
    this.#seen.add(id);
    if (this.#seen.size > this.#limit) {
      this.#seen.delete(this.#seen.values().next().value!);
    }
    return true;
  }
}

/**
 * Options of {@linkcode openEnvelope}.
 *
 * @example Accept week-old messages only
 * ```ts
 * import {
 *   EnvelopeError,
 *   generateIdentity,
 *   openEnvelope,
 *   type OpenOptions,
 *   sealEnvelope,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const day = 24 * 60 * 60 * 1000;
 * const envelope = await sealEnvelope(alice, [bob.publicKey], new Uint8Array([1]), {
 *   context: "backup-report",
 *   timestamp: Date.now() - 10 * day,
 * });
 * const options: OpenOptions = { context: "backup-report", maxAgeMs: 7 * day };
 * await assert.rejects(
 *   openEnvelope(envelope, bob, options),
 *   (error) => error instanceof EnvelopeError && error.reason === "expired",
 * );
 * await openEnvelope(envelope, bob, { ...options, maxAgeMs: 30 * day }); // Accepted.
 * ```
 */
export interface OpenOptions {
  /** The only context accepted. */
  context: string;
  /** Refuses a message id seen before. */
  replay?: ReplayGuard;
  /** The current time. @default Date.now() */
  now?: number;
  /** The oldest timestamp accepted, as an age. @default 30 days */
  maxAgeMs?: number;
  /** How far ahead a sender's clock may be. @default 5 minutes */
  maxSkewMs?: number;
}

/**
 * Opens an envelope addressed to `identity`. The signature is checked
 * first, then the context, the time and the replay guard; only then is
 * anything decrypted. Throws an {@linkcode EnvelopeError} saying which check
 * failed.
 *
 * @param bytes The envelope.
 * @param identity The recipient's identity.
 * @param options The context expected, the replay guard and the time limits.
 * @returns The verified header and the plaintext.
 *
 * @example Refuse an envelope meant for another context
 * ```ts
 * import { EnvelopeError, generateIdentity, openEnvelope, sealEnvelope } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const body = new TextEncoder().encode("rotate the keys");
 * const envelope = await sealEnvelope(alice, [bob.publicKey], body, { context: "room:ops" });
 *
 * const opened = await openEnvelope(envelope, bob, { context: "room:ops" });
 * assert.equal(new TextDecoder().decode(opened.body), "rotate the keys");
 * await assert.rejects(
 *   openEnvelope(envelope, bob, { context: "room:random" }),
 *   (error) => error instanceof EnvelopeError && error.reason === "context",
 * );
 * ```
 */
export async function openEnvelope(
  bytes: Uint8Array,
  identity: Identity,
  options: OpenOptions,
): Promise<OpenedEnvelope> {
  const envelope = parse(bytes);
  const verified = await ed25519Verify(
    envelope.sender.ed25519,
    envelope.signature,
    concat(SIGNATURE_CONTEXT, envelope.signed),
  );
  if (!verified) throw new EnvelopeError("signature", "The envelope's signature is not valid");
  if (envelope.context !== options.context) {
    throw new EnvelopeError(
      "context",
      `The envelope is for "${envelope.context}", not "${options.context}"`,
    );
  }
  const now = options.now ?? Date.now();
  if (envelope.timestamp > now + (options.maxSkewMs ?? 5 * 60_000)) {
    throw new EnvelopeError("future", "The envelope is dated in the future");
  }
  if (envelope.timestamp < now - (options.maxAgeMs ?? 30 * 24 * 3600_000)) {
    throw new EnvelopeError("expired", "The envelope is too old");
  }
  const mine = findEntry(envelope.recipients, identity);
  if (options.replay && !options.replay.remember(envelope.messageId)) {
    throw new EnvelopeError("replay", `Message ${envelope.messageId} was already received`);
  }
  const aad = concat(envelope.senderBytes, envelope.idBytes);
  const contentKey = unwrapEntry(ENVELOPE_RECIPIENTS, mine, identity, aad);
  let body: Uint8Array;
  try {
    body = CHACHA_POLY.open(contentKey, 0, envelope.header, envelope.sealedBody);
  } catch (error) {
    if (!(error instanceof DecryptError)) throw error;
    throw new EnvelopeError("body", "The body fails authentication");
  }
  const { sender, timestamp, messageId, context, bodyLength } = envelope;
  // The recipients are copied out now, since the caller may reuse `bytes`
  // once this returns, but split into arrays only if asked for (chat never does).
  const recipients = copyKeys(envelope.recipients);
  return {
    sender,
    timestamp,
    messageId,
    context,
    get recipients() {
      return recipients();
    },
    bodyLength,
    body,
  };
}
