/**
 * The text of a known_hosts file: one `<host>:<port> ovtp1 <key>` line per
 * server this client has accepted (trust on first use, as in OpenSSH).
 *
 * @module
 */

import type { LineError } from "./authorized_keys.ts";
import { formatPublicKey, parsePublicKey, type PublicKey } from "./keys.ts";

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
 * assert.ok(known && samePublicKey(known.key, server.publicKey));
 * assert.equal(known.line, 1);
 * assert.equal(await keystore.findKnownHost("other.example:4747"), undefined);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface KnownHost {
  /** The `host:port` it was reached at. */
  readonly host: string;
  /** The key it presented. */
  readonly key: PublicKey;
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
      const parsed = parsePublicKey(line.slice(space + 1));
      entries.push({ host: line.slice(0, space), key: parsed.key, line: index + 1 });
    } catch (error) {
      errors.push({ line: index + 1, message: (error as Error).message });
    }
  });
  return { entries, errors };
}

/**
 * Formats one known_hosts line: `<host>:<port> ovtp1 <key>`.
 *
 * @param host The `host:port` the server was reached at.
 * @param key The key it presented.
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
export function formatKnownHost(host: string, key: PublicKey): string {
  return `${host} ${formatPublicKey(key)}`;
}
