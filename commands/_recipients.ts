/**
 * Naming keys on the command line for `seal -r` and `open --from`, and the
 * identity those commands use (id_ovtp, or `-i FILE`). Only commands/
 * imports this file.
 *
 * A key is named, in this order of precedence:
 *
 * 1. `self`: the identity in use (`-i FILE`'s key with -i);
 * 2. a public line (`ovtp1 ...`);
 * 3. a fingerprint (`SHA256:...`) of a contact or an authorized key
 *    (`--from` takes any fingerprint);
 * 4. a name in contacts or in authorized_keys, or a file of public lines.
 *
 * A name that picks more than one key (in contacts and in authorized_keys
 * with different keys) or that is also a file is refused, listing the
 * candidates, rather than guessed. Names match exactly: a prefix picks
 * nothing, and an unknown name's error lists the names it begins.
 *
 * @module
 */

import type { AuthorizedKey } from "../lib/trust/authorized_keys.ts";
import type { Contact } from "../lib/trust/contacts.ts";
import { OvtpError } from "../lib/errors.ts";
import {
  fingerprint,
  type Identity,
  parsePublicKey,
  type PublicKey,
  samePublicKey,
} from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { isFingerprint } from "../lib/trust/known_hosts.ts";
import { loadIdentity } from "./_identity.ts";
import { looksLikeLine, parseKeyLine, readKeyLines } from "./_key_lines.ts";

/** The keys a command may name: yours, your contacts and the authorized ones. */
export interface KnownKeys {
  /** Your public key; absent when there is no identity (enough for `open --info`). */
  self: PublicKey | undefined;
  /** authorized_keys' entries. */
  authorized: AuthorizedKey[];
  /** contacts' valid entries. */
  contacts: Contact[];
  /**
   * Why contacts cannot be used to look a name up: a bad line might be the
   * name asked for, and another key must not answer for it. Showing a name
   * needs no such care.
   */
  contactsError?: OvtpError;
}

/** The known keys, and the identity to sign or decrypt with, loaded once when asked for. */
export interface KeysInUse {
  /** The keys that names resolve to. */
  known: KnownKeys;
  /** Loads the identity (asking for its passphrase if it is sealed), once. */
  identity(): Promise<Identity>;
}

/** Options of {@linkcode keysInUse}. */
export interface KeysInUseOptions {
  /** `-i FILE`: the key file to use instead of id_ovtp (the trust files stay the home's). */
  identityFile?: string;
  /** Whether a missing identity is an error now. @default true */
  needSelf?: boolean;
}

/**
 * Reads your public key, your contacts and authorized_keys. With `-i FILE`
 * the key file is loaded at once, since `self` means its key and only the
 * private key tells it for sure (a `.pub` beside it could be stale).
 */
export async function keysInUse(
  keystore: Keystore,
  options: KeysInUseOptions = {},
): Promise<KeysInUse> {
  let loading: Promise<Identity> | undefined;
  const identity = () => loading ??= loadIdentity(keystore, options.identityFile);
  const self = options.identityFile !== undefined
    ? (await identity()).publicKey
    : options.needSelf !== false || await keystore.hasIdentity()
    ? parsePublicKey(await keystore.readPublicLine()).key
    : undefined;
  const { entries: authorized } = await keystore.readAuthorizedKeys();
  const contacts = await keystore.readContacts();
  const bad = contacts.errors[0];
  const contactsError = bad && new OvtpError(
    "key",
    `Cannot use "${keystore.path("contacts")}": line ${bad.line}: ${bad.message}`,
    { hint: "fix or delete that line (`ovtp contacts list` shows every bad line)" },
  );
  return {
    known: { self, authorized, contacts: contacts.entries, contactsError },
    identity,
  };
}

function mine(known: KnownKeys): PublicKey {
  if (!known.self) throw new OvtpError("key", "No identity: `self` needs one");
  return known.self;
}

/** Resolves each `-r` value. */
export async function resolveRecipients(specs: string[], known: KnownKeys): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const spec of specs) keys.push(...await resolveKeys(spec, known, "recipient"));
  return keys;
}

/** A `--from` value as a test on the sender. */
export interface SenderFilter {
  /** What the user typed. */
  spec: string;
  /** Whether `key` is the expected sender. */
  matches(key: PublicKey): Promise<boolean>;
}

/**
 * Resolves `--from`: any of the keys that `seal -r` takes (a file of lines
 * accepts a sender among them), or any fingerprint.
 */
export async function senderFilter(spec: string, known: KnownKeys): Promise<SenderFilter> {
  // A fingerprint names one key whether it is known or not.
  if (isFingerprint(spec)) {
    return { spec, matches: async (key) => await fingerprint(key) === spec };
  }
  const senders = await resolveKeys(spec, known, "sender");
  return {
    spec,
    matches: (key) => Promise.resolve(senders.some((sender) => samePublicKey(sender, key))),
  };
}

/** The keys `spec` names, by the precedence in this module's documentation. */
async function resolveKeys(
  spec: string,
  known: KnownKeys,
  role: "recipient" | "sender",
): Promise<PublicKey[]> {
  if (spec === "self") return [mine(known)];
  if (looksLikeLine(spec)) return [parseKeyLine(spec, `The ${role}`).key];
  if (known.contactsError) throw known.contactsError;
  if (isFingerprint(spec)) {
    const key = await byFingerprint(spec, known);
    if (key) return [key];
    throw new OvtpError("not-found", `No contact or authorized key has the fingerprint ${spec}`, {
      hint: "give the public line instead (`ovtp id` prints it on its owner's machine)",
    });
  }
  const candidates = [
    ...known.contacts.filter((c) => c.name === spec).map((c) => ({
      key: c.key,
      where: "contacts",
    })),
    ...known.authorized.filter((a) => a.name === spec).map((a) => ({
      key: a.key,
      where: `authorized_keys line ${a.line}`,
    })),
  ];
  const file = await isFile(spec);
  const listed = await Promise.all(
    candidates.map(async (c) => `${c.where} (${await fingerprint(c.key)})`),
  );
  if (file && candidates.length > 0) {
    throw ambiguous(spec, role, [...listed, "a file"], "give ./NAME for the file");
  }
  if (candidates.some((c) => !samePublicKey(c.key, candidates[0].key))) {
    throw ambiguous(spec, role, listed, "give the fingerprint or the public line instead");
  }
  if (candidates.length > 0) return [candidates[0].key];
  if (file) return (await readKeyLines(spec)).map((line) => line.key);
  throw unknown(spec, role, known);
}

/** The error for a name that picks several keys, or a key and a file. */
function ambiguous(spec: string, role: string, listed: string[], hint: string): OvtpError {
  return new OvtpError(
    "not-found",
    `The ${role} "${spec}" is ambiguous: ${listed.join(", ")}`,
    { hint },
  );
}

/** The error for a name known nowhere, with the names it begins. */
function unknown(spec: string, role: string, known: KnownKeys): OvtpError {
  const names = [
    ...known.contacts.map((c) => `${c.name} (contacts)`),
    ...known.authorized.map((a) => `${a.name} (authorized_keys)`),
  ].filter((name) => spec && name.startsWith(spec));
  return new OvtpError(
    "not-found",
    `Unknown ${role} "${spec}": not a public line, a contact, a name or fingerprint in ` +
      "authorized_keys, a file, or self",
    {
      hint: names.length > 0
        ? `names match whole: did you mean ${names.join(", ")}?`
        : "`ovtp contacts list` and `ovtp keys` list the names",
    },
  );
}

async function byFingerprint(spec: string, known: KnownKeys): Promise<PublicKey | undefined> {
  for (const entry of [...known.contacts, ...known.authorized]) {
    if (await fingerprint(entry.key) === spec) return entry.key;
  }
  return undefined;
}

/** The name you know `key` by: `self`, a contact's, an authorized key's, or none. */
export function nameOf(key: PublicKey, known: KnownKeys): string | undefined {
  if (known.self && samePublicKey(key, known.self)) return "self";
  return (known.contacts.find((c) => samePublicKey(c.key, key)) ??
    known.authorized.find((a) => samePublicKey(a.key, key)))?.name;
}

/** `NAME (SHA256:...)`, `you (SHA256:...)`, or the fingerprint alone. */
export async function describeKey(key: PublicKey, known: KnownKeys): Promise<string> {
  const fp = await fingerprint(key);
  const name = nameOf(key, known);
  if (name === "self") return `you (${fp})`;
  return name !== undefined ? `${name} (${fp})` : `${fp} (not in contacts or authorized_keys)`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
