/**
 * Applies OVTP_CRYPTO (native, portable, auto) to an in-process benchmark,
 * as main.ts does for the CLI, and returns the line to print with the
 * results (which backend ran).
 *
 * @module
 */

import { cryptoBackendInfo, selectCryptoBackend } from "../lib/crypto/mod.ts";

/** Selects the backend OVTP_CRYPTO names; returns "crypto: NAME (DETAIL)". */
export function applyCryptoEnv(): string {
  const choice = Deno.env.get("OVTP_CRYPTO") || "auto";
  if (choice !== "auto" && choice !== "native" && choice !== "portable") {
    throw new Error(`Invalid OVTP_CRYPTO "${choice}": use native, portable or auto`);
  }
  selectCryptoBackend(choice);
  const info = cryptoBackendInfo();
  return `crypto: ${info.name} (${info.detail})`;
}
