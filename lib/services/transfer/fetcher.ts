/**
 * The client's side of downloads: fetches a file from a server's served
 * folder into `<dest>.ovtp-partial`, resuming a previous attempt after the
 * server confirms its prefix, verifies size and SHA-256, syncs, and only
 * then renames it into place. Also lists folders.
 *
 * @module
 */

import { type Sha256Stream, sha256Stream } from "../../crypto/mod.ts";
import { OvtpError } from "../../errors.ts";
import { decodeJson, encodeJson, type Message } from "../../channel/messages.ts";
import { releaseOpened } from "../../channel/_bulk_buffers.ts";
import {
  checkDownloadEnd,
  checkInfo,
  checkListResult,
  DownloadMessageType,
  type ListEntry,
} from "./download_messages.ts";
import { chmodFile, openExistingFile } from "../../io/no_follow.ts";
import { createExclusive } from "../../io/files.ts";
import { endMismatch, PartialFile } from "./engine.ts";
import { openExchange, type ReplyQueue } from "../../client/message_link.ts";
import type { MessageLink, TransferProgress } from "./sender.ts";

/** The suffix of a download in progress. */
export const PARTIAL_SUFFIX = ".ovtp-partial";

/**
 * Options of {@linkcode OvtpClient.getFile}.
 *
 * @example Resuming an interrupted download
 * ```ts
 * import {
 *   type FetchOptions,
 *   generateIdentity,
 *   OvtpClient,
 *   serve,
 *   ServedFolder,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/served`);
 * await Deno.writeTextFile(`${dir}/served/log.txt`, "0123456789");
 * // What an earlier, interrupted download of log.txt left.
 * await Deno.writeTextFile(`${dir}/log.txt.ovtp-partial`, "0123");
 *
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
 * let resumedAt = 0;
 * let done = 0;
 * const options: FetchOptions = {
 *   onResume: (offset) => resumedAt = offset,
 *   onProgress: (progress) => done = progress.done,
 * };
 * await client.getFile("log.txt", `${dir}/log.txt`, options);
 * assert.equal(resumedAt, 4);
 * assert.equal(done, 10);
 * assert.equal(await Deno.readTextFile(`${dir}/log.txt`), "0123456789");
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface FetchOptions {
  /** Called as data arrives. */
  onProgress?: (progress: TransferProgress) => void;
  /** Called when a previous partial download is resumed. */
  onResume?: (offset: number) => void;
  /**
   * Called when the `held` bytes of a previous partial download no longer
   * match the server's file (it changed): the download starts over.
   */
  onRestart?: (held: number) => void;
}

/**
 * A completed download, as {@linkcode OvtpClient.getFile} resolves.
 *
 * @example Downloading a file and checking its hash
 * ```ts
 * import { generateIdentity, OvtpClient, serve, ServedFolder } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 * import { createHash } from "node:crypto";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/served`);
 * await Deno.writeTextFile(`${dir}/served/notes.txt`, "hello");
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
 * const fetched = await client.getFile("notes.txt", `${dir}/copy.txt`);
 * assert.deepEqual(fetched, {
 *   path: `${dir}/copy.txt`,
 *   size: 5,
 *   sha256: createHash("sha256").update("hello").digest("hex"),
 *   resumedFrom: 0,
 * });
 * // The destination must not exist: a second download is refused.
 * await assert.rejects(client.getFile("notes.txt", `${dir}/copy.txt`), /already exists/);
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface FetchedFile {
  /** Where it was written. */
  path: string;
  /** Its size. */
  size: number;
  /** Its verified SHA-256 (hex). */
  sha256: string;
  /** Bytes kept from an earlier, interrupted download. */
  resumedFrom: number;
}

/** Downloads `remotePath` to `dest`, which must not exist yet. */
export async function fetchFile(
  link: MessageLink,
  remotePath: string,
  dest: string,
  options: FetchOptions = {},
): Promise<FetchedFile> {
  if (await exists(dest)) {
    throw new OvtpError("io", `"${dest}" already exists`, { hint: "choose another name with -o" });
  }
  const partialPath = dest + PARTIAL_SUFFIX;
  let file = await openPartial(partialPath);
  using exchange = openExchange(link);
  const { id, replies } = exchange;
  let partial: PartialFile | undefined;
  try {
    const held = file ? await heldPrefix(file) : { size: 0, sha256: null, hash: sha256Stream() };
    await link.send({
      type: DownloadMessageType.Get,
      id,
      body: encodeJson({ path: remotePath, offset: held.size, prefix_sha256: held.sha256 }),
    });
    const info = checkInfo(decodeJson(expect(await replies.next(), DownloadMessageType.Info).body));
    if (info.offset !== 0 && info.offset !== held.size) {
      throw new OvtpError("protocol", "The server resumed at an offset it was not offered");
    }
    file ??= await createPartial(partialPath);
    // The server confirmed our prefix (offset > 0), or starts over.
    const hash = info.offset > 0 ? held.hash : sha256Stream();
    if (info.offset > 0) options.onResume?.(info.offset);
    else if (held.size > 0) options.onRestart?.(held.size);
    await file.truncate(info.offset);
    await file.seek(info.offset, Deno.SeekMode.Start);
    partial = new PartialFile(file, partialPath, hash, info.offset);
    file = null;
    const end = await receiveData(replies, partial, info.size, remotePath, options);
    const { sha256, mismatch } = endMismatch(partial, end);
    if (mismatch) {
      await partial.close();
      await Deno.remove(partialPath).catch(() => {});
      partial = undefined;
      throw new OvtpError("protocol", "The downloaded data does not match the server's SHA-256");
    }
    await moveIntoPlace(partial, dest, info);
    partial = undefined;
    return { path: dest, size: end.size, sha256, resumedFrom: info.offset };
  } finally {
    // Whatever arrived stays in the partial file, for the next attempt.
    await partial?.close().catch(() => {});
    try {
      file?.close();
    } catch {
      // Already closed.
    }
  }
}

// An earlier attempt's file, opened without following a link: a symlink
// planted at DEST.ovtp-partial is refused, its target neither read (its
// hash would go to the server) nor written.
async function openPartial(partialPath: string): Promise<Deno.FsFile | null> {
  return await openExistingFile(partialPath, { read: true, write: true }).catch((error) => {
    throw error instanceof OvtpError
      ? new OvtpError("io", `Cannot resume into "${partialPath}": ${reason(error)}`, {
        hint: `delete "${partialPath}" if it is not an earlier download`,
      })
      : error;
  });
}

// Never through a link, never into a file someone else made.
async function createPartial(partialPath: string): Promise<Deno.FsFile> {
  return await createExclusive(partialPath, 0o600, { read: true }).catch((error) => {
    throw error instanceof Deno.errors.AlreadyExists
      ? new OvtpError("io", `Cannot write "${partialPath}": it appeared during the download`)
      : error;
  });
}

// Writes Data messages into `partial` until the End message, which it
// returns (checked, not yet compared).
async function receiveData(
  replies: ReplyQueue,
  partial: PartialFile,
  total: number,
  name: string,
  options: FetchOptions,
): Promise<{ size: number; sha256: string }> {
  while (true) {
    const message = await replies.next();
    if (message.type !== DownloadMessageType.Data) {
      return checkDownloadEnd(decodeJson(expect(message, DownloadMessageType.End).body));
    }
    if (partial.size + message.body.length > total) {
      throw new OvtpError("protocol", "The server sent more data than the file's size");
    }
    await partial.write(message.body);
    releaseOpened(message.body); // Written: the buffer can take the next record.
    options.onProgress?.({ name, done: partial.size, total });
  }
}

// Syncs and closes a verified download, and gives it its name.
async function moveIntoPlace(
  partial: PartialFile,
  dest: string,
  info: { mode: number; mtime?: number },
): Promise<void> {
  await partial.sync();
  // The server's modification time, through the handle (as scp -p).
  if (info.mtime !== undefined) await partial.setModified(info.mtime);
  const written = await partial.stat();
  await partial.close();
  // Through a descriptor that does not follow links, and only if the
  // name still leads to the file just written.
  chmodFile(partial.path, info.mode, written);
  // A hard link never replaces an existing name, a planted link included.
  await Deno.link(partial.path, dest).catch((error) => {
    throw error instanceof Deno.errors.AlreadyExists
      ? new OvtpError("io", `"${dest}" already exists`)
      : error;
  });
  await Deno.remove(partial.path);
}

/**
 * Checks, without downloading it, that the complete file at `path` is the
 * server's `remotePath` byte for byte: its size and SHA-256 go to the
 * server as a prefix to resume after, and the server confirms the prefix
 * is the whole file (Info at offset = size, then End with the same hash).
 * Throws an `io` OvtpError when they differ, and never changes `path`.
 *
 * When the sizes match but the bytes do not, the server streams the file
 * anyway (it starts over); those messages arrive after this returns, and
 * the connection fails on them: stop using it.
 */
export async function verifyHeldFile(
  link: MessageLink,
  remotePath: string,
  path: string,
): Promise<FetchedFile> {
  const file = await openExistingFile(path, { read: true });
  if (!file) throw new OvtpError("io", `"${path}" disappeared`);
  let held;
  try {
    held = await heldPrefix(file);
  } finally {
    file.close();
  }
  const sha256 = held.hash.digest("hex");
  const differs = () =>
    new OvtpError("io", `"${path}" already exists and is not the server's "${remotePath}"`, {
      hint: "move it away, or pull into another folder",
    });
  using exchange = openExchange(link);
  const { id, replies } = exchange;
  await link.send({
    type: DownloadMessageType.Get,
    id,
    body: encodeJson({ path: remotePath, offset: held.size, prefix_sha256: held.sha256 }),
  });
  const info = checkInfo(decodeJson(expect(await replies.next(), DownloadMessageType.Info).body));
  if (info.offset !== held.size || info.size !== held.size) throw differs();
  const end = checkDownloadEnd(
    decodeJson(expect(await replies.next(), DownloadMessageType.End).body),
  );
  if (end.size !== held.size || end.sha256 !== sha256) throw differs();
  return { path, size: held.size, sha256, resumedFrom: held.size };
}

/**
 * Downloads `remotePath` into `sink` (stdout, a pipe), from the start: a
 * stream has no partial file to resume from. The SHA-256 is checked at the
 * end; what was written before a mismatch cannot be taken back, so the
 * caller must report the failure (non-zero exit).
 */
export async function streamFile(
  link: MessageLink,
  remotePath: string,
  sink: { write(bytes: Uint8Array): Promise<void> },
  options: Pick<FetchOptions, "onProgress"> = {},
): Promise<Omit<FetchedFile, "path">> {
  using exchange = openExchange(link);
  const { id, replies } = exchange;
  await link.send({
    type: DownloadMessageType.Get,
    id,
    body: encodeJson({ path: remotePath, offset: 0, prefix_sha256: null }),
  });
  const info = checkInfo(decodeJson(expect(await replies.next(), DownloadMessageType.Info).body));
  if (info.offset !== 0) {
    throw new OvtpError("protocol", "The server resumed at an offset it was not offered");
  }
  const hash = sha256Stream();
  let size = 0;
  while (true) {
    const message = await replies.next();
    if (message.type === DownloadMessageType.Data) {
      if (size + message.body.length > info.size) {
        throw new OvtpError("protocol", "The server sent more data than the file's size");
      }
      size += message.body.length;
      const [hashed, written] = await Promise.allSettled([
        hash.updateAsync(message.body),
        sink.write(message.body),
      ]);
      if (written.status === "rejected") throw written.reason;
      if (hashed.status === "rejected") throw hashed.reason;
      // Not given back for reuse: the sink may keep what it was given.
      options.onProgress?.({ name: remotePath, done: size, total: info.size });
      continue;
    }
    const end = checkDownloadEnd(decodeJson(expect(message, DownloadMessageType.End).body));
    const sha256 = hash.digest("hex");
    if (end.size !== size || end.sha256 !== sha256) {
      throw new OvtpError("protocol", "The downloaded data does not match the server's SHA-256");
    }
    return { size, sha256, resumedFrom: 0 };
  }
}

/** Lists a folder of the server's served folder. */
export async function listFiles(link: MessageLink, remotePath: string): Promise<ListEntry[]> {
  using exchange = openExchange(link);
  const { id, replies } = exchange;
  await link.send({ type: DownloadMessageType.List, id, body: encodeJson({ path: remotePath }) });
  const reply = expect(await replies.next(), DownloadMessageType.ListResult);
  return checkListResult(decodeJson(reply.body)).entries;
}

function expect(message: Message, type: number): Message {
  if (message.type === DownloadMessageType.Error) {
    const info = decodeJson(message.body);
    throw new OvtpError("remote", `The server refused: ${String(info.message)}`);
  }
  if (message.type !== type) {
    throw new OvtpError("protocol", `Unexpected download message type ${message.type}`);
  }
  return message;
}

/** What an earlier attempt left: its size, its SHA-256, and the running hash to go on with. */
async function heldPrefix(
  file: Deno.FsFile,
): Promise<{ size: number; sha256: string | null; hash: Sha256Stream }> {
  const hash = sha256Stream();
  const buffer = new Uint8Array(1024 * 1024);
  let size = 0;
  await file.seek(0, Deno.SeekMode.Start);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    size += n;
  }
  return { size, sha256: size > 0 ? hash.copy().digest("hex") : null, hash };
}

function reason(error: Error): string {
  return error.message.replace(/^Cannot write "[^"]*": /, "");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
