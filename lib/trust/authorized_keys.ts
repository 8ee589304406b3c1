/**
 * The text of an authorized_keys file: one `[options] ovtp1 <key> [name]`
 * line per client allowed to connect (options: see key_options.ts); `#`
 * comments and blank lines are ignored.
 *
 * @module
 */

import { formatOptions, type KeyOptions, splitOptions } from "./key_options.ts";
import {
  fingerprint,
  formatPublicKey,
  parsePublicKey,
  type PublicKey,
  samePublicKey,
} from "../identity/keys.ts";

/**
 * One authorized client.
 *
 * @example Find who a key belongs to
 * ```ts
 * import {
 *   type AuthorizedKey,
 *   formatAuthorizedKey,
 *   generateIdentity,
 *   parseAuthorizedKeys,
 *   samePublicKey,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = await generateIdentity();
 * const text = `# Team\n${formatAuthorizedKey(alice.publicKey, "alice", { allow: ["upload"] })}\n`;
 * const entry: AuthorizedKey | undefined = parseAuthorizedKeys(text).entries
 *   .find((e) => samePublicKey(e.key, alice.publicKey));
 * assert.equal(entry?.name, "alice");
 * assert.equal(entry?.line, 2);
 * assert.deepEqual(entry?.options, { allow: ["upload"] });
 * ```
 */
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

/**
 * A line that could not be parsed, with the reason.
 *
 * @example Report a damaged line
 * ```ts
 * import { type LineError, parseAuthorizedKeys } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const text = "# Keys\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5 bob\n";
 * const errors: LineError[] = parseAuthorizedKeys(text).errors;
 * assert.equal(errors.length, 1);
 * assert.equal(errors[0].line, 2);
 * assert.match(errors[0].message, /Expected a key starting with "ovtp1"/);
 * ```
 */
export interface LineError {
  /** The 1-based line number. */
  readonly line: number;
  /** Why it was refused. */
  readonly message: string;
}

/**
 * The parsed file: the usable entries and the lines that were refused.
 *
 * @example What a keystore's file holds
 * ```ts
 * import { type AuthorizedKeys, generateIdentity, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const empty: AuthorizedKeys = await keystore.readAuthorizedKeys(); // No file yet.
 * assert.deepEqual(empty, { entries: [], errors: [] });
 *
 * await keystore.addAuthorizedKey((await generateIdentity()).publicKey, "carol");
 * const { entries, errors } = await keystore.readAuthorizedKeys();
 * assert.deepEqual(entries.map((e) => e.name), ["carol"]);
 * assert.equal(errors.length, 0);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface AuthorizedKeys {
  /** The valid entries, in file order. */
  readonly entries: AuthorizedKey[];
  /** The malformed lines. */
  readonly errors: LineError[];
}

/**
 * Parses an authorized_keys file; malformed lines are reported, not fatal.
 *
 * @param text The file's text.
 * @returns The valid entries and the refused lines, in file order.
 *
 * @example Read a file with options, comments and a bad line
 * ```ts
 * import { formatPublicKey, generateIdentity, parseAuthorizedKeys } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = formatPublicKey((await generateIdentity()).publicKey, "alice");
 * const ci = formatPublicKey((await generateIdentity()).publicKey, "ci");
 * const text = `# Who may connect\n\n${alice}\nrate="10/m",allow="call:backup" ${ci}\nbroken\n`;
 *
 * const { entries, errors } = parseAuthorizedKeys(text);
 * assert.deepEqual(entries.map((e) => [e.name, e.line]), [["alice", 3], ["ci", 4]]);
 * assert.deepEqual(entries[1].options, {
 *   rate: { count: 10, perMs: 60_000 },
 *   allow: ["call:backup"],
 * });
 * assert.deepEqual(errors.map((e) => e.line), [5]);
 * ```
 */
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

/**
 * Formats one authorized_keys line: the options (if any), the key, the name.
 *
 * @param key The client's key.
 * @param name The name the server will know it by.
 * @param options Its permissions, expiry and rate limit.
 * @returns The line, without a newline.
 *
 * @example A key that may only upload
 * ```ts
 * import { formatAuthorizedKey, formatPublicKey, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const plain = formatAuthorizedKey(publicKey, "alice");
 * assert.equal(plain, formatPublicKey(publicKey, "alice"));
 *
 * const line = formatAuthorizedKey(publicKey, "alice", { allow: ["upload"] });
 * assert.equal(line, `allow="upload" ${plain}`);
 * ```
 */
export function formatAuthorizedKey(
  key: PublicKey,
  name: string,
  options: KeyOptions = {},
): string {
  const prefix = formatOptions(options);
  return prefix ? `${prefix} ${formatPublicKey(key, name)}` : formatPublicKey(key, name);
}

/**
 * The entries whose name an earlier line already gives another key. A name
 * picks one key (`open --from`, `seal -r`, the inbox folder, the logs), so
 * the server refuses these lines rather than let a second "alice" pass as
 * the first.
 *
 * @param entries The file's entries, in file order.
 * @returns One error per later line of a name in use.
 *
 * @example A second key under a name in use
 * ```ts
 * import { duplicateNames, formatPublicKey, generateIdentity, parseAuthorizedKeys } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const alice = formatPublicKey((await generateIdentity()).publicKey, "alice");
 * const mallory = formatPublicKey((await generateIdentity()).publicKey, "alice");
 * const { entries } = parseAuthorizedKeys(`${alice}\n${mallory}\n`);
 * assert.deepEqual(duplicateNames(entries), [
 *   { line: 2, message: 'The name "alice" is already used on line 1' },
 * ]);
 * ```
 */
export function duplicateNames(entries: readonly AuthorizedKey[]): LineError[] {
  const first = new Map<string, AuthorizedKey>();
  const errors: LineError[] = [];
  for (const entry of entries) {
    const earlier = first.get(entry.name);
    if (!earlier) first.set(entry.name, entry);
    else if (!samePublicKey(earlier.key, entry.key)) {
      errors.push({
        line: entry.line,
        message: `The name "${entry.name}" is already used on line ${earlier.line}`,
      });
    }
  }
  return errors;
}

/** The name a key gets when its line has no comment. */
export async function defaultKeyName(key: PublicKey): Promise<string> {
  const fp = await fingerprint(key);
  return `key-${fp.slice("SHA256:".length, "SHA256:".length + 8)}`;
}
