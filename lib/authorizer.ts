import type { LineError } from "./authorized_keys.ts";
import { samePublicKey } from "./keys.ts";
import type { Keystore } from "./keystore.ts";
import type { Authorizer } from "./server.ts";

/**
 * An authorizer that reads the keystore's authorized_keys on every
 * handshake, so `ovtp add-key` and `ovtp keys remove` take effect without a
 * restart. Malformed lines are skipped and reported through `onBadLine`.
 */
export function authorizedKeysAuthorizer(
  keystore: Keystore,
  onBadLine?: (error: LineError) => void,
): Authorizer {
  return async (key) => {
    const { entries, errors } = await keystore.readAuthorizedKeys();
    if (onBadLine) errors.forEach(onBadLine);
    const entry = entries.find((e) => samePublicKey(e.key, key));
    return entry ? { name: entry.name, options: entry.options } : undefined;
  };
}
