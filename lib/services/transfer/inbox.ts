/**
 * The folder where received files land. A file is written under a
 * temporary name in the inbox's internal folder, synced, verified, and only
 * then linked into place under the sender's folder, never over an existing
 * file. An interrupted transfer of a known-size file stays in the internal
 * folder so that it can resume (see `_inbox_partials.ts`). Every name a
 * sender gives goes through {@linkcode safeRelativePath} first; a client
 * pulling a folder (fetch_folder.ts) uses the same rules.
 *
 * @module
 */

import { join } from "node:path";
import { chmodFile } from "../../io/no_follow.ts";
import { nodeFs } from "../../io/node_builtin.ts";
import { ensureFolder, InboxPartials, type PartialClaim } from "./_inbox_partials.ts";
import { TransferRefusal } from "./transfer_refusal.ts";

// Safe names: a name chosen by a remote sender becomes a safe relative path,
// never absolute, never `..`, no control characters, bounded lengths.
// Whatever the input, the result stays inside the folder it is joined to
// (links are checked separately, when the path is created).

/** The longest component kept, in UTF-16 code units (most file systems allow 255 bytes). */
export const MAX_COMPONENT_LENGTH = 200;
/** The most components kept. */
export const MAX_DEPTH = 32;
/**
 * The name of the inbox's internal folder. Every component that starts
 * with {@linkcode RESERVED_PREFIX} gets a leading `_`, so no sender's name
 * or file name can reach it.
 */
export const INTERNAL_NAME = ".ovtp-internal";
/** Components starting with this (in any case or Unicode form) are renamed. */
export const RESERVED_PREFIX = ".ovtp";

// Windows opens a device, not a file, for these names, with any extension
// ("nul.txt" too). They get a leading "_" everywhere, so a transfer lands
// under the same name on every system.
const DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;
// Characters Windows refuses in file names (besides the separators and ":").
const WINDOWS_FORBIDDEN = /[<>"|?*]/g;

/**
 * Sanitizes a `/`- or `\`-separated relative path into its safe components.
 * Empty, `.` and `..` components are dropped, control characters (and `:`)
 * become `_`, Windows device names get a leading `_`, long components are
 * cut, and an empty result becomes `unnamed`. Components starting with
 * `.ovtp` (any case, any Unicode form: the inbox's internal folder) get a
 * leading `_` too. On Windows, `<>"|?*` also become `_`.
 */
export function safeRelativePath(name: string): string[] {
  const parts: string[] = [];
  for (const raw of name.split(/[/\\]+/)) {
    let part = "";
    for (const char of raw) {
      const code = char.codePointAt(0)!;
      part += code < 0x20 || code === 0x7f || char === ":" ? "_" : char;
    }
    part = part.trim();
    if (!part || part === "." || part === "..") continue;
    // A trailing dot or space is dropped by Windows; a leading dot stays.
    // Any white space counts (trim() does too), or "..\ufeff." would become
    // "..\ufeff" here and "..", dropped, when sanitized again.
    part = part.replace(/[\s.]+$/, "") || "_";
    if (DEVICE_NAME.test(part) || isReserved(part)) part = `_${part}`;
    if (Deno.build.os === "windows") part = part.replace(WINDOWS_FORBIDDEN, "_");
    parts.push(cut(part, MAX_COMPONENT_LENGTH));
  }
  if (parts.length === 0) return ["unnamed"];
  return parts.slice(-MAX_DEPTH);
}

// Case-insensitive file systems (Windows, macOS) and Unicode folding must
// not turn ".OVTP-internal" or a full-width look-alike into the real folder.
function isReserved(part: string): boolean {
  return part.normalize("NFKC").toUpperCase().toLowerCase().startsWith(RESERVED_PREFIX);
}

function cut(part: string, max: number): string {
  if (part.length <= max) return part;
  const dot = part.lastIndexOf(".");
  const ext = dot > 0 && part.length - dot <= 16 ? part.slice(dot) : "";
  return part.slice(0, max - ext.length) + ext;
}

/** The candidate names for a file when `name` is taken: `a.txt`, `a (1).txt`, ... */
export function alternativeName(name: string, attempt: number): string {
  if (attempt === 0) return name;
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)} (${attempt})${name.slice(dot)}` : `${name} (${attempt})`;
}

export { PartialFile } from "./engine.ts";
export { TransferRefusal } from "./transfer_refusal.ts";

/**
 * The inbox's internal folder (unfinished uploads, the secret that names
 * them). No sender's name or file name can reach it: the name sanitizer
 * gives any component starting with `.ovtp` a leading `_`.
 */
export const INBOX_STATE_DIR: string = INTERNAL_NAME;

/** How long an interrupted upload waits for its sender to resume it by default. */
export const DEFAULT_PARTIAL_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** Bytes of interrupted uploads kept per sender by default. */
export const DEFAULT_MAX_PARTIAL_BYTES = 16 * 1024 * 1024 * 1024;

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
  /** How long an interrupted upload is kept for a resume. @default 7 days */
  partialMaxAgeMs?: number;
  /**
   * Bytes of interrupted uploads kept per sender (key); the oldest go
   * first. @default 16 GiB
   */
  maxPartialBytes?: number;
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
  readonly #partials: InboxPartials;

  /** Uses `dir`, created on first use. */
  constructor(dir: string, options: InboxOptions = {}) {
    this.dir = dir;
    this.#options = options;
    this.#partials = new InboxPartials(join(dir, INBOX_STATE_DIR));
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
        `Not enough free disk space on the server: ${more} bytes needed, ${free} free, ` +
          `of which ${reserve} are kept in reserve`,
      );
    }
  }

  /**
   * @internal Claims the unfinished upload of `name` (`size` bytes) from
   * the key `fingerprint`: its earlier data when `resumable` and no other
   * upload holds it, a new empty file otherwise. Release it with
   * {@linkcode PartialClaim.release}.
   */
  async claim(
    fingerprint: string,
    name: string,
    size: number | null,
    resumable: boolean,
  ): Promise<PartialClaim> {
    await ensureFolder(this.dir);
    return await this.#partials.claim(fingerprint, name, size, resumable);
  }

  /**
   * Moves a complete, synced, verified temporary file into place as
   * `<sender>/<name>`, choosing a new name rather than overwriting, and
   * refusing to follow a symlink planted anywhere below the inbox. With
   * `folderFor` (a file of a folder sent as a whole), the first component
   * of `name` is replaced by the folder it returns for it.
   */
  async store(
    partial: string,
    sender: string,
    name: string,
    mode: number | null,
    folderFor?: (root: string) => Promise<string>,
  ): Promise<StoredFile> {
    const nameParts = safeRelativePath(name);
    // A file of a folder sent as a whole: its first component is replaced
    // by the folder chosen for that send (see newFolder).
    let folderRenamed = false;
    if (folderFor && nameParts.length > 1) {
      const chosen = await folderFor(nameParts[0]);
      folderRenamed = chosen !== nameParts[0];
      nameParts[0] = chosen;
    }
    const parts = [...safeRelativePath(sender), ...nameParts];
    const folder = await this.#makeFolders(parts.slice(0, -1));
    const base = parts[parts.length - 1];
    // A stream has no mode: it gets an ordinary file's 0644 (the inbox
    // folder itself is 0700).
    chmodFile(partial, mode ?? 0o644);
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
        renamed: attempt > 0 || folderRenamed,
      };
    }
    throw new TransferRefusal("io", `Too many files named "${base}"`);
  }

  /**
   * @internal Creates a new folder `<sender>/<root>`, or `<root> (1)`,
   * `<root> (2)`, ... when the name is taken (by anything: a folder, a file,
   * a link), and returns the name it got. The folder is created, not found:
   * a folder sent again never mixes into an earlier one.
   */
  async newFolder(sender: string, root: string): Promise<string> {
    const parent = await this.#makeFolders(safeRelativePath(sender));
    const base = safeRelativePath(root).at(-1)!;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const candidate = attempt === 0 ? base : `${base} (${attempt})`;
      try {
        // mkdir fails on any existing name, a link included: nothing is
        // created through a link.
        await Deno.mkdir(join(parent, candidate), { mode: 0o755 });
        return candidate;
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) continue;
        throw error;
      }
    }
    throw new TransferRefusal("io", `Too many folders named "${base}"`);
  }

  /**
   * Deletes interrupted uploads older than `maxAgeMs`, and each sender's
   * oldest beyond {@linkcode InboxOptions.maxPartialBytes}; uploads in
   * progress are left alone. `listen` calls it at start and then
   * periodically. Returns how many files were deleted.
   */
  async pruneStale(maxAgeMs?: number): Promise<number> {
    return await this.#partials.prune(
      maxAgeMs ?? this.#options.partialMaxAgeMs ?? DEFAULT_PARTIAL_MAX_AGE_MS,
      this.#options.maxPartialBytes ?? DEFAULT_MAX_PARTIAL_BYTES,
    );
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

async function defaultFreeBytes(dir: string): Promise<number> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  // node:fs is loaded here, not at import: clients import this module for
  // its safe names and need no node:fs (it costs a short command ~15 ms).
  const info = await nodeFs().promises.statfs(dir);
  return Number(info.bavail) * Number(info.bsize);
}
