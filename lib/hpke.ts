/**
 * HPKE (RFC 9180) with DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256, in base
 * and auth modes, single-shot and with a context for several messages. The
 * envelope uses it to wrap a content key for each recipient.
 *
 * X25519 and HKDF's Extract and Expand (HMAC-SHA256) run synchronously on
 * node:crypto: HPKE needs Extract and Expand apart (WebCrypto only offers
 * them fused), and an envelope for 50 recipients makes several hundred such
 * calls, where WebCrypto's per-call cost dominated (see lib/_x25519.ts).
 * ChaCha20-Poly1305 runs on node:crypto too (lib/_chacha.ts); the AES-GCM
 * ids use WebCrypto.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { concat, toHex, utf8 } from "./bytes.ts";
import { type AeadAlgorithm, aeadOpen, aeadSeal, x25519PublicOf } from "./_webcrypto.ts";
import { chachaOpen, chachaSeal } from "./_chacha.ts";
import { generateX25519Sync, x25519Sync } from "./_x25519.ts";

/** HPKE modes this module implements. */
export const Mode = { Base: 0x00, Auth: 0x02 } as const;

/** AEAD ids (RFC 9180 section 7.3) and their key and nonce sizes. */
export const AEADS: Record<number, { algorithm: AeadAlgorithm; nk: number }> = {
  1: { algorithm: "AES-128-GCM", nk: 16 },
  2: { algorithm: "AES-256-GCM", nk: 32 },
  3: { algorithm: "ChaCha20-Poly1305", nk: 32 },
};

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const NN = 12;
const NH = 32;
const N_SECRET = 32;
const VERSION_LABEL = utf8("HPKE-v1");
const KEM_SUITE = concat(utf8("KEM"), i2osp(KEM_ID, 2));
const EMPTY = new Uint8Array(0);

function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

/** HKDF-Extract; an empty salt means HashLen zero bytes (RFC 5869). */
function extract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmac(salt.length > 0 ? salt : new Uint8Array(NH), ikm);
}

function expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let previous: Uint8Array = EMPTY;
  for (let i = 0, offset = 0; offset < length; i++) {
    previous = hmac(prk, concat(previous, info, new Uint8Array([i + 1])));
    out.set(previous.subarray(0, Math.min(NH, length - offset)), offset);
    offset += NH;
  }
  return out;
}

function labeledExtract(suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) {
  return extract(salt, concat(VERSION_LABEL, suite, utf8(label), ikm));
}

function labeledExpand(
  suite: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
) {
  return expand(prk, concat(i2osp(length, 2), VERSION_LABEL, suite, utf8(label), info), length);
}

/** A raw X25519 key pair. */
export interface HpkeKeyPair {
  /** 32-byte private key. */
  privateKey: Uint8Array;
  /** 32-byte public key. */
  publicKey: Uint8Array;
}

/** DeriveKeyPair(ikm) of DHKEM(X25519, HKDF-SHA256) (RFC 9180 section 7.1.3). */
export async function deriveKeyPair(ikm: Uint8Array): Promise<HpkeKeyPair> {
  const prk = labeledExtract(KEM_SUITE, EMPTY, "dkp_prk", ikm);
  const privateKey = labeledExpand(KEM_SUITE, prk, "sk", EMPTY, 32);
  return { privateKey, publicKey: await x25519PublicOf(privateKey) };
}

function extractAndExpand(dh: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = labeledExtract(KEM_SUITE, EMPTY, "eae_prk", dh);
  return labeledExpand(KEM_SUITE, prk, "shared_secret", kemContext, N_SECRET);
}

/** Options for encapsulation: a fixed ephemeral key (tests) and a sender key (auth mode). */
export interface EncapOptions {
  /** The ephemeral key pair; fresh when absent. Fixed only to replay test vectors. */
  ephemeral?: HpkeKeyPair;
  /** The sender's static key pair, for auth mode. */
  sender?: HpkeKeyPair;
}

/** Encap / AuthEncap: a shared secret and its encapsulation `enc`. */
export function encap(
  recipientPublic: Uint8Array,
  options: EncapOptions = {},
): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const ephemeral = options.ephemeral ?? generateX25519Sync();
  const dh = [x25519Sync(ephemeral.privateKey, recipientPublic)];
  const context = [ephemeral.publicKey, recipientPublic];
  if (options.sender) {
    dh.push(x25519Sync(options.sender.privateKey, recipientPublic));
    context.push(options.sender.publicKey);
  }
  return {
    sharedSecret: extractAndExpand(concat(...dh), concat(...context)),
    enc: ephemeral.publicKey,
  };
}

/** Decap / AuthDecap. */
export function decap(
  enc: Uint8Array,
  recipient: HpkeKeyPair,
  senderPublic?: Uint8Array,
): Uint8Array {
  const dh = [x25519Sync(recipient.privateKey, enc)];
  const context = [enc, recipient.publicKey];
  if (senderPublic) {
    dh.push(x25519Sync(recipient.privateKey, senderPublic));
    context.push(senderPublic);
  }
  return extractAndExpand(concat(...dh), concat(...context));
}

/** The key schedule's outputs (RFC 9180 section 5.1). */
export interface KeySchedule {
  /** The AEAD key. */
  key: Uint8Array;
  /** The base nonce. */
  baseNonce: Uint8Array;
  /** The exporter secret, derived when first asked (envelopes never ask). */
  exporterSecret: () => Uint8Array;
}

// key_schedule_context depends only on the mode, the suite and `info`, and an
// envelope uses one `info` for every recipient: derive it once (two HMACs
// saved per recipient).
const scheduleContexts = new Map<string, Uint8Array>();
const MAX_CACHED_CONTEXTS = 64;

function scheduleContext(suite: Uint8Array, mode: number, info: Uint8Array): Uint8Array {
  const cacheKey = `${toHex(suite)}:${mode}:${toHex(info)}`;
  let context = scheduleContexts.get(cacheKey);
  if (!context) {
    const pskIdHash = labeledExtract(suite, EMPTY, "psk_id_hash", EMPTY);
    const infoHash = labeledExtract(suite, EMPTY, "info_hash", info);
    context = concat(new Uint8Array([mode]), pskIdHash, infoHash);
    if (scheduleContexts.size >= MAX_CACHED_CONTEXTS) scheduleContexts.clear();
    scheduleContexts.set(cacheKey, context);
  }
  return context;
}

/** KeySchedule<ROLE>(mode, shared_secret, info, "", "") for AEAD `aeadId`. */
export function keySchedule(
  mode: number,
  sharedSecret: Uint8Array,
  info: Uint8Array,
  aeadId: number,
): KeySchedule {
  const suite = concat(utf8("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(aeadId, 2));
  const context = scheduleContext(suite, mode, info);
  const secret = labeledExtract(suite, sharedSecret, "secret", EMPTY);
  return {
    key: labeledExpand(suite, secret, "key", context, AEADS[aeadId].nk),
    baseNonce: labeledExpand(suite, secret, "base_nonce", context, NN),
    exporterSecret: () => labeledExpand(suite, secret, "exp", context, NH),
  };
}

/**
 * An HPKE encryption context: seals or opens messages in sequence, each
 * with the base nonce XOR its sequence number.
 */
export class HpkeContext {
  #schedule: KeySchedule;
  #aeadId: number;
  #suite: Uint8Array;
  #sequence = 0;

  /** Wraps a key schedule for `aeadId`. */
  constructor(schedule: KeySchedule, aeadId: number) {
    this.#schedule = schedule;
    this.#aeadId = aeadId;
    this.#suite = concat(utf8("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(aeadId, 2));
  }

  /** Seals the next message. */
  async seal(aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    const { algorithm } = AEADS[this.#aeadId];
    const out = algorithm === "ChaCha20-Poly1305"
      ? chachaSeal(this.#schedule.key, this.#nonce(), aad, plaintext)
      : await aeadSeal(algorithm, this.#schedule.key, this.#nonce(), aad, plaintext);
    this.#sequence++;
    return out;
  }

  /** Opens the next message; throws on a bad tag, without advancing. */
  async open(aad: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array> {
    const { algorithm } = AEADS[this.#aeadId];
    const out = algorithm === "ChaCha20-Poly1305"
      ? chachaOpen(this.#schedule.key, this.#nonce(), aad, ciphertext)
      : await aeadOpen(algorithm, this.#schedule.key, this.#nonce(), aad, ciphertext);
    this.#sequence++;
    return out;
  }

  /** Export(exporter_context, L). */
  export(exporterContext: Uint8Array, length: number): Uint8Array {
    return labeledExpand(
      this.#suite,
      this.#schedule.exporterSecret(),
      "sec",
      exporterContext,
      length,
    );
  }

  #nonce(): Uint8Array {
    const nonce = this.#schedule.baseNonce.slice();
    const seq = i2osp(this.#sequence, NN);
    for (let i = 0; i < NN; i++) nonce[i] ^= seq[i];
    return nonce;
  }
}

/** SetupBaseS / SetupAuthS: a sender's context and the `enc` to send. */
export function setupSender(
  recipientPublic: Uint8Array,
  info: Uint8Array,
  aeadId: number,
  options: EncapOptions = {},
): { enc: Uint8Array; context: HpkeContext } {
  const { sharedSecret, enc } = encap(recipientPublic, options);
  const mode = options.sender ? Mode.Auth : Mode.Base;
  return { enc, context: new HpkeContext(keySchedule(mode, sharedSecret, info, aeadId), aeadId) };
}

/** SetupBaseR / SetupAuthR: a recipient's context. */
export function setupRecipient(
  enc: Uint8Array,
  recipient: HpkeKeyPair,
  info: Uint8Array,
  aeadId: number,
  senderPublic?: Uint8Array,
): HpkeContext {
  const sharedSecret = decap(enc, recipient, senderPublic);
  const mode = senderPublic ? Mode.Auth : Mode.Base;
  return new HpkeContext(keySchedule(mode, sharedSecret, info, aeadId), aeadId);
}
