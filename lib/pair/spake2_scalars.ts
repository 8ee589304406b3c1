/**
 * The parts of SPAKE2 (./spake2.ts) that need no curve arithmetic: sizes,
 * P-256's group order and scalar encodings. They live apart so that
 * `listen`, which reads invites and answers pairing attempts, loads
 * `@noble/curves` only when a client pairs: about 5 MB of a server's
 * resident memory otherwise held from the start.
 *
 * @module
 */

import { constantTimeEqual, toHex } from "../bytes.ts";

/** The order of P-256's group: scalars are taken modulo it (./spake2.ts checks it). */
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** A share (pA or pB) on the wire: a SEC1 uncompressed point. */
export const SHARE_LENGTH = 65;
/** A confirmation MAC: HMAC-SHA256. */
export const CONFIRMATION_LENGTH = 32;

/** Whether a received confirmation is the one expected, in constant time. */
export function confirmationMatches(expected: Uint8Array, received: Uint8Array): boolean {
  return constantTimeEqual(expected, received);
}

/** A scalar as 32 bytes, big-endian, as w enters the transcript. */
export function scalarBytes(scalar: bigint): Uint8Array {
  const hex = scalar.toString(16).padStart(64, "0");
  return Uint8Array.from(hex.match(/../g)!, (byte) => parseInt(byte, 16));
}

/** A big-endian byte string as a number. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + toHex(bytes));
}
