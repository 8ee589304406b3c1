/**
 * The text of a known_hosts file: one `<host>:<port> ovtp1 <key>` line per
 * server this client has accepted (trust on first use, as in OpenSSH).
 *
 * @module
 */

import type { LineError } from "./authorized_keys.ts";
import { formatPublicKey, parsePublicKey, type PublicKey } from "./keys.ts";

/** One remembered server key. */
export interface KnownHost {
  /** The `host:port` it was reached at. */
  readonly host: string;
  /** The key it presented. */
  readonly key: PublicKey;
  /** Its 1-based line number. */
  readonly line: number;
}

/** Parses a known_hosts file. */
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

/** Formats one known_hosts line. */
export function formatKnownHost(host: string, key: PublicKey): string {
  return `${host} ${formatPublicKey(key)}`;
}
