/**
 * Trust on first use for server keys, as OpenSSH does: an unknown host is
 * recorded (or refused in strict mode), a changed key is always refused.
 *
 * @module
 */

import { OvtpError } from "./errors.ts";
import { fingerprint, type PublicKey, samePublicKey } from "./keys.ts";
import type { Keystore } from "./keystore.ts";

/** Options of {@linkcode knownHostsVerifier}. */
export interface HostTrustOptions {
  /** Refuse hosts not yet in known_hosts. @default false */
  strict?: boolean;
  /** Told when a new host is recorded, with its fingerprint. */
  onNewHost?: (host: string, fingerprint: string) => void;
}

/**
 * Returns a `verifyHost` callback for {@linkcode connect} that checks
 * `host` (as `hostname:port`) against the keystore's known_hosts.
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
