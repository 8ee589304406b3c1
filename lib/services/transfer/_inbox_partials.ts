/**
 * The inbox's unfinished uploads: one file per transfer in the inbox's
 * internal folder, each held by exactly one writer.
 *
 * - Names are `<sender tag>-<transfer tag>`, both HMAC-SHA-256 under a
 *   random secret kept in the internal folder: the same sender sending the
 *   same name and size finds its earlier data, and nobody else can compute
 *   (or plant) that name. A transfer that cannot resume gets
 *   `<sender tag>-once-<random>`.
 * - A writer claims its file: in this process (a set of names) and against
 *   other processes (an exclusive lock on its open handle). A second upload
 *   of the same name and size while the first runs gets a one-time file, so
 *   two writers never share bytes.
 * - The file leaves the folder (linked into place, or deleted) while its
 *   writer still holds the lock, so a writer that opened it a moment earlier
 *   finds, once it gets the lock, that the name no longer leads to its file.
 *
 * @module
 */

import { hmacSha256, type Sha256Stream, sha256Stream } from "../../crypto/mod.ts";
import { join } from "node:path";
import { toHex, utf8 } from "../../bytes.ts";
import { createExclusive, writeAll, writeThroughTemp } from "../../io/files.ts";
import { openExistingFile, sameFile } from "../../io/no_follow.ts";
import { OvtpError } from "../../errors.ts";
import { PartialFile } from "./engine.ts";
import { TransferRefusal } from "./transfer_refusal.ts";

/** Resting (abandoned) unfinished uploads one sender may leave, whatever their bytes. */
export const MAX_PARTIALS_PER_SENDER = 64;

const SECRET_FILE = "secret";
const PARTIAL_FOLDER = "partial";
const NAME = /^([0-9a-f]{16})-(?:[0-9a-f]{40}|once-[0-9a-f]{32})$/;

/** The unfinished uploads of one inbox, under its internal folder `dir`. */
export class InboxPartials {
  readonly #dir: string;
  readonly #claimed = new Set<string>();
  #secret?: Promise<Uint8Array>;

  /** Uses `dir` (created on first use, mode 0700). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Names claimed by a writer in this process. */
  get claimed(): ReadonlySet<string> {
    return this.#claimed;
  }

  /**
   * Claims the unfinished upload of `name` (`size` bytes) from `sender`
   * (a key fingerprint): its earlier data when `resumable` and nobody else
   * holds it, a new empty file otherwise.
   */
  async claim(
    sender: string,
    name: string,
    size: number | null,
    resumable: boolean,
  ): Promise<PartialClaim> {
    const folder = await this.#folder();
    const secret = await this.#loadSecret();
    const senderTag = tag(secret, `sender\0${sender}`).slice(0, 16);
    if (resumable && size !== null) {
      const key = `${senderTag}-${
        tag(secret, `partial\0${sender}\0${name}\0${size}`).slice(0, 40)
      }`;
      const claim = await this.#take(folder, key);
      if (claim) return claim;
    }
    // Not resumable, or another upload of the same file holds it: a file of its own.
    const key = `${senderTag}-once-${toHex(crypto.getRandomValues(new Uint8Array(16)))}`;
    const claim = await this.#take(folder, key, false);
    if (!claim) throw new TransferRefusal("io", "Cannot create a file for the upload");
    return claim;
  }

  /**
   * Deletes resting files older than `maxAgeMs`, then the oldest of each
   * sender beyond `maxBytes` or {@linkcode MAX_PARTIALS_PER_SENDER} files.
   * Files a writer holds are left alone. Returns how many were deleted.
   */
  async prune(maxAgeMs: number, maxBytes: number): Promise<number> {
    const folder = join(this.#dir, PARTIAL_FOLDER);
    const found: { name: string; sender: string; size: number; mtime: number }[] = [];
    try {
      for await (const entry of Deno.readDir(folder)) {
        const match = NAME.exec(entry.name);
        if (!match || !entry.isFile || this.#claimed.has(entry.name)) continue;
        const info = await Deno.lstat(join(folder, entry.name)).catch(() => null);
        if (!info?.isFile) continue;
        const mtime = info.mtime?.getTime() ?? 0;
        found.push({ name: entry.name, sender: match[1], size: info.size, mtime });
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return 0;
      throw error;
    }
    const now = Date.now();
    const doomed: string[] = [];
    const kept = new Map<string, { bytes: number; count: number }>();
    // Newest first: within a sender's cap, the most recent uploads stay.
    for (const file of found.sort((a, b) => b.mtime - a.mtime)) {
      const total = kept.get(file.sender) ?? { bytes: 0, count: 0 };
      if (
        now - file.mtime > maxAgeMs || total.bytes + file.size > maxBytes ||
        total.count >= MAX_PARTIALS_PER_SENDER
      ) {
        doomed.push(file.name);
        continue;
      }
      kept.set(file.sender, { bytes: total.bytes + file.size, count: total.count + 1 });
    }
    let removed = 0;
    for (const name of doomed) {
      if (await this.#removeUnheld(join(folder, name), name)) removed++;
    }
    return removed;
  }

  // Opens (or creates) the file `key` and locks it; null when another
  // writer holds it.
  async #take(folder: string, key: string, reuse = true): Promise<PartialClaim | null> {
    if (this.#claimed.has(key)) return null;
    this.#claimed.add(key);
    const path = join(folder, key);
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        let file: Deno.FsFile | null = null;
        try {
          if (reuse) file = await openExistingFile(path, { read: true, write: true });
        } catch (error) {
          // Not a plain file of ours with one name (another writer is
          // linking it into place this instant): not for resuming.
          if (error instanceof OvtpError) break;
          throw error;
        }
        if (!file) {
          try {
            file = await createExclusive(path, 0o600, { read: true });
          } catch (error) {
            if (reuse && error instanceof Deno.errors.AlreadyExists) continue;
            throw error;
          }
        }
        if (!(await file.tryLock(true))) {
          file.close();
          break;
        }
        // Got the lock: still the file at that name (its last holder did
        // not link it into place or delete it meanwhile)?
        const now = await Deno.lstat(path).catch(() => null);
        const info = await file.stat();
        if (now && sameFile(now, info)) {
          return new PartialClaim(path, file, info.size, () => this.#claimed.delete(key));
        }
        file.close();
      }
    } catch (error) {
      this.#claimed.delete(key);
      throw error;
    }
    this.#claimed.delete(key);
    return null;
  }

  async #removeUnheld(path: string, key: string): Promise<boolean> {
    if (this.#claimed.has(key)) return false;
    const file = await openExistingFile(path, { read: true, write: true }).catch(() => null);
    if (!file) return false;
    try {
      if (!(await file.tryLock(true))) return false;
      const now = await Deno.lstat(path).catch(() => null);
      if (!now || !sameFile(now, await file.stat()) || this.#claimed.has(key)) return false;
      await Deno.remove(path);
      return true;
    } finally {
      file.close();
    }
  }

  async #folder(): Promise<string> {
    await ensureFolder(this.#dir);
    const folder = join(this.#dir, PARTIAL_FOLDER);
    await ensureFolder(folder);
    return folder;
  }

  // The secret makes partial names unguessable. Created once, exclusively:
  // written under a temporary name, then linked (which fails if another
  // process won the race, whose secret is then used).
  #loadSecret(): Promise<Uint8Array> {
    this.#secret ??= (async () => {
      const path = join(this.#dir, SECRET_FILE);
      for (let attempt = 0; attempt < 3; attempt++) {
        const file = await openExistingFile(path);
        if (file) {
          const text = await new Response(file.readable).text();
          if (!/^[0-9a-f]{64}\n$/.test(text)) {
            throw new TransferRefusal("io", `The inbox secret "${path}" is damaged`);
          }
          return new TextEncoder().encode(text.trim());
        }
        const secret = toHex(crypto.getRandomValues(new Uint8Array(32))) + "\n";
        // Linked into place: of two writers racing, the first one's stays.
        await writeThroughTemp(path, 0o600, (out) => writeAll(out, utf8(secret)), {
          replace: false,
        })
          .catch((error) => {
            if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
          });
      }
      throw new TransferRefusal("io", `Cannot read the inbox secret "${path}"`);
    })();
    // A failure is not remembered: the next upload tries again.
    this.#secret.catch(() => this.#secret = undefined);
    return this.#secret;
  }
}

/** One writer's hold on an unfinished upload: an open, locked file. */
export class PartialClaim {
  /** The file's path. */
  readonly path: string;
  /** Bytes it held when claimed. */
  readonly heldSize: number;
  #file: Deno.FsFile;
  #release: () => void;
  #prefix?: { length: number; hash: Sha256Stream };
  #partial?: PartialFile;
  #done = false;

  /** Wraps an open, locked file. */
  constructor(path: string, file: Deno.FsFile, size: number, release: () => void) {
    this.path = path;
    this.#file = file;
    this.heldSize = size;
    this.#release = release;
  }

  /** SHA-256 (hex) of the first `length` bytes held. */
  async prefixHash(length: number): Promise<string> {
    const hash = sha256Stream();
    await hashPrefix(this.#file, length, hash);
    this.#prefix = { length, hash: hash.copy() };
    return hash.digest("hex");
  }

  /** Keeps the first `offset` bytes (hashed) and drops the rest, for writing. */
  async open(offset: number): Promise<PartialFile> {
    if (this.#partial) throw new Error("The upload is already open");
    let hash: Sha256Stream;
    if (offset > 0 && this.#prefix?.length === offset) hash = this.#prefix.hash;
    else {
      hash = sha256Stream();
      if (offset > 0) await hashPrefix(this.#file, offset, hash);
    }
    await this.#file.truncate(offset);
    await this.#file.seek(offset, Deno.SeekMode.Start);
    this.#partial = new PartialFile(this.#file, this.path, hash, offset);
    return this.#partial;
  }

  /**
   * Ends the claim: keeps the data for a resume (`keep`; an empty file is
   * deleted all the same) or deletes it. Deleting happens before the lock
   * is released.
   */
  async release(keep: boolean): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      await this.#partial?.flush();
      const info = await this.#file.stat();
      // Only if the name still leads to this file: once linked into place
      // and unnamed, the name may already be another upload's.
      const now = await Deno.lstat(this.path).catch(() => null);
      if ((!keep || info.size === 0) && now && sameFile(now, info)) {
        await Deno.remove(this.path).catch(() => {});
      }
    } finally {
      try {
        this.#file.close();
      } catch {
        // Already closed.
      }
      this.#release();
    }
  }
}

/** Creates `path` as a folder (mode 0700) unless it is one; refuses a link. */
export async function ensureFolder(path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const info = await Deno.lstat(path);
      if (info.isSymlink || !info.isDirectory) {
        throw new TransferRefusal(
          "io",
          `Refusing to use "${path}": it is a symlink or not a folder`,
        );
      }
      return;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await Deno.mkdir(path, { recursive: true, mode: 0o700 }).catch((error) => {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    });
  }
}

function tag(secret: Uint8Array, label: string): string {
  return toHex(hmacSha256(secret, utf8(label)));
}

async function hashPrefix(file: Deno.FsFile, length: number, hash: Sha256Stream): Promise<void> {
  await file.seek(0, Deno.SeekMode.Start);
  const buffer = new Uint8Array(1024 * 1024);
  let left = length;
  while (left > 0) {
    const n = await file.read(buffer.subarray(0, Math.min(buffer.length, left)));
    if (n === null) {
      throw new TransferRefusal("io", "The held part of the file is shorter than expected");
    }
    hash.update(buffer.subarray(0, n));
    left -= n;
  }
}
