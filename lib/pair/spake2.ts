/**
 * SPAKE2 as RFC 9382 specifies it, with the ciphersuite
 * P256-SHA256-HKDF-HMAC: two parties that share a low-entropy secret `w`
 * derive a key and confirm it, and a party that does not know `w` learns
 * nothing from the exchange but whether its one guess was right.
 *
 * The group arithmetic is `@noble/curves`' P-256 (audited, constant-time
 * scalar multiplication); SHA-256, HKDF and HMAC come from the crypto module
 * like every other primitive of ovtp. This file only composes them as the
 * RFC says, and tests/spake2_test.ts checks it against the RFC's four test
 * vectors byte for byte.
 *
 * @module
 */

import { p256 } from "@noble/curves/nist.js";
import { concat, utf8 } from "../bytes.ts";
import { hkdfSha256, hmacSha256, sha256 } from "../crypto/mod.ts";
import { bytesToBigInt, P256_ORDER, scalarBytes, SHARE_LENGTH } from "./spake2_scalars.ts";

export {
  bytesToBigInt,
  CONFIRMATION_LENGTH,
  confirmationMatches,
  P256_ORDER,
  scalarBytes,
  SHARE_LENGTH,
} from "./spake2_scalars.ts";

const Point = p256.Point;
type P256Point = InstanceType<typeof Point>;

// The order written out in ./spake2_scalars.ts must be the curve's.
if (Point.Fn.ORDER !== P256_ORDER) throw new Error("P-256's order does not match");

/** RFC 9382 section 6: M for P-256 (SEC1 compressed). */
export const SPAKE2_M = "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f";
/** RFC 9382 section 6: N for P-256 (SEC1 compressed). */
export const SPAKE2_N = "03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49";

const M = Point.fromHex(SPAKE2_M);
const N = Point.fromHex(SPAKE2_N);

const CONFIRMATION_KEYS = utf8("ConfirmationKeys");

/** Which side of the exchange: A sends pA = w*M + x*P, B sends pB = w*N + y*P. */
export type Spake2Role = "A" | "B";

/** What both parties must agree on besides `w`. */
export interface Spake2Context {
  /** A's identity (may be empty; it is then still encoded, with length 0). */
  idA: Uint8Array;
  /** B's identity. */
  idB: Uint8Array;
  /** Additional authenticated data, mixed into the confirmation keys. @default empty */
  aad?: Uint8Array;
}

/** Everything the key schedule of RFC 9382 section 4 produces. */
export interface Spake2Result {
  /** The shared point K, uncompressed. */
  K: Uint8Array;
  /** The transcript TT. */
  TT: Uint8Array;
  /** The shared secret: the first half of Hash(TT). */
  Ke: Uint8Array;
  /** The second half of Hash(TT), from which the confirmation keys come. */
  Ka: Uint8Array;
  /** A's confirmation key. */
  KcA: Uint8Array;
  /** B's confirmation key. */
  KcB: Uint8Array;
  /** A's confirmation: MAC(KcA, TT). */
  cA: Uint8Array;
  /** B's confirmation: MAC(KcB, TT). */
  cB: Uint8Array;
}

/** Thrown when the peer's share is not a usable point. */
export class Spake2Error extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "Spake2Error";
  }
}

/** One side of a SPAKE2 exchange: its share, then the keys once the peer's share is in. */
export class Spake2 {
  readonly #role: Spake2Role;
  readonly #w: bigint;
  readonly #secret: bigint;
  /** This side's share, to send: pA for A, pB for B. */
  readonly share: Uint8Array;

  /**
   * Starts an exchange. `w` is the shared secret as a scalar in [1, p);
   * `secret` (x or y) is drawn at random unless given, which only the test
   * vectors do.
   */
  constructor(role: Spake2Role, w: bigint, secret?: bigint) {
    if (!(w > 0n && w < P256_ORDER)) throw new RangeError("w must be in [1, p)");
    const chosen = secret ?? randomScalar();
    if (!(chosen > 0n && chosen < P256_ORDER)) throw new RangeError("x or y must be in [1, p)");
    this.#role = role;
    this.#w = w;
    this.#secret = chosen;
    const mask = role === "A" ? M : N;
    this.share = Point.BASE.multiply(chosen).add(mask.multiply(w)).toBytes(false);
  }

  /**
   * Takes the peer's share and runs the key schedule. Throws a
   * {@linkcode Spake2Error} for a share that is not an uncompressed point
   * of P-256, or that makes K the identity (a share equal to w*M or w*N).
   */
  finish(peerShare: Uint8Array, context: Spake2Context): Spake2Result {
    const peer = decodeShare(peerShare);
    // A: K = x*(pB - w*N); B: K = y*(pA - w*M). P-256's cofactor is 1.
    const unmask = this.#role === "A" ? N : M;
    const base = peer.subtract(unmask.multiply(this.#w));
    if (base.is0()) throw new Spake2Error("The peer's share cancels the password's mask");
    const K = base.multiply(this.#secret).toBytes(false);
    const [pA, pB] = this.#role === "A" ? [this.share, peerShare] : [peerShare, this.share];
    return keySchedule({ context, pA, pB, K, w: this.#w });
  }
}

/** The transcript and key schedule of RFC 9382 sections 3.3 and 4. */
function keySchedule(input: {
  context: Spake2Context;
  pA: Uint8Array;
  pB: Uint8Array;
  K: Uint8Array;
  w: bigint;
}): Spake2Result {
  const { context, pA, pB, K, w } = input;
  const TT = concat(
    ...[context.idA, context.idB, pA, pB, K, scalarBytes(w)].flatMap((part) => [
      lengthPrefix(part),
      part,
    ]),
  );
  const hash = sha256(TT);
  const Ke = hash.slice(0, 16);
  const Ka = hash.slice(16);
  // KDF(Ka, nil, "ConfirmationKeys" || AAD): HKDF with Ka as the input
  // keying material and an empty salt.
  const info = concat(CONFIRMATION_KEYS, context.aad ?? new Uint8Array(0));
  const confirmationKeys = hkdfSha256(Ka, new Uint8Array(0), info, 32);
  const KcA = confirmationKeys.slice(0, 16);
  const KcB = confirmationKeys.slice(16);
  return { K, TT, Ke, Ka, KcA, KcB, cA: hmacSha256(KcA, TT), cB: hmacSha256(KcB, TT) };
}

/** `len(x)`: its length as eight bytes, little-endian (RFC 9382 section 3.1). */
function lengthPrefix(part: Uint8Array): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(part.length), true);
  return out;
}

function decodeShare(bytes: Uint8Array): P256Point {
  if (bytes.length !== SHARE_LENGTH || bytes[0] !== 0x04) {
    throw new Spake2Error(`A share is a ${SHARE_LENGTH}-byte uncompressed point`);
  }
  try {
    // fromBytes checks that the point is on the curve.
    return Point.fromBytes(bytes);
  } catch {
    throw new Spake2Error("The peer's share is not a point of P-256");
  }
}

/** A uniform scalar in [1, p): 40 random bytes reduced, a bias below 2^-64. */
function randomScalar(): bigint {
  while (true) {
    const scalar = bytesToBigInt(crypto.getRandomValues(new Uint8Array(40))) % P256_ORDER;
    if (scalar !== 0n) return scalar;
  }
}
