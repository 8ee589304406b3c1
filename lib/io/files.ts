/**
 * The small I/O helpers lib/ and commands/ share, each written once:
 * writing a whole buffer, creating a file exclusively (which never follows
 * a link), opening one for appending, replacing a file atomically, and
 * formatting `host:port`. What checks a path for links lives in
 * ./no_follow.ts.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { checkNotLink, chmodFile, openExistingFile } from "./no_follow.ts";
import { OvtpError } from "../errors.ts";

/** Something to write to: a `Deno.FsFile`, `Deno.stdout`, a connection. */
export interface Writer {
  /** Writes some of `bytes`; returns how many. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Writes all of `bytes` (one `write()` may take only some). */
export async function writeAll(writer: Writer, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await writer.write(bytes.subarray(offset));
}

/** Writes all of `bytes`, synchronously. */
export function writeAllSync(
  writer: { writeSync(bytes: Uint8Array): number },
  bytes: Uint8Array,
): void {
  let offset = 0;
  while (offset < bytes.length) offset += writer.writeSync(bytes.subarray(offset));
}

/**
 * Creates `path` for writing (and reading or appending, if asked), failing
 * with `Deno.errors.AlreadyExists` when anything is there: `createNew`
 * never follows a link and never opens a file someone else made.
 */
export async function createExclusive(
  path: string,
  mode: number,
  options: { read?: boolean; append?: boolean } = {},
): Promise<Deno.FsFile> {
  return await Deno.open(path, {
    read: options.read ?? false,
    write: true,
    append: options.append ?? false,
    createNew: true,
    mode,
  });
}

/**
 * Opens `path` for appending: an existing regular file of ours (as
 * `openExistingFile` checks it), or a new one created exclusively with
 * `mode`.
 */
export async function openForAppend(path: string, mode: number): Promise<Deno.FsFile> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const file = await openExistingFile(path, { read: false, append: true });
    if (file) return file;
    try {
      return await createExclusive(path, mode, { append: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
  throw new OvtpError("io", `Cannot open "${path}": it keeps being replaced`);
}

/**
 * Writes a file atomically: a temporary file in the same directory, synced,
 * then renamed over the target, so a reader sees the old or the new
 * content, never a mix, even if the process dies halfway. A symlink (or
 * anything but a regular file) at `path` is refused: renaming would
 * silently replace it, and writing through it would change its target.
 */
export async function atomicWrite(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  await checkNotLink(path);
  await writeThroughTemp(path, mode, (file) => writeAll(file, bytes));
}

/** Options of {@linkcode writeThroughTemp}. */
export interface WriteThroughTempOptions {
  /**
   * Whether what is at `path` is replaced (renamed over). When false, the
   * finished file is linked into place, which never replaces a name: a file
   * that appeared meanwhile fails the write with `Deno.errors.AlreadyExists`.
   * @default true
   */
  replace?: boolean;
}

/**
 * Fills a new temporary file next to `path` with `fill`, syncs it, sets
 * its mode exactly and gives it the name `path` (see
 * {@linkcode WriteThroughTempOptions.replace}). On any failure the
 * temporary file is removed and `path` left as it was. The caller checks
 * `path` first (see `checkNotLink`).
 */
export async function writeThroughTemp<T>(
  path: string,
  mode: number,
  fill: (file: Deno.FsFile) => Promise<T>,
  options: WriteThroughTempOptions = {},
): Promise<T> {
  const temp = join(dirname(path), `.${basename(path)}.tmp-${crypto.randomUUID()}`);
  try {
    let result: T;
    let info: Deno.FileInfo;
    {
      using file = await createExclusive(temp, mode);
      result = await fill(file);
      await file.sync();
      info = await file.stat();
    }
    // Deno.open honours the umask; set the mode exactly (on the file just
    // written, not on whatever its name may lead to now).
    chmodFile(temp, mode, info);
    if (options.replace ?? true) {
      await Deno.rename(temp, path);
    } else {
      await Deno.link(temp, path);
      await Deno.remove(temp);
    }
    return result;
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/** `host:port`, with brackets around an IPv6 address. */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
