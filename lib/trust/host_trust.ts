/**
 * Trust on first use for server keys, as OpenSSH does: an unknown host is
 * recorded (or refused in strict mode, with an {@linkcode UnknownHostError}
 * that lets a program ask its user and connect again), a changed key is
 * always refused.
 *
 * @module
 */

import { OvtpError } from "../errors.ts";
import { fingerprint, type PublicKey, samePublicKey } from "../identity/keys.ts";
import type { Keystore } from "../identity/keystore.ts";

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
  /**
   * Refuse hosts not yet in known_hosts, with an {@linkcode UnknownHostError}.
   * @default false
   */
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
      const same = known.key ? samePublicKey(known.key, key) : known.fingerprint === fp;
      if (same) return;
      throw new OvtpError(
        "trust",
        `The key of host ${host} has changed to ${fp} (was ${
          known.fingerprint ?? await fingerprint(known.key!)
        }): someone may be intercepting the connection`,
        {
          hint: `if the server's key was replaced on purpose, run: ovtp known-hosts remove ${host}`,
        },
      );
    }
    if (options.strict) throw new UnknownHostError(host, key, fp);
    await keystore.addKnownHost(host, key);
    options.onNewHost?.(host, fp);
  };
}

/**
 * A host that is not in known_hosts, refused in strict mode. It carries the
 * key the host presented, so that a program can show the fingerprint, ask
 * its user, record the key with {@linkcode Keystore.addKnownHost} and
 * connect again: nothing was sent to the host.
 *
 * @example Ask, record, connect again
 * ```ts
 * import { generateIdentity, Keystore, knownHostsVerifier, UnknownHostError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const server = await generateIdentity();
 * const verify = knownHostsVerifier(keystore, "backup.example:4747", { strict: true });
 * const refused = await verify(server.publicKey).catch((error) => error);
 * assert.ok(refused instanceof UnknownHostError);
 * assert.match(refused.fingerprint, /^SHA256:/);
 * // The user compared the fingerprint and said yes:
 * await keystore.addKnownHost(refused.host, refused.key);
 * await verify(server.publicKey); // Known now: accepted.
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export class UnknownHostError extends OvtpError {
  /** The host as `hostname:port`. */
  readonly host: string;
  /** The key it presented. */
  readonly key: PublicKey;
  /** That key's fingerprint. */
  readonly fingerprint: string;

  /** Creates the error. */
  constructor(host: string, key: PublicKey, fingerprint: string) {
    super("trust", `Unknown host ${host} with key ${fingerprint}`);
    this.name = "UnknownHostError";
    this.host = host;
    this.key = key;
    this.fingerprint = fingerprint;
  }
}
