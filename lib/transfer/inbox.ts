/**
 * The folder where received files land. A file is written under a
 * temporary name in a hidden `.partial` folder, synced, verified, and only
 * then linked into place under the sender's folder, never over an existing
 * file. An interrupted transfer of a known-size file stays in `.partial` so
 * that it can resume.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { toHex, utf8 } from "../bytes.ts";
import { OvtpError } from "../errors.ts";
import { alternativeName, safeRelativePath } from "./safe_name.ts";

/** The hidden folder holding transfers in progress. */
export const PARTIAL_DIR = ".partial";

/**
 * Options of {@linkcode Inbox}.
 *
 * @example Limits a server checks before accepting a file
 * ```ts
 * import { Inbox, type InboxOptions, OvtpError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const options: InboxOptions = {
 *   maxFileSize: 1024 * 1024,
 *   reserveBytes: 1000,
 *   freeBytes: () => Promise.resolve(50_000), // As if the disk were nearly full.
 * };
 * const inbox = new Inbox("/srv/ovtp/inbox", options);
 * assert.equal(inbox.maxFileSize, 1024 * 1024);
 *
 * await inbox.checkRoom(40_000, 40_000); // Fits, with 1000 bytes to spare.
 * await assert.rejects(inbox.checkRoom(2 * 1024 * 1024, 0), OvtpError); // Over the limit.
 * await assert.rejects(inbox.checkRoom(60_000, 60_000), /Not enough free disk space/);
 * ```
 */
export interface InboxOptions {
  /** The largest file accepted, in bytes. @default unlimited */
  maxFileSize?: number;
  /** Bytes to leave free on the disk. @default 64 MiB */
  reserveBytes?: number;
  /** Reports the free bytes of the inbox's file system (tests inject this). */
  freeBytes?: (dir: string) => Promise<number>;
}

/** Bytes gathered before one write: fewer, larger writes cost less. */
const WRITE_BUFFER_SIZE = 1024 * 1024;

/** A file being received: buffered writes and a running SHA-256. */
export class PartialFile {
  /** Its path. */
  readonly path: string;
  /** SHA-256 of what it holds so far. */
  readonly hash: Hash;
  /** Bytes received (written or buffered). */
  size: number;
  #file: Deno.FsFile;
  #buffer = new Uint8Array(WRITE_BUFFER_SIZE);
  #buffered = 0;

  /** Wraps an open file positioned at `size`. */
  constructor(file: Deno.FsFile, path: string, hash: Hash, size: number) {
    this.#file = file;
    this.path = path;
    this.hash = hash;
    this.size = size;
  }

  /** Appends bytes (hashing them). */
  async write(data: Uint8Array): Promise<void> {
    this.hash.update(data);
    this.size += data.length;
    if (this.#buffered + data.length > this.#buffer.length) await this.flush();
    if (data.length >= this.#buffer.length) return await writeAll(this.#file, data);
    this.#buffer.set(data, this.#buffered);
    this.#buffered += data.length;
  }

  /** Writes buffered bytes to the file. */
  async flush(): Promise<void> {
    if (this.#buffered === 0) return;
    const data = this.#buffer.subarray(0, this.#buffered);
    this.#buffered = 0;
    await writeAll(this.#file, data);
  }

  /** Flushes and syncs to disk. */
  async sync(): Promise<void> {
    await this.flush();
    await this.#file.sync();
  }

  /** Flushes (keeping what arrived, for a resume) and closes. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      try {
        this.#file.close();
      } catch {
        // Already closed.
      }
    }
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await file.write(data.subarray(offset));
}

/**
 * A received file, once in place, as {@linkcode Inbox.store} returns it.
 *
 * @example Storing two files of the same name
 * ```ts
 * import { Inbox, type StoredFile } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const inbox = new Inbox(dir);
 * const store = async (text: string): Promise<StoredFile> => {
 *   const partial = `${dir}/upload.tmp`;
 *   await Deno.writeTextFile(partial, text);
 *   return await inbox.store(partial, "alice", "notes.txt", 0o600);
 * };
 *
 * const first = await store("one");
 * assert.deepEqual(first, {
 *   path: "alice/notes.txt",
 *   absolutePath: `${dir}/alice/notes.txt`,
 *   renamed: false,
 * });
 * const second = await store("two");
 * assert.equal(second.path, "alice/notes (1).txt");
 * assert.equal(second.renamed, true);
 * assert.equal(await Deno.readTextFile(second.absolutePath), "two");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface StoredFile {
  /** Its path relative to the inbox, `/`-separated. */
  readonly path: string;
  /** Its absolute path. */
  readonly absolutePath: string;
  /** Whether the name was changed to avoid overwriting. */
  readonly renamed: boolean;
}

/**
 * The receiving folder: give one to {@linkcode serve} as
 * {@linkcode ServeOptions.inbox} to accept files. Each sender's files go
 * to `<dir>/<sender's name>/`.
 *
 * @example A server that accepts files
 * ```ts
 * import { generateIdentity, Inbox, OvtpClient, pathSource, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/photo.jpg`, "not really a photo");
 * const inbox = new Inbox(`${dir}/inbox`, { maxFileSize: 100 * 1024 * 1024 });
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   inbox,
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * await client.sendFile(await pathSource(`${dir}/photo.jpg`));
 * assert.equal(await Deno.readTextFile(`${inbox.dir}/alice/photo.jpg`), "not really a photo");
 * client.close();
 * await server.close();
 * assert.equal(await inbox.pruneStale(0), 0); // No unfinished transfer left behind.
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Inbox {
  /** The folder. */
  readonly dir: string;
  readonly #options: InboxOptions;

  /** Uses `dir`, created on first use. */
  constructor(dir: string, options: InboxOptions = {}) {
    this.dir = dir;
    this.#options = options;
  }

  /** The largest file accepted, or Infinity. */
  get maxFileSize(): number {
    return this.#options.maxFileSize ?? Infinity;
  }

  /**
   * Throws a TransferRefusal (an OvtpError of kind `remote`, with `code`
   * `too-large` or `no-space`) unless a file of `total` bytes is within the
   * size limit and `more` bytes still fit in the free disk space.
   */
  async checkRoom(total: number, more: number): Promise<void> {
    if (total > this.maxFileSize) {
      throw new TransferRefusal(
        "too-large",
        `The file is larger than the server's limit of ${this.maxFileSize} bytes`,
      );
    }
    const free = await (this.#options.freeBytes ?? defaultFreeBytes)(this.dir);
    const reserve = this.#options.reserveBytes ?? 64 * 1024 * 1024;
    if (more + reserve > free) {
      throw new TransferRefusal(
        "no-space",
        `Not enough free disk space on the server (${free} bytes free)`,
      );
    }
  }

  /** The temporary path for a transfer key. */
  partialPath(key: string): string {
    return join(this.dir, PARTIAL_DIR, `${key}.part`);
  }

  /** Bytes held for a key from an earlier transfer, or 0. */
  async heldBytes(key: string): Promise<number> {
    try {
      return (await Deno.lstat(this.partialPath(key))).size;
    } catch {
      return 0;
    }
  }

  /**
   * @internal Opens the temporary file for `key`, keeping its first `offset` bytes
   * (and hashing them) and dropping the rest.
   */
  async openPartial(key: string, offset: number): Promise<PartialFile> {
    await Deno.mkdir(join(this.dir, PARTIAL_DIR), { recursive: true, mode: 0o700 });
    const path = this.partialPath(key);
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    try {
      const hash = createHash("sha256");
      if (offset > 0) await hashPrefix(file, offset, hash);
      await file.truncate(offset);
      await file.seek(offset, Deno.SeekMode.Start);
      return new PartialFile(file, path, hash, offset);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** SHA-256 (hex) of the first `length` bytes held for `key`. */
  async prefixHash(key: string, length: number): Promise<string> {
    using file = await Deno.open(this.partialPath(key), { read: true });
    const hash = createHash("sha256");
    await hashPrefix(file, length, hash);
    return hash.digest("hex");
  }

  /** Removes a temporary file. */
  async discard(path: string): Promise<void> {
    await Deno.remove(path).catch(() => {});
  }

  /**
   * Moves a complete, synced, verified temporary file into place as
   * `<sender>/<name>`, choosing a new name rather than overwriting, and
   * refusing to follow a symlink planted anywhere below the inbox.
   */
  async store(
    partial: string,
    sender: string,
    name: string,
    mode: number | null,
  ): Promise<StoredFile> {
    const parts = [...safeRelativePath(sender), ...safeRelativePath(name)];
    const folder = await this.#makeFolders(parts.slice(0, -1));
    const base = parts[parts.length - 1];
    // A stream has no mode: it gets an ordinary file's 0644 (the inbox
    // folder itself is 0700).
    if (Deno.build.os !== "windows") await Deno.chmod(partial, (mode ?? 0o644) & 0o777);
    for (let attempt = 0; attempt < 1000; attempt++) {
      const candidate = alternativeName(base, attempt);
      const target = join(folder, candidate);
      try {
        // A hard link fails if the name exists, so no file is ever replaced,
        // even by a race with another transfer.
        await Deno.link(partial, target);
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) continue;
        throw error;
      }
      await Deno.remove(partial);
      return {
        path: [...parts.slice(0, -1), candidate].join("/"),
        absolutePath: target,
        renamed: attempt > 0,
      };
    }
    throw new TransferRefusal("io", `Too many files named "${base}"`);
  }

  /** Deletes temporary files older than `maxAgeMs`. */
  async pruneStale(maxAgeMs: number): Promise<number> {
    let removed = 0;
    try {
      for await (const entry of Deno.readDir(join(this.dir, PARTIAL_DIR))) {
        const path = join(this.dir, PARTIAL_DIR, entry.name);
        const info = await Deno.lstat(path);
        if (Date.now() - (info.mtime?.getTime() ?? 0) > maxAgeMs) {
          await Deno.remove(path);
          removed++;
        }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return removed;
  }

  async #makeFolders(parts: string[]): Promise<string> {
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    let folder = this.dir;
    for (const part of parts) {
      folder = join(folder, part);
      try {
        const info = await Deno.lstat(folder);
        if (info.isSymlink || !info.isDirectory) {
          throw new TransferRefusal(
            "io",
            `Refusing to write through "${part}": it is a symlink or not a folder`,
          );
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        await Deno.mkdir(folder, { mode: 0o755 });
      }
    }
    return folder;
  }
}

/** A refusal to send back to the sender, with a machine-readable code. */
export class TransferRefusal extends OvtpError {
  /** `too-large`, `no-space`, `bad-hash`, `bad-size`, `io` or `protocol`. */
  readonly code: string;

  /** Creates the refusal. */
  constructor(code: string, message: string) {
    super("remote", message);
    this.code = code;
  }
}

/**
 * The key of a resumable transfer: the same sender sending the same name
 * with the same size finds its earlier partial file.
 */
export function transferKey(fingerprint: string, name: string, size: number): string {
  const hash = createHash("sha256");
  hash.update(utf8(`${fingerprint}\0${name}\0${size}`));
  return hash.digest("hex").slice(0, 40);
}

/** A key for a transfer that cannot resume. */
export function oneTimeKey(): string {
  return `once-${toHex(crypto.getRandomValues(new Uint8Array(16)))}`;
}

async function defaultFreeBytes(dir: string): Promise<number> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await statfs(dir);
  return Number(info.bavail) * Number(info.bsize);
}

async function hashPrefix(file: Deno.FsFile, length: number, hash: Hash): Promise<void> {
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
