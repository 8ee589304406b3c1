import { type AuthorizedKey, duplicateNames, type LineError } from "./authorized_keys.ts";
import { samePublicKey } from "../identity/keys.ts";
import type { Keystore } from "../identity/keystore.ts";
import type { Authorizer } from "../server/types.ts";

/**
 * An authorizer that answers from the keystore's authorized_keys as it is
 * now, so `ovtp add-key`, `ovtp keys remove` and edits take effect without a
 * restart, on connections already open too (the server asks again about
 * every second). The file is read again only when its size, modification
 * time or inode changes, or when the copy is 10 s old, so asking is one
 * `stat` most of the time. Malformed lines, and a later line giving a name
 * in use to another key (see {@linkcode duplicateNames}), are skipped and
 * reported through `onBadLine`, once per read of the file.
 *
 * @param keystore The keystore whose authorized_keys decides.
 * @param onBadLine Told of each malformed line, each time the file is read.
 * @returns An `authorize` callback for {@linkcode serve}.
 *
 * @example Who may connect, as authorized_keys says
 * ```ts
 * import {
 *   authorizedKeysAuthorizer,
 *   generateIdentity,
 *   Keystore,
 *   type LineError,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const alice = await generateIdentity();
 * await keystore.addAuthorizedKey(alice.publicKey, "alice", { allow: ["upload"] });
 *
 * const bad: LineError[] = [];
 * const authorize = authorizedKeysAuthorizer(keystore, (error) => bad.push(error));
 * assert.deepEqual(await authorize(alice.publicKey), {
 *   name: "alice",
 *   options: { allow: ["upload"] },
 * });
 * assert.equal(await authorize((await generateIdentity()).publicKey), undefined);
 *
 * // Removing the key takes effect at the next question.
 * await keystore.removeAuthorizedKey("alice");
 * assert.equal(await authorize(alice.publicKey), undefined);
 * assert.equal(bad.length, 0);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export function authorizedKeysAuthorizer(
  keystore: Keystore,
  onBadLine?: (error: LineError) => void,
): Authorizer {
  const path = keystore.path("authorizedKeys");
  let cached:
    | {
      stamp: string;
      reported: string;
      readAt: number;
      checkedAt: number;
      entries: AuthorizedKey[];
    }
    | undefined;
  // Concurrent questions (many connections rechecking at once) share one
  // stat and at most one read; rechecks that allow an older answer share
  // the last stat within their maxAgeMs.
  let pending: Promise<AuthorizedKey[]> | undefined;
  const load = async (): Promise<AuthorizedKey[]> => {
    const { stamp, changedAt } = await stampOf(path);
    // A file changed shortly before it was read may change again with the
    // same size and time stamps (file systems keep time in ticks of up to
    // seconds): until the read is well after the change, the stamp proves
    // nothing and the file is read again (git's "racily clean" rule).
    const settled = cached && cached.readAt - changedAt > RACY_MS;
    if (cached && settled && cached.stamp === stamp && Date.now() - cached.readAt < MAX_AGE_MS) {
      cached.checkedAt = Date.now();
      return cached.entries;
    }
    const readAt = Date.now();
    const { entries, errors } = await keystore.readAuthorizedKeys();
    // A second key under a name in use is refused, as a malformed line is.
    const duplicates = duplicateNames(entries);
    const refused = new Set(duplicates.map((error) => error.line));
    // Reported once per version of the file, not per read.
    const bad = [...errors, ...duplicates];
    const reported = bad.map((error) => `${error.line}:${error.message}`).join("\n");
    if (onBadLine && (stamp !== cached?.stamp || reported !== cached.reported)) {
      bad.forEach(onBadLine);
    }
    cached = {
      stamp,
      reported,
      readAt,
      checkedAt: readAt,
      entries: entries.filter((entry) => !refused.has(entry.line)),
    };
    return cached.entries;
  };
  return async (key, options = {}) => {
    const fresh = cached && Date.now() - cached.checkedAt < (options.maxAgeMs ?? 0);
    const entries = fresh
      ? cached!.entries
      : await (pending ??= load().finally(() => pending = undefined));
    const entry = entries.find((e) => samePublicKey(e.key, key));
    return entry ? { name: entry.name, options: entry.options } : undefined;
  };
}

/** A cached copy older than this is read again even if the file looks unchanged. */
const MAX_AGE_MS = 10_000;

/**
 * A change this close before a read may be followed by another that leaves
 * the same stamp: 2 s covers the coarsest common time stamps (FAT's).
 */
const RACY_MS = 2_000;

/**
 * What changes when the file is written (size, times, inode), or "none",
 * and when it last changed.
 */
async function stampOf(path: string): Promise<{ stamp: string; changedAt: number }> {
  try {
    const info = await Deno.stat(path);
    const modified = info.mtime?.getTime() ?? Date.now();
    const changed = info.ctime?.getTime() ?? modified;
    return {
      stamp: `${info.size}:${modified}:${info.ino}:${changed}`,
      changedAt: Math.max(modified, changed),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { stamp: "none", changedAt: 0 };
    throw error;
  }
}
