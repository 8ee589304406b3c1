import type { LineError } from "./authorized_keys.ts";
import { samePublicKey } from "./keys.ts";
import type { Keystore } from "./keystore.ts";
import type { Authorizer } from "./server.ts";

/**
 * An authorizer that reads the keystore's authorized_keys on every
 * handshake, so `ovtp add-key` and `ovtp keys remove` take effect without a
 * restart. Malformed lines are skipped and reported through `onBadLine`.
 *
 * @param keystore The keystore whose authorized_keys decides.
 * @param onBadLine Told of each malformed line, on every handshake.
 * @returns An `authorize` callback for {@linkcode serve}.
 *
 * @example Who may connect, as authorized_keys says
 * ```ts
 * import {
 *   authorizedKeysAuthorizer,
 *   generateIdentity,
 *   Keystore,
 *   type LineError,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const alice = await generateIdentity();
 * await keystore.addAuthorizedKey(alice.publicKey, "alice", { allow: ["upload"] });
 *
 * const bad: LineError[] = [];
 * const authorize = authorizedKeysAuthorizer(keystore, (error) => bad.push(error));
 * assert.deepEqual(await authorize(alice.publicKey), {
 *   name: "alice",
 *   options: { allow: ["upload"] },
 * });
 * assert.equal(await authorize((await generateIdentity()).publicKey), undefined);
 *
 * // Removing the key takes effect at the next handshake.
 * await keystore.removeAuthorizedKey("alice");
 * assert.equal(await authorize(alice.publicKey), undefined);
 * assert.equal(bad.length, 0);
 * await Deno.remove(home, { recursive: true });
 * ```
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
