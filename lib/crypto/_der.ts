/**
 * Raw 32-byte curve keys wrapped in DER (RFC 8410), the only form in which
 * node:crypto imports them: PKCS#8 v1 for a private key, SPKI for a public
 * one. X25519 and Ed25519 differ only in the algorithm's OID.
 *
 * @module
 */

import { concat } from "../bytes.ts";

/** The curves, by the last byte of their OID 1.3.101.x. */
export const X25519_OID = 0x6e;
/** Ed25519's OID, 1.3.101.112. */
export const ED25519_OID = 0x70;

/** A PKCS#8 v1 private key `seed` of the curve `oid`. */
export function pkcs8(oid: number, seed: Uint8Array): Uint8Array {
  // SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING { OCTET STRING(32) } }
  // deno-fmt-ignore
  const prefix = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, oid, 0x04, 0x22, 0x04, 0x20];
  return concat(Uint8Array.from(prefix), seed);
}

/** An SPKI public key `raw` of the curve `oid`. */
export function spki(oid: number, raw: Uint8Array): Uint8Array {
  // SEQUENCE { SEQUENCE { OID }, BIT STRING(32) }
  // deno-fmt-ignore
  const prefix = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, oid, 0x03, 0x21, 0x00];
  return concat(Uint8Array.from(prefix), raw);
}
