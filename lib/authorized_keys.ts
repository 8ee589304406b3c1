/**
 * The text of an authorized_keys file: one `[options] ovtp1 <key> [name]`
 * line per client allowed to connect (options: see key_options.ts); `#`
 * comments and blank lines are ignored.
 *
 * @module
 */

import { formatOptions, type KeyOptions, splitOptions } from "./key_options.ts";
import { fingerprint, formatPublicKey, parsePublicKey, type PublicKey } from "./keys.ts";

/** One authorized client. */
export interface AuthorizedKey {
  /** The client's public key. */
  readonly key: PublicKey;
  /** The name the server knows it by (the line's comment). */
  readonly name: string;
  /** Its 1-based line number in the file. */
  readonly line: number;
  /** Its permissions, expiry and rate limit. */
  readonly options: KeyOptions;
}

/** A line that could not be parsed, with the reason. */
export interface LineError {
  /** The 1-based line number. */
  readonly line: number;
  /** Why it was refused. */
  readonly message: string;
}

/** The parsed file: the usable entries and the lines that were refused. */
export interface AuthorizedKeys {
  /** The valid entries, in file order. */
  readonly entries: AuthorizedKey[];
  /** The malformed lines. */
  readonly errors: LineError[];
}

/** Parses an authorized_keys file; malformed lines are reported, not fatal. */
export function parseAuthorizedKeys(text: string): AuthorizedKeys {
  const entries: AuthorizedKey[] = [];
  const errors: LineError[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    try {
      const { options, rest } = splitOptions(line);
      const parsed = parsePublicKey(rest);
      entries.push({ key: parsed.key, name: parsed.comment, line: index + 1, options });
    } catch (error) {
      errors.push({ line: index + 1, message: (error as Error).message });
    }
  });
  return { entries, errors };
}

/** Formats one authorized_keys line. */
export function formatAuthorizedKey(
  key: PublicKey,
  name: string,
  options: KeyOptions = {},
): string {
  const prefix = formatOptions(options);
  return prefix ? `${prefix} ${formatPublicKey(key, name)}` : formatPublicKey(key, name);
}

/** The name a key gets when its line has no comment. */
export async function defaultKeyName(key: PublicKey): Promise<string> {
  const fp = await fingerprint(key);
  return `key-${fp.slice("SHA256:".length, "SHA256:".length + 8)}`;
}
