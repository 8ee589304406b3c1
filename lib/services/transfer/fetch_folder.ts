/**
 * Pulls a folder from a server's served folder: lists it and its folders,
 * makes the same folders under the destination and downloads each file
 * with {@linkcode fetchFile}, so every file is resumable and checked against
 * the server's SHA-256 on its own. Run again after an interruption, it
 * checks the files already here against the server's by hash (without
 * downloading them), resumes the one that was cut, and fetches the rest.
 *
 * What holds against a hostile server:
 * - Every name it lists must be one path component that
 *   {@linkcode safeRelativePath} keeps unchanged, and not end in
 *   {@linkcode PARTIAL_SUFFIX}; any other is skipped and reported, so
 *   nothing is written outside the destination or under a name that means
 *   something else on this system.
 * - At most {@linkcode MAX_DEPTH} folders deep; deeper ones are skipped.
 * - No existing file is replaced: one that is not the server's stops the
 *   pull. Folders are made here, or checked to be folders and not links.
 *
 * @module
 */

import { join } from "node:path";
import { OvtpError } from "../../errors.ts";
import { checkNotLink } from "../../io/no_follow.ts";
import {
  fetchFile,
  type FetchOptions,
  listFiles,
  PARTIAL_SUFFIX,
  verifyHeldFile,
} from "./fetcher.ts";
import { MAX_DEPTH, safeRelativePath } from "./inbox.ts";
import type { MessageLink } from "../../client/message_link.ts";

/** Options of {@linkcode OvtpClient.getFolder}: each file's, plus these. */
export interface FolderFetchOptions extends FetchOptions {
  /** Called before each file, with its remote path and where it goes. */
  onFile?: (file: { remote: string; path: string; size: number }) => void;
  /** Called for each entry skipped, with why. */
  onSkip?: (remote: string, reason: string) => void;
}

/**
 * A pulled folder, as {@linkcode OvtpClient.getFolder} resolves.
 *
 * @example Pulling a folder, then pulling it again
 * ```ts
 * import { generateIdentity, OvtpClient, serve, ServedFolder } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/served/photos/2026`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/served/photos/a.txt`, "hello");
 * await Deno.writeTextFile(`${dir}/served/photos/2026/b.txt`, "world!");
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   served: new ServedFolder(`${dir}/served`),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 *
 * const first = await client.getFolder("photos", `${dir}/copy`);
 * assert.equal(first.files, 2);
 * assert.equal(first.received, 11);
 * assert.equal(await Deno.readTextFile(`${dir}/copy/2026/b.txt`), "world!");
 * // Again: both files are checked by hash, none is sent.
 * const again = await client.getFolder("photos", `${dir}/copy`);
 * assert.deepEqual([again.files, again.alreadyHere, again.received], [2, 2, 0]);
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface FetchedFolder {
  /** Where it was written. */
  path: string;
  /** Files now here and verified, including those already here. */
  files: number;
  /** Their total size. */
  bytes: number;
  /** Files that were already here, complete, and matched the server's. */
  alreadyHere: number;
  /** Bytes that came over the connection (less than `bytes` after a resume). */
  received: number;
  /** Entries skipped (see {@linkcode FolderFetchOptions.onSkip}). */
  skipped: number;
}

/**
 * Pulls `remotePath` (a folder) into `dest`: a new folder, or one an
 * earlier pull of the same folder left.
 */
export async function fetchFolder(
  link: MessageLink,
  remotePath: string,
  dest: string,
  options: FolderFetchOptions = {},
): Promise<FetchedFolder> {
  const pulled: FetchedFolder = {
    path: dest,
    files: 0,
    bytes: 0,
    alreadyHere: 0,
    received: 0,
    skipped: 0,
  };
  await pullFolder(link, remotePath.replace(/\/+$/, ""), dest, 1, pulled, options);
  return pulled;
}

async function pullFolder(
  link: MessageLink,
  remote: string,
  local: string,
  depth: number,
  pulled: FetchedFolder,
  options: FolderFetchOptions,
): Promise<void> {
  // Listed first: a path that is not a folder leaves nothing behind.
  const entries = await listFiles(link, remote);
  await makeFolder(local);
  for (const entry of entries) {
    const remoteChild = remote ? `${remote}/${entry.name}` : entry.name;
    const problem = nameProblem(entry.name) ??
      (entry.type === "dir" && depth >= MAX_DEPTH ? `deeper than ${MAX_DEPTH} folders` : null);
    if (problem) {
      pulled.skipped++;
      options.onSkip?.(remoteChild, problem);
      continue;
    }
    const localChild = join(local, entry.name);
    if (entry.type === "dir") {
      await pullFolder(link, remoteChild, localChild, depth + 1, pulled, options);
      continue;
    }
    options.onFile?.({ remote: remoteChild, path: localChild, size: entry.size });
    const existing = await checkNotLink(localChild);
    if (existing && existing.size !== entry.size) {
      throw new OvtpError("io", `"${localChild}" already exists and is not the server's file`, {
        hint: "move it away, or pull into another folder",
      });
    }
    const file = existing
      ? await verifyHeldFile(link, remoteChild, localChild)
      : await fetchFile(link, remoteChild, localChild, options);
    pulled.files++;
    pulled.bytes += file.size;
    if (existing) pulled.alreadyHere++;
    else pulled.received += file.size - file.resumedFrom;
  }
}

/** Why `name`, as a server listed it, cannot be written here as it is (null if it can). */
function nameProblem(name: string): string | null {
  // One component, unchanged: "a/b" passes as two, each plain.
  const parts = safeRelativePath(name);
  if (parts.length !== 1 || parts[0] !== name) {
    return "its name is not one plain file name here (a separator, control character, " +
      "reserved or device name, or trailing dot)";
  }
  if (name.endsWith(PARTIAL_SUFFIX)) return `its name ends in ${PARTIAL_SUFFIX}`;
  return null;
}

// A folder made here, or one already here that is a real folder: never
// through a link, which could lead the pull anywhere.
async function makeFolder(path: string): Promise<void> {
  try {
    await Deno.mkdir(path);
    return;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new OvtpError("io", `Cannot create "${path}": the folder it goes in does not exist`);
    }
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  const info = await Deno.lstat(path);
  if (info.isSymlink) {
    throw new OvtpError(
      "io",
      `Cannot pull into "${path}": it is a symbolic link (ovtp never writes through one)`,
      { hint: "remove the link, or choose another destination with -o" },
    );
  }
  if (!info.isDirectory) {
    throw new OvtpError("io", `Cannot pull into "${path}": it is a file, not a folder`, {
      hint: "choose another destination with -o",
    });
  }
}
