/**
 * The text of a contacts file (`~/.ovtp/contacts`): one `ovtp1 <key> NAME`
 * line per person whose key you seal files for or expect files from, in
 * the form of authorized_keys' lines without options. `#` comments and
 * blank lines are ignored. Being a contact grants nothing on a server: who
 * may log in stays in authorized_keys.
 *
 * A name picks one key (`seal -r NAME`, `open --from NAME`), so every line
 * needs one, and a name in use is refused, as authorized_keys does
 * (case-sensitively).
 *
 * @module
 */

import type { LineError } from "./authorized_keys.ts";
import { hasHiddenCharacters, parsePublicKey, type PublicKey } from "../identity/keys.ts";

/**
 * One contact: a key and the name you know it by.
 *
 * @example Read a contacts file
 * ```ts
 * import { type Contact, formatPublicKey, generateIdentity, parseContacts } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const bob = await generateIdentity();
 * const text = `# people\n${formatPublicKey(bob.publicKey, "bob")}\n`;
 * const [entry]: Contact[] = parseContacts(text).entries;
 * assert.equal(entry.name, "bob");
 * assert.equal(entry.line, 2);
 * ```
 */
export interface Contact {
  /** The contact's public key. */
  readonly key: PublicKey;
  /** The name you know it by (the line's comment). */
  readonly name: string;
  /** Its 1-based line number in the file. */
  readonly line: number;
}

/**
 * The parsed file: the usable entries and the refused lines (malformed, no
 * name, or a name an earlier line gives another key).
 *
 * @example A line without a name is refused
 * ```ts
 * import { type Contacts, formatPublicKey, generateIdentity, parseContacts } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const parsed: Contacts = parseContacts(`${formatPublicKey(publicKey)}\n`);
 * assert.deepEqual(parsed.entries, []);
 * assert.deepEqual(parsed.errors, [{ line: 1, message: "The line has no name" }]);
 * ```
 */
export interface Contacts {
  /** The valid entries, in file order. */
  readonly entries: Contact[];
  /** The refused lines. */
  readonly errors: LineError[];
}

/**
 * Why `name` cannot name a contact, or undefined when it can. Refused: an
 * empty name, control and invisible formatting characters (a name must read
 * as what it is), and names that mean something else where
 * a contact is named: `self`, a fingerprint, a public line.
 *
 * @param name The name, as given.
 * @returns The reason, or undefined.
 *
 * @example Names that would be read as something else
 * ```ts
 * import { contactNameProblem } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * assert.equal(contactNameProblem("bob"), undefined);
 * assert.match(contactNameProblem("self")!, /means something else/);
 * assert.match(contactNameProblem("SHA256:abc")!, /means something else/);
 * assert.match(contactNameProblem("bob\u202e")!, /invisible/);
 * ```
 */
export function contactNameProblem(name: string): string | undefined {
  if (!name.trim()) return "A contact needs a name";
  if (name !== name.trim()) return `The name "${name}" starts or ends with white space`;
  if (hasHiddenCharacters(name)) {
    return "A contact name cannot contain control or invisible formatting characters (such as bidi overrides)";
  }
  if (name === "self" || /^SHA256:/i.test(name) || /^ovtp1(\s|$)/.test(name)) {
    return `The name "${name}" means something else to ovtp`;
  }
  return undefined;
}

/**
 * Parses a contacts file; bad lines are reported, not fatal.
 *
 * @param text The file's text.
 * @returns The entries and the refused lines, in file order.
 *
 * @example A second key under a name in use is refused
 * ```ts
 * import { formatPublicKey, generateIdentity, parseContacts } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const a = formatPublicKey((await generateIdentity()).publicKey, "alice");
 * const b = formatPublicKey((await generateIdentity()).publicKey, "alice");
 * const { entries, errors } = parseContacts(`${a}\n${b}\n`);
 * assert.equal(entries.length, 1);
 * assert.deepEqual(errors, [{ line: 2, message: 'The name "alice" is already used on line 1' }]);
 * ```
 */
export function parseContacts(text: string): Contacts {
  const entries: Contact[] = [];
  const errors: LineError[] = [];
  const byName = new Map<string, Contact>();
  text.split("\n").forEach((raw, index) => {
    const line = index + 1;
    if (!raw.trim() || raw.trim().startsWith("#")) return;
    let parsed;
    try {
      parsed = parsePublicKey(raw);
    } catch (error) {
      errors.push({ line, message: (error as Error).message });
      return;
    }
    const name = parsed.comment;
    const earlier = byName.get(name);
    const problem = !name ? "The line has no name" : contactNameProblem(name) ??
      (earlier && `The name "${name}" is already used on line ${earlier.line}`);
    if (problem) {
      errors.push({ line, message: problem });
      return;
    }
    const entry = { key: parsed.key, name, line };
    byName.set(name, entry);
    entries.push(entry);
  });
  return { entries, errors };
}
