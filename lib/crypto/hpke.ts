/**
 * HPKE (RFC 9180) as ovtp uses it, and only that: base mode,
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305. Key wrapping
 * (lib/recipients/key_wrap.ts) seals one message per context; a context still counts
 * its messages as RFC 9180 says, so the RFC's vectors for this suite can be
 * replayed in full (tests/hpke_test.ts). Auth mode, the AES-GCM ids and the
 * exporter were dropped: nothing in ovtp used them.
 *
 * Every primitive comes from lib/crypto/mod.ts (native OpenSSL or
 * node:crypto), synchronously: an envelope for 50 recipients makes 100
 * X25519 operations and 250 HMACs, where WebCrypto's per-call promise hops
 * used to dominate.
 *
 * @module
 */

import { concat, toHex, utf8 } from "../bytes.ts";
import {
  aeadOpen,
  aeadSeal,
  hkdfExpand,
  hkdfExtract,
  x25519Multi,
  x25519PublicOf,
  x25519Static,
} from "./mod.ts";

/** The one mode implemented: base (RFC 9180 section 5.1.1). */
export const MODE_BASE = 0x00;
/** The one AEAD implemented: ChaCha20-Poly1305 (RFC 9180 section 7.3). */
export const AEAD_CHACHA20_POLY1305 = 0x0003;

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const NK = 32;
const NN = 12;
const N_SECRET = 32;
const VERSION_LABEL = utf8("HPKE-v1");
const KEM_SUITE = concat(utf8("KEM"), i2osp(KEM_ID, 2));
const HPKE_SUITE = concat(
  utf8("HPKE"),
  i2osp(KEM_ID, 2),
  i2osp(KDF_ID, 2),
  i2osp(AEAD_CHACHA20_POLY1305, 2),
);
const EMPTY = new Uint8Array(0);

function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

// "HPKE-v1" || suite || label for each label used, encoded once: every
// recipient of an envelope costs five labeled steps.
const labelPrefixes = new Map<Uint8Array, Map<string, Uint8Array>>();

function labelPrefix(suite: Uint8Array, label: string): Uint8Array {
  let bySuite = labelPrefixes.get(suite);
  if (!bySuite) labelPrefixes.set(suite, bySuite = new Map());
  let prefix = bySuite.get(label);
  if (!prefix) bySuite.set(label, prefix = concat(VERSION_LABEL, suite, utf8(label)));
  return prefix;
}

function labeledExtract(suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) {
  return hkdfExtract(salt, concat(labelPrefix(suite, label), ikm));
}

function labeledExpand(
  suite: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
) {
  return hkdfExpand(prk, concat(i2osp(length, 2), labelPrefix(suite, label), info), length);
}

/** A raw X25519 key pair. */
export interface HpkeKeyPair {
  /** 32-byte private key. */
  privateKey: Uint8Array;
  /** 32-byte public key. */
  publicKey: Uint8Array;
}

/** DeriveKeyPair(ikm) of DHKEM(X25519, HKDF-SHA256) (RFC 9180 section 7.1.3). */
export function deriveKeyPair(ikm: Uint8Array): HpkeKeyPair {
  const prk = labeledExtract(KEM_SUITE, EMPTY, "dkp_prk", ikm);
  const privateKey = labeledExpand(KEM_SUITE, prk, "sk", EMPTY, 32);
  return { privateKey, publicKey: x25519PublicOf(privateKey) };
}

function extractAndExpand(dh: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = labeledExtract(KEM_SUITE, EMPTY, "eae_prk", dh);
  return labeledExpand(KEM_SUITE, prk, "shared_secret", kemContext, N_SECRET);
}

/**
 * Encap(pkR): a shared secret and its encapsulation `enc`, with a fresh
 * ephemeral key unless one is given (only to replay test vectors).
 */
export function encap(
  recipientPublic: Uint8Array,
  ephemeralPrivate: Uint8Array = crypto.getRandomValues(new Uint8Array(32)),
): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const { enc, sharedSecrets } = encapMany([recipientPublic], ephemeralPrivate);
  return { sharedSecret: sharedSecrets[0], enc };
}

/**
 * Encap to several recipients with one ephemeral key: the same `enc` for
 * all, and each recipient's own shared secret (its DH and its public key
 * enter the KDF). One X25519 operation per recipient instead of two; see
 * docs/security.md section 7 for why reusing the ephemeral key across the
 * recipients of one message is sound.
 */
export function encapMany(
  recipientPublics: readonly Uint8Array[],
  ephemeralPrivate: Uint8Array = crypto.getRandomValues(new Uint8Array(32)),
): { enc: Uint8Array; sharedSecrets: Uint8Array[] } {
  // The ephemeral public key and every DH from one key import.
  const { publicKey: enc, shared } = x25519Multi(ephemeralPrivate, recipientPublics);
  return {
    enc,
    sharedSecrets: shared.map((dh, i) => extractAndExpand(dh, concat(enc, recipientPublics[i]))),
  };
}

/** Decap(enc, skR); skR is a long-lived key (an identity's), kept imported. */
export function decap(enc: Uint8Array, recipient: HpkeKeyPair): Uint8Array {
  const dh = x25519Static(recipient.privateKey, enc);
  return extractAndExpand(dh, concat(enc, recipient.publicKey));
}

// key_schedule_context depends only on `info` here, and an envelope uses
// one `info` for every recipient: derive it once (two HMACs saved per
// recipient).
const scheduleContexts = new Map<string, Uint8Array>();
const MAX_CACHED_CONTEXTS = 16;

function scheduleContext(info: Uint8Array): Uint8Array {
  const cacheKey = toHex(info);
  let context = scheduleContexts.get(cacheKey);
  if (!context) {
    const pskIdHash = labeledExtract(HPKE_SUITE, EMPTY, "psk_id_hash", EMPTY);
    const infoHash = labeledExtract(HPKE_SUITE, EMPTY, "info_hash", info);
    context = concat(new Uint8Array([MODE_BASE]), pskIdHash, infoHash);
    if (scheduleContexts.size >= MAX_CACHED_CONTEXTS) scheduleContexts.clear();
    scheduleContexts.set(cacheKey, context);
  }
  return context;
}

/**
 * An HPKE encryption context (RFC 9180 section 5.2): seals or opens
 * messages in sequence, each with the base nonce XOR its sequence number.
 */
export class HpkeContext {
  #key: Uint8Array;
  #baseNonce: Uint8Array;
  #sequence = 0;

  /** KeySchedule(mode_base, shared_secret, info, "", ""). */
  constructor(sharedSecret: Uint8Array, info: Uint8Array) {
    const context = scheduleContext(info);
    const secret = labeledExtract(HPKE_SUITE, sharedSecret, "secret", EMPTY);
    this.#key = labeledExpand(HPKE_SUITE, secret, "key", context, NK);
    this.#baseNonce = labeledExpand(HPKE_SUITE, secret, "base_nonce", context, NN);
  }

  /** Seals the next message. */
  seal(aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = aeadSeal("chacha20-poly1305", this.#key, this.#nonce(), aad, plaintext);
    this.#sequence++;
    return out;
  }

  /** Opens the next message; throws Error("Decryption failed"), without advancing, on a bad tag. */
  open(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const out = aeadOpen("chacha20-poly1305", this.#key, this.#nonce(), aad, ciphertext);
    if (out === undefined) throw new Error("Decryption failed");
    this.#sequence++;
    return out;
  }

  #nonce(): Uint8Array {
    const nonce = this.#baseNonce.slice();
    const seq = i2osp(this.#sequence, NN);
    for (let i = 0; i < NN; i++) nonce[i] ^= seq[i];
    return nonce;
  }
}

/** SetupBaseS: a sender's context and the `enc` to send. */
export function setupSender(
  recipientPublic: Uint8Array,
  info: Uint8Array,
  ephemeralPrivate?: Uint8Array,
): { enc: Uint8Array; context: HpkeContext } {
  const { sharedSecret, enc } = encap(recipientPublic, ephemeralPrivate);
  return { enc, context: new HpkeContext(sharedSecret, info) };
}

/** SetupBaseS for each of `recipientPublics`, sharing one `enc` (see {@linkcode encapMany}). */
export function setupSenders(
  recipientPublics: readonly Uint8Array[],
  info: Uint8Array,
  ephemeralPrivate?: Uint8Array,
): { enc: Uint8Array; contexts: HpkeContext[] } {
  const { enc, sharedSecrets } = encapMany(recipientPublics, ephemeralPrivate);
  return { enc, contexts: sharedSecrets.map((secret) => new HpkeContext(secret, info)) };
}

/** SetupBaseR: a recipient's context. */
export function setupRecipient(
  enc: Uint8Array,
  recipient: HpkeKeyPair,
  info: Uint8Array,
): HpkeContext {
  return new HpkeContext(decap(enc, recipient), info);
}
