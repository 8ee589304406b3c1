/**
 * Trust on first use for server keys, as OpenSSH does: an unknown host is
 * recorded (or refused in strict mode), a changed key is always refused.
 *
 * @module
 */

import { OvtpError } from "./errors.ts";
import { fingerprint, type PublicKey, samePublicKey } from "./keys.ts";
import type { Keystore } from "./keystore.ts";

/**
 * Options of {@linkcode knownHostsVerifier}.
 *
 * @example Strict mode, then trust on first use
 * ```ts
 * import {
 *   generateIdentity,
 *   type HostTrustOptions,
 *   Keystore,
 *   knownHostsVerifier,
 *   OvtpError,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const server = await generateIdentity();
 *
 * const strict: HostTrustOptions = { strict: true };
 * const refuse = knownHostsVerifier(keystore, "backup.example:4747", strict);
 * await assert.rejects(refuse(server.publicKey), OvtpError);
 *
 * const seen: string[] = [];
 * const options: HostTrustOptions = { onNewHost: (host, fp) => seen.push(`${host} ${fp}`) };
 * await knownHostsVerifier(keystore, "backup.example:4747", options)(server.publicKey);
 * assert.equal(seen.length, 1);
 * assert.match(seen[0], /^backup\.example:4747 SHA256:/);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface HostTrustOptions {
  /** Refuse hosts not yet in known_hosts. @default false */
  strict?: boolean;
  /** Told when a new host is recorded, with its fingerprint. */
  onNewHost?: (host: string, fingerprint: string) => void;
}

/**
 * Returns a `verifyHost` callback for {@linkcode OvtpClient.connect} that
 * checks `host` (as `hostname:port`) against the keystore's known_hosts: an
 * unknown host is recorded (unless `strict`), a known one must present the
 * same key, or the callback throws an {@linkcode OvtpError} of kind `trust`.
 *
 * @param keystore The keystore whose known_hosts is read and written.
 * @param host The server, as `hostname:port`.
 * @param options Strict mode and a callback for new hosts.
 * @returns The callback to pass as `verifyHost`.
 *
 * @example A changed server key is refused
 * ```ts
 * import { generateIdentity, Keystore, knownHostsVerifier, OvtpError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const verifyHost = knownHostsVerifier(keystore, "backup.example:4747");
 *
 * const server = await generateIdentity();
 * await verifyHost(server.publicKey); // First use: recorded.
 * await verifyHost(server.publicKey); // Same key: accepted.
 *
 * const impostor = await generateIdentity();
 * await assert.rejects(verifyHost(impostor.publicKey), (error) => {
 *   assert.ok(error instanceof OvtpError);
 *   assert.equal(error.kind, "trust");
 *   assert.match(error.message, /has changed/);
 *   return true;
 * });
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export function knownHostsVerifier(
  keystore: Keystore,
  host: string,
  options: HostTrustOptions = {},
): (key: PublicKey) => Promise<void> {
  return async (key) => {
    const known = await keystore.findKnownHost(host);
    const fp = await fingerprint(key);
    if (known) {
      if (samePublicKey(known.key, key)) return;
      throw new OvtpError(
        "trust",
        `The key of host ${host} has changed to ${fp} (was ${await fingerprint(
          known.key,
        )}): someone may be intercepting the connection`,
        {
          hint: `if the server's key was replaced on purpose, delete line ${known.line} of "${
            keystore.path("knownHosts")
          }" and connect again`,
        },
      );
    }
    if (options.strict) {
      throw new OvtpError("trust", `Unknown host ${host} with key ${fp} (refused by --strict)`, {
        hint: `check the fingerprint with the server's owner, then connect once without --strict`,
      });
    }
    await keystore.addKnownHost(host, key);
    options.onNewHost?.(host, fp);
  };
}
