/**
 * Connecting to a server known by several addresses (the relays of a
 * cluster, one `address` line naming them all in ~/.ovtp/config): each is
 * tried in turn while it cannot be reached. Only a network failure moves
 * on; anything else, above all a host key that does not match known_hosts,
 * stops at once, since another address would not make it less alarming.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";

/**
 * The connection to the first of `addresses` that answers; each address
 * given up on is reported through `warn`. The last failure is thrown.
 */
export async function firstReachable<T>(
  addresses: readonly string[],
  connect: (address: string) => Promise<T>,
  warn: (line: string) => void,
): Promise<T> {
  for (let i = 0;; i++) {
    try {
      return await connect(addresses[i]);
    } catch (error) {
      const next = addresses[i + 1];
      if (next === undefined || !(error instanceof OvtpError) || error.kind !== "network") {
        throw error;
      }
      warn(`${error.message}; trying ${next}`);
    }
  }
}
