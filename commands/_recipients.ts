/**
 * Naming keys on the command line for `seal` and `open`: a recipient is a
 * public line, a file of public lines, a name or fingerprint from
 * authorized_keys, or `self`; a sender (`--from`) is a name, a fingerprint
 * or `self`. Only commands/ imports this file.
 *
 * @module
 */

import type { AuthorizedKey } from "../lib/authorized_keys.ts";
import { OvtpError } from "../lib/errors.ts";
import { fingerprint, parsePublicKey, type PublicKey, samePublicKey } from "../lib/keys.ts";
import type { Keystore } from "../lib/keystore.ts";
import { usageError } from "./_cli.ts";

const MAX_KEY_FILE = 1024 * 1024;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** The keys a command may name: yours and the authorized ones. */
export interface KnownKeys {
  /** Your public key; absent when there is no identity (enough for `open --info`). */
  self: PublicKey | undefined;
  /** authorized_keys' entries. */
  authorized: AuthorizedKey[];
}

/**
 * Reads your public key and authorized_keys; with `needSelf`, a missing
 * identity is an error.
 */
export async function knownKeys(keystore: Keystore, needSelf = true): Promise<KnownKeys> {
  const self = needSelf || await keystore.hasIdentity()
    ? parsePublicKey(await keystore.readPublicLine()).key
    : undefined;
  const { entries } = await keystore.readAuthorizedKeys();
  return { self, authorized: entries };
}

function mine(known: KnownKeys): PublicKey {
  if (!known.self) throw new OvtpError("key", "No identity: `self` needs one");
  return known.self;
}

/**
 * Resolves each `-r` value. A name that is also a file is refused as
 * ambiguous rather than guessed.
 */
export async function resolveRecipients(specs: string[], known: KnownKeys): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const spec of specs) keys.push(...await resolveRecipient(spec, known));
  return keys;
}

async function resolveRecipient(spec: string, known: KnownKeys): Promise<PublicKey[]> {
  if (spec === "self") return [mine(known)];
  if (/^ovtp1\s/.test(spec.trim())) return [parseKey(spec, "The recipient")];
  const named = await byNameOrFingerprint(spec, known.authorized);
  const file = await isFile(spec);
  if (named.length > 0 && file) {
    usageError(
      "seal",
      `The recipient "${spec}" is both a name in authorized_keys and a file`,
    );
  }
  refuseAmbiguous(spec, named);
  if (named.length > 0) return [named[0]];
  if (file) return await readKeyFile(spec);
  throw new OvtpError(
    "not-found",
    `Unknown recipient "${spec}": not a public line, a name or fingerprint in authorized_keys, ` +
      "a file, or self",
    { hint: "`ovtp keys` lists the names in authorized_keys" },
  );
}

/** A `--from` value as a test on the sender. */
export interface SenderFilter {
  /** What the user typed. */
  spec: string;
  /** Whether `key` is the expected sender. */
  matches(key: PublicKey): Promise<boolean>;
}

/** Resolves `--from NAME|FINGERPRINT|self`; a name must be in authorized_keys. */
export async function senderFilter(spec: string, known: KnownKeys): Promise<SenderFilter> {
  if (spec === "self") {
    const self = mine(known);
    return { spec, matches: (key) => Promise.resolve(samePublicKey(key, self)) };
  }
  if (FINGERPRINT.test(spec)) {
    return { spec, matches: async (key) => await fingerprint(key) === spec };
  }
  const named = await byNameOrFingerprint(spec, known.authorized);
  if (named.length === 0) {
    throw new OvtpError("not-found", `No authorized key named "${spec}"`, {
      hint: "give a name from `ovtp keys`, a fingerprint (SHA256:...), or self",
    });
  }
  // A name must stand for one sender: with two keys named "alice", a file
  // sealed by either would pass as alice's.
  refuseAmbiguous(spec, named);
  const sender = named[0];
  return { spec, matches: (key) => Promise.resolve(samePublicKey(sender, key)) };
}

/** `NAME (SHA256:...)`, `you (SHA256:...)`, or the fingerprint alone. */
export async function describeKey(key: PublicKey, known: KnownKeys): Promise<string> {
  const fp = await fingerprint(key);
  if (known.self && samePublicKey(key, known.self)) return `you (${fp})`;
  const entry = known.authorized.find((e) => samePublicKey(e.key, key));
  return entry ? `${entry.name} (${fp})` : `${fp} (not in authorized_keys)`;
}

/** Refuses a name that picks more than one key. */
function refuseAmbiguous(spec: string, named: PublicKey[]): void {
  if (named.every((key) => samePublicKey(key, named[0]))) return;
  throw new OvtpError("not-found", `The name "${spec}" matches ${named.length} keys`, {
    hint: "give the fingerprint instead (`ovtp keys` lists them)",
  });
}

async function byNameOrFingerprint(spec: string, entries: AuthorizedKey[]): Promise<PublicKey[]> {
  const found: PublicKey[] = [];
  for (const entry of entries) {
    if (entry.name === spec || (FINGERPRINT.test(spec) && await fingerprint(entry.key) === spec)) {
      found.push(entry.key);
    }
  }
  return found;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function readKeyFile(path: string): Promise<PublicKey[]> {
  let text: string;
  try {
    if ((await Deno.stat(path)).size > MAX_KEY_FILE) throw new Error("too large for a key file");
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new OvtpError("key", `Cannot read key file "${path}": ${(error as Error).message}`);
  }
  const keys: PublicKey[] = [];
  text.split("\n").forEach((line, index) => {
    if (!line.trim() || line.trim().startsWith("#")) return;
    keys.push(parseKey(line, `Line ${index + 1} of "${path}"`));
  });
  if (keys.length === 0) throw new OvtpError("key", `No key found in "${path}"`);
  return keys;
}

function parseKey(line: string, where: string): PublicKey {
  try {
    return parsePublicKey(line).key;
  } catch (error) {
    throw new OvtpError("key", `${where} is not a valid public key: ${(error as Error).message}`);
  }
}
