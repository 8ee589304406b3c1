/**
 * Identity keys and their text forms: the public line
 * `ovtp1 <base64url of X25519 || Ed25519 public keys> [comment]` and the
 * OpenSSH-style fingerprint `SHA256:<unpadded base64>`.
 *
 * @module
 */

import {
  concat,
  constantTimeEqual,
  fromBase64Url,
  toBase64Unpadded,
  toBase64Url,
} from "../bytes.ts";
import {
  ed25519PublicOf,
  generateEd25519,
  generateX25519,
  sha256,
  x25519PublicOf,
} from "../crypto/mod.ts";

/** The label that starts every public key line. */
export const PUBLIC_KEY_LABEL = "ovtp1";
/** Length of each raw key. */
export const KEY_LENGTH = 32;

/**
 * A peer's public identity: its key-agreement and signing keys.
 *
 * @example A key rebuilt from its two halves
 * ```ts
 * import { formatPublicKey, generateIdentity, type PublicKey, samePublicKey } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * assert.equal(publicKey.x25519.length, 32);
 * assert.equal(publicKey.ed25519.length, 32);
 *
 * const stored: PublicKey = {
 *   x25519: publicKey.x25519.slice(),
 *   ed25519: publicKey.ed25519.slice(),
 * };
 * assert.ok(samePublicKey(stored, publicKey));
 * assert.equal(formatPublicKey(stored), formatPublicKey(publicKey));
 * ```
 */
export interface PublicKey {
  /** X25519 public key: the channel's static key and envelope recipient. */
  readonly x25519: Uint8Array;
  /** Ed25519 public key: verifies the peer's signatures. */
  readonly ed25519: Uint8Array;
}

/**
 * A full identity: both private keys and the public key. Keep it secret:
 * {@linkcode Keystore} stores it in a 0600 file, optionally sealed with a
 * passphrase.
 *
 * @example An identity signs what it seals
 * ```ts
 * import {
 *   generateIdentity,
 *   type Identity,
 *   parseEnvelope,
 *   samePublicKey,
 *   sealEnvelope,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice: Identity = await generateIdentity();
 * const bob: Identity = await generateIdentity();
 * assert.equal(alice.x25519Private.length, 32);
 * assert.equal(alice.ed25519Private.length, 32);
 *
 * const envelope = await sealEnvelope(alice, [bob.publicKey], new Uint8Array([1]), {
 *   context: "note",
 * });
 * assert.ok(samePublicKey(parseEnvelope(envelope).sender, alice.publicKey));
 * ```
 */
export interface Identity {
  /** X25519 private key (32 bytes). */
  readonly x25519Private: Uint8Array;
  /** Ed25519 private seed (32 bytes). */
  readonly ed25519Private: Uint8Array;
  /** The matching public key. */
  readonly publicKey: PublicKey;
}

/**
 * A public key line parsed into its key and comment.
 *
 * @example A line with and without a comment
 * ```ts
 * import {
 *   formatPublicKey,
 *   generateIdentity,
 *   parsePublicKey,
 *   type PublicKeyLine,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const named: PublicKeyLine = parsePublicKey(formatPublicKey(publicKey, "alice@laptop"));
 * assert.equal(named.comment, "alice@laptop");
 *
 * const bare: PublicKeyLine = parsePublicKey(formatPublicKey(publicKey));
 * assert.equal(bare.comment, "");
 * ```
 */
export interface PublicKeyLine {
  /** The key. */
  readonly key: PublicKey;
  /** The comment after the key, or "" when there is none. */
  readonly comment: string;
}

/**
 * Generates a new identity from the system's CSPRNG (through WebCrypto).
 *
 * @returns A fresh identity, held only in memory: save it with
 * {@linkcode Keystore.createIdentity} instead when it must last.
 *
 * @example Two fresh identities
 * ```ts
 * import { generateIdentity, samePublicKey } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * assert.equal(alice.x25519Private.length, 32);
 * assert.equal(alice.publicKey.ed25519.length, 32);
 * assert.ok(!samePublicKey(alice.publicKey, bob.publicKey));
 * ```
 */
export async function generateIdentity(): Promise<Identity> {
  const [x, ed] = await Promise.all([generateX25519(), generateEd25519()]);
  return {
    x25519Private: x.privateKey,
    ed25519Private: ed.privateKey,
    publicKey: { x25519: x.publicKey, ed25519: ed.publicKey },
  };
}

/** Rebuilds an identity from its two private keys. */
export async function identityFromPrivateKeys(
  x25519Private: Uint8Array,
  ed25519Private: Uint8Array,
): Promise<Identity> {
  const [x25519, ed25519] = await Promise.all([
    x25519PublicOf(x25519Private),
    ed25519PublicOf(ed25519Private),
  ]);
  return { x25519Private, ed25519Private, publicKey: { x25519, ed25519 } };
}

/** The 64 bytes that identify a public key: X25519 then Ed25519. */
export function publicKeyBytes(key: PublicKey): Uint8Array {
  return concat(key.x25519, key.ed25519);
}

/** Splits 64 public key bytes into a PublicKey. */
export function publicKeyFromBytes(bytes: Uint8Array): PublicKey {
  if (bytes.length !== 2 * KEY_LENGTH) {
    throw new RangeError(
      `A public key is ${2 * KEY_LENGTH} bytes, not ${bytes.length}`,
    );
  }
  return {
    x25519: bytes.slice(0, KEY_LENGTH),
    ed25519: bytes.slice(KEY_LENGTH),
  };
}

/**
 * Whether two public keys are the same (both halves), in constant time.
 * Compare keys with it, never with `===` (they hold byte arrays).
 *
 * @param a A key.
 * @param b Another key.
 * @returns Whether both the X25519 and the Ed25519 halves are equal.
 *
 * @example Recognize a key read back from its line
 * ```ts
 * import { formatPublicKey, generateIdentity, parsePublicKey, samePublicKey } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const { key } = parsePublicKey(formatPublicKey(alice.publicKey));
 * assert.ok(key !== alice.publicKey);
 * assert.ok(samePublicKey(key, alice.publicKey));
 * assert.ok(!samePublicKey(key, bob.publicKey));
 * ```
 */
export function samePublicKey(a: PublicKey, b: PublicKey): boolean {
  // Both halves are compared in full, so the time does not depend on which.
  const x = constantTimeEqual(a.x25519, b.x25519);
  const ed = constantTimeEqual(a.ed25519, b.ed25519);
  return x && ed;
}

/**
 * Formats a public key line: `ovtp1 <key> [comment]`, the key being the
 * unpadded base64url of its 64 bytes.
 *
 * @param key The key.
 * @param comment Text after the key, such as `user@host`.
 * @returns The line, without a newline.
 *
 * @example The line of id_ovtp.pub
 * ```ts
 * import { formatPublicKey, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * assert.match(formatPublicKey(publicKey, "bob@server"), /^ovtp1 [A-Za-z0-9_-]{86} bob@server$/);
 * assert.match(formatPublicKey(publicKey), /^ovtp1 [A-Za-z0-9_-]{86}$/);
 * ```
 */
export function formatPublicKey(key: PublicKey, comment = ""): string {
  const line = `${PUBLIC_KEY_LABEL} ${toBase64Url(publicKeyBytes(key))}`;
  return comment ? `${line} ${comment}` : line;
}

/**
 * Parses a public key line. Throws a SyntaxError that says what is wrong:
 * the label, the encoding, or the length.
 *
 * @param line The line, as {@linkcode formatPublicKey} writes it; surrounding
 * white space is ignored.
 * @returns The key and the comment.
 *
 * @example Read a key someone sent you
 * ```ts
 * import { formatPublicKey, generateIdentity, parsePublicKey, samePublicKey } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const pasted = `  ${formatPublicKey(publicKey, "carol")}\n`;
 * const { key, comment } = parsePublicKey(pasted);
 * assert.ok(samePublicKey(key, publicKey));
 * assert.equal(comment, "carol");
 *
 * assert.throws(() => parsePublicKey("ssh-ed25519 AAAAC3Nza carol"), SyntaxError);
 * assert.throws(() => parsePublicKey("ovtp1 AAAA"), /has 3 bytes/);
 * ```
 */
export function parsePublicKey(line: string): PublicKeyLine {
  const trimmed = line.trim();
  const match = /^(\S+)(?:\s+(\S+))?(?:\s+([\s\S]*))?$/.exec(trimmed);
  if (!trimmed || !match) throw new SyntaxError("The key line is empty");
  const [, label, encoded, comment = ""] = match;
  if (label !== PUBLIC_KEY_LABEL) {
    throw new SyntaxError(
      `Expected a key starting with "${PUBLIC_KEY_LABEL}", found "${label.slice(0, 20)}"`,
    );
  }
  if (!encoded) throw new SyntaxError('The key is missing after "ovtp1"');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(encoded);
  } catch {
    throw new SyntaxError("The key is not valid base64url");
  }
  if (bytes.length !== 2 * KEY_LENGTH) {
    throw new SyntaxError(
      `The key has ${bytes.length} bytes; an ovtp1 key has ${2 * KEY_LENGTH}`,
    );
  }
  if (hasControlCharacters(comment)) {
    throw new SyntaxError("The comment contains control characters");
  }
  return { key: publicKeyFromBytes(bytes), comment: comment.trim() };
}

/**
 * The fingerprint of a public key, as OpenSSH shows them:
 * `SHA256:` and the unpadded base64 of SHA-256 over the 64 key bytes.
 *
 * @param key The key.
 * @returns The fingerprint, e.g. `SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU`.
 *
 * @example Compare fingerprints read aloud
 * ```ts
 * import { fingerprint, formatPublicKey, generateIdentity, parsePublicKey } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const server = await generateIdentity();
 * const shown = await fingerprint(server.publicKey);
 * assert.match(shown, /^SHA256:[A-Za-z0-9+/]{43}$/);
 *
 * const { key } = parsePublicKey(formatPublicKey(server.publicKey));
 * assert.equal(await fingerprint(key), shown);
 * assert.notEqual(await fingerprint((await generateIdentity()).publicKey), shown);
 * ```
 */
export async function fingerprint(key: PublicKey): Promise<string> {
  return `SHA256:${toBase64Unpadded(await sha256(publicKeyBytes(key)))}`;
}

/**
 * Whether `text` holds a character that is not shown as itself: a control
 * character (see {@linkcode hasControlCharacters}) or a format character
 * (Unicode Cf: bidi overrides and isolates, zero-width spaces and joiners).
 * Names (of keys, of chat members) must not: "alice\u202e" looks like
 * another name than it is, and a zero-width space makes two names that look
 * the same.
 */
export function hasHiddenCharacters(text: string): boolean {
  return hasControlCharacters(text) || /\p{Cf}/u.test(text);
}

/**
 * Whether `text` holds a control character: C0, DEL, C1, or the Unicode line
 * and paragraph separators, any of which could break a line-based file or
 * disguise what a terminal shows.
 */
export function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029) {
      return true;
    }
  }
  return false;
}
