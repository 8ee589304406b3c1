/**
 * Pairing codes: `N-DDDD-DDDD`, an invite number (the "nameplate", not
 * secret: it tells the server which invite is meant) and eight random
 * digits (the secret), short enough to read aloud over a phone.
 *
 * Eight decimal digits are 10^8 (about 2^26.6) codes. SPAKE2 gives an
 * attacker no offline test of a guess: each guess costs a connection that
 * the server counts, and three wrong ones revoke the invite, so one invite
 * falls to guessing with a probability of at most 3 / 10^8.
 *
 * @module
 */

import { utf8 } from "../bytes.ts";
import { hkdfSha256 } from "../crypto/mod.ts";
import { bytesToBigInt, P256_ORDER } from "./spake2_scalars.ts";

/** The largest invite number. */
export const MAX_NAMEPLATE = 9999;
/** Secret digits in a code. */
export const SECRET_DIGITS = 8;

/**
 * A parsed pairing code.
 *
 * @example The parts of a code
 * ```ts
 * import { type PairCode, parseCode } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const code: PairCode = parseCode("7-4213-8890");
 * assert.deepEqual(code, { nameplate: 7, secret: "42138890" });
 * ```
 */
export interface PairCode {
  /** The invite number, 1..9999. */
  nameplate: number;
  /** The eight secret digits. */
  secret: string;
}

const CODE_INFO = utf8("ovtp/1 pair code");

/** Draws the secret digits of a new code, uniformly. */
export function randomSecret(): string {
  const limit = 42 * 10 ** SECRET_DIGITS; // The largest multiple of 10^8 below 2^32.
  const word = new Uint32Array(1);
  do crypto.getRandomValues(word); while (word[0] >= limit);
  return String(word[0] % 10 ** SECRET_DIGITS).padStart(SECRET_DIGITS, "0");
}

/**
 * The code as it is shown: `7-4213-8890`.
 *
 * @param code The code.
 * @returns Its text.
 *
 * @example
 * ```ts
 * import { formatCode } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatCode({ nameplate: 7, secret: "42138890" }), "7-4213-8890");
 * ```
 */
export function formatCode(code: PairCode): string {
  return `${code.nameplate}-${code.secret.slice(0, 4)}-${code.secret.slice(4)}`;
}

/**
 * Parses a code as a person may type it: `7-4213-8890`, `7 4213 8890` or
 * `7-42138890`. Throws a SyntaxError that says what is expected.
 *
 * @param text The code as typed.
 * @returns The invite number and the secret digits.
 *
 * @example
 * ```ts
 * import { parseCode } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseCode(" 7 4213 8890 "), parseCode("7-4213-8890"));
 * assert.throws(() => parseCode("7-4213"), SyntaxError);
 * ```
 */
export function parseCode(text: string): PairCode {
  const match = /^([1-9]\d{0,3})[-\s]+(\d{4})[-\s]?(\d{4})$/.exec(text.trim());
  if (!match) {
    throw new SyntaxError(
      `Invalid pairing code "${text}": expected the invite's code, like 7-4213-8890`,
    );
  }
  return { nameplate: Number(match[1]), secret: match[2] + match[3] };
}

/**
 * The SPAKE2 secret w of a code: HKDF-SHA256 of its canonical form, 40
 * bytes reduced modulo P-256's order (RFC 9382 section 3.2 asks for 64
 * bits more than the order has, so that the bias is negligible). There is
 * no memory-hard function: it slows down offline guessing, which SPAKE2
 * rules out, and the code lives ten minutes.
 */
export function codeScalar(code: PairCode): bigint {
  const canonical = utf8(`${code.nameplate}-${code.secret}`);
  const w = bytesToBigInt(hkdfSha256(canonical, new Uint8Array(0), CODE_INFO, 40)) % P256_ORDER;
  if (w === 0n) throw new RangeError("This code maps to w = 0; draw another");
  return w;
}
