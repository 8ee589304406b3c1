/**
 * The text of a known_hosts file: one `<host>:<port> ovtp1 <key>` line per
 * server this client has accepted (trust on first use, as in OpenSSH), or
 * `<host>:<port> SHA256:<fingerprint>` for a host whose fingerprint was
 * given before its key was ever seen (`ovtp known-hosts add HOST FP`).
 *
 * @module
 */

import type { LineError } from "./authorized_keys.ts";
import { formatPublicKey, parsePublicKey, type PublicKey } from "../identity/keys.ts";

/** A key fingerprint as ovtp and OpenSSH print it: 32 bytes of SHA-256, unpadded base64. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/;

/** Whether `text` is a fingerprint (`SHA256:` and 43 base64 characters). */
export function isFingerprint(text: string): boolean {
  return FINGERPRINT.test(text);
}

/**
 * One remembered server key.
 *
 * @example Look up a host the keystore remembers
 * ```ts
 * import { generateIdentity, Keystore, type KnownHost, samePublicKey } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const server = await generateIdentity();
 * await keystore.addKnownHost("backup.example:4747", server.publicKey);
 *
 * const known: KnownHost | undefined = await keystore.findKnownHost("backup.example:4747");
 * assert.ok(known?.key && samePublicKey(known.key, server.publicKey));
 * assert.equal(known.line, 1);
 * assert.equal(await keystore.findKnownHost("other.example:4747"), undefined);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface KnownHost {
  /** The `host:port` it was reached at. */
  readonly host: string;
  /**
   * The key it presented, or undefined for an entry that holds only the
   * fingerprint the user gave.
   */
  readonly key?: PublicKey;
  /** The fingerprint given instead of a key (only when `key` is undefined). */
  readonly fingerprint?: string;
  /** Its 1-based line number. */
  readonly line: number;
}

/**
 * Parses a known_hosts file; malformed lines are reported, not fatal.
 *
 * @param text The file's text.
 * @returns The valid entries and the refused lines, in file order.
 *
 * @example Read the hosts and the damaged lines
 * ```ts
 * import { formatKnownHost, generateIdentity, parseKnownHosts } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const text = `${formatKnownHost("10.0.0.5:4747", publicKey)}\n# old\nlaptop:4747\n`;
 * const { entries, errors } = parseKnownHosts(text);
 * assert.deepEqual(entries.map((e) => [e.host, e.line]), [["10.0.0.5:4747", 1]]);
 * assert.deepEqual(errors, [{ line: 3, message: "Expected a host and a key" }]);
 * ```
 */
export function parseKnownHosts(
  text: string,
): { entries: KnownHost[]; errors: LineError[] } {
  const entries: KnownHost[] = [];
  const errors: LineError[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const space = line.search(/\s/);
    try {
      if (space < 0) throw new SyntaxError("Expected a host and a key");
      const host = line.slice(0, space);
      const rest = line.slice(space + 1).trim();
      if (isFingerprint(rest)) {
        entries.push({ host, fingerprint: rest, line: index + 1 });
      } else {
        entries.push({ host, key: parsePublicKey(rest).key, line: index + 1 });
      }
    } catch (error) {
      errors.push({ line: index + 1, message: (error as Error).message });
    }
  });
  return { entries, errors };
}

/**
 * Formats one known_hosts line: `<host>:<port> ovtp1 <key>`, or
 * `<host>:<port> SHA256:...` for a fingerprint.
 *
 * @param host The `host:port` the server was reached at.
 * @param key The key it presented, or the fingerprint the user gave.
 * @returns The line, without a newline.
 *
 * @example Pin a server's key
 * ```ts
 * import { formatKnownHost, formatPublicKey, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const server = await generateIdentity();
 * const line = formatKnownHost("backup.example:4747", server.publicKey);
 * assert.equal(line, `backup.example:4747 ${formatPublicKey(server.publicKey)}`);
 * ```
 */
export function formatKnownHost(host: string, key: PublicKey | string): string {
  return `${host} ${typeof key === "string" ? key : formatPublicKey(key)}`;
}
