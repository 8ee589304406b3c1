/**
 * Opening and changing files without following a link someone else
 * planted. Whoever can write in a folder ovtp writes to (a shared download
 * folder, /tmp) could put a symlink where ovtp is about to write: ovtp would
 * then truncate, overwrite or chmod the link's target with its own rights.
 * New files are therefore created exclusively (`createNew` never follows a
 * link), and an existing file is opened only when it is a regular file and
 * is still the file that was checked once open.
 *
 * @module
 */

import { nodeFs } from "./node_builtin.ts";
import { OvtpError } from "../errors.ts";

/** Options of {@linkcode openExistingFile}. */
export interface OpenExistingOptions {
  /** Open for reading. @default true */
  read?: boolean;
  /** Open for writing (never truncates). @default false */
  write?: boolean;
  /** Open for appending. @default false */
  append?: boolean;
}

/**
 * Throws an OvtpError naming `path` unless it is not there at all or is a
 * regular file (not a symlink, a folder, a device...). Returns its info,
 * or null when it is not there.
 */
export async function checkNotLink(path: string): Promise<Deno.FileInfo | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (info.isSymlink) {
    throw new OvtpError(
      "io",
      `Cannot write "${path}": it is a symbolic link (ovtp never writes through one)`,
      { hint: "remove the link, or choose another name" },
    );
  }
  if (!info.isFile) throw new OvtpError("io", `Cannot write "${path}": it is not a regular file`);
  return info;
}

/**
 * Opens an existing regular file without following a link: refuses a
 * symlink or anything but a regular file, and a file swapped in between the
 * check and the open (its identity is compared once open). Returns null
 * when there is no file at `path`.
 */
export async function openExistingFile(
  path: string,
  options: OpenExistingOptions = {},
): Promise<Deno.FsFile | null> {
  const before = await checkNotLink(path);
  if (!before) return null;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, {
      read: options.read ?? true,
      write: options.write ?? false,
      append: options.append ?? false,
    });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  try {
    const after = await file.stat();
    if (!after.isFile || !sameFile(before, after)) {
      throw new OvtpError("io", `Cannot write "${path}": it was replaced while being opened`);
    }
    if (options.write || options.append) checkOwnFile(path, after);
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

// A file to write into must be ours and have no other name: someone else's
// file (or a hard link to one of ours elsewhere) could be read or changed
// by them after ovtp verified it.
function checkOwnFile(path: string, info: Deno.FileInfo): void {
  if (Deno.build.os === "windows") return;
  const uid = ownUid();
  if (info.uid !== null && uid !== null && info.uid !== uid) {
    throw new OvtpError("io", `Cannot write "${path}": it belongs to another user`);
  }
  if (info.nlink !== null && info.nlink > 1) {
    throw new OvtpError("io", `Cannot write "${path}": it has other names (hard links)`);
  }
}

// The library may run without --allow-sys=uid (the CLI has it): then the
// owner cannot be checked, and only the other checks hold.
function ownUid(): number | null {
  if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") return null;
  return Deno.uid();
}

/** Whether two infos describe the same file (on systems that report inodes). */
export function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  if (a.ino === null || b.ino === null || a.dev === null || b.dev === null) return true;
  return a.ino === b.ino && a.dev === b.dev;
}

/**
 * Sets the mode of the regular file at `path` (nothing on Windows), only
 * if it is the file `expected` describes (by default, what `lstat` finds
 * there, which must be a regular file): through a descriptor whose inode is
 * compared first. `Deno.chmod` would follow a link planted there, and
 * O_NOFOLLOW cannot be relied on (Deno resolves links in paths it checks
 * against scoped permissions).
 */
export function chmodFile(path: string, mode: number, expected?: Deno.FileInfo): void {
  if (Deno.build.os === "windows") return;
  const now = Deno.lstatSync(path);
  const want = expected ?? now;
  if (now.isSymlink) {
    throw new OvtpError("io", `Cannot set the mode of "${path}": it is a symbolic link`);
  }
  // O_NONBLOCK: a FIFO swapped in must not hang the open.
  const { closeSync, constants, fchmodSync, fstatSync, openSync } = nodeFs();
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const info = fstatSync(fd);
    if (
      !info.isFile() || !want.isFile || want.ino === null || info.ino !== want.ino ||
      info.dev !== want.dev
    ) {
      throw new OvtpError("io", `Cannot set the mode of "${path}": it was replaced`);
    }
    fchmodSync(fd, mode & 0o777);
  } finally {
    closeSync(fd);
  }
}
