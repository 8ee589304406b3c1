/**
 * Download messages: a client fetches a file (or a listing) from a server's
 * read-only served folder. A download is one request id:
 * Get → Info, Data..., End (or Error); List → ListResult (or Error).
 *
 * @module
 */

import { MessageError, MessageType } from "../../channel/messages.ts";

/** Message types of downloads. */
export const DownloadMessageType = {
  /** Client: `{path, offset, prefix_sha256}`. */
  Get: MessageType.DownloadGet,
  /** Server: `{size, mode, offset[, mtime]}`; the data starts at `offset`. */
  Info: MessageType.DownloadInfo,
  /** Server: the next bytes. */
  Data: MessageType.DownloadData,
  /** Server: `{size, sha256}` of the whole file. */
  End: MessageType.DownloadEnd,
  /** Server: `{code, message}`. */
  Error: MessageType.DownloadError,
  /** Client: `{path}`. */
  List: MessageType.DownloadList,
  /** Server: `{path, entries: [{name, type, size, mode}]}`. */
  ListResult: MessageType.DownloadListResult,
} as const;

/**
 * One entry of a listing, as {@linkcode OvtpClient.listFiles} and
 * {@linkcode ServedFolder.list} return it.
 *
 * @example Listing a served folder
 * ```ts
 * import { type ListEntry, ServedFolder } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/photos`);
 * await Deno.writeTextFile(`${dir}/readme.txt`, "hello");
 * const unix = Deno.build.os !== "windows"; // Windows has no Unix modes.
 * if (unix) await Deno.chmod(`${dir}/readme.txt`, 0o644);
 *
 * const entries: ListEntry[] = await new ServedFolder(dir).list("");
 * assert.deepEqual(entries.map(({ name, type, size }) => ({ name, type, size })), [
 *   { name: "photos", type: "dir", size: 0 },
 *   { name: "readme.txt", type: "file", size: 5 },
 * ]);
 * if (unix) assert.equal(entries[1].mode, 0o644);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface ListEntry {
  /** Its name in the folder. */
  name: string;
  /** `file` or `dir` (symlinks and others are not listed). */
  type: "file" | "dir";
  /** Size in bytes (0 for folders). */
  size: number;
  /** Permission bits. */
  mode: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** Validates a Get body. */
export function checkGet(v: Record<string, unknown>): {
  path: string;
  offset: number;
  prefix_sha256: string | null;
} {
  if (
    typeof v.path !== "string" || v.path.length > 4096 || !isCount(v.offset) ||
    !(v.prefix_sha256 === null ||
      (typeof v.prefix_sha256 === "string" && HEX64.test(v.prefix_sha256)))
  ) {
    throw new MessageError("Malformed get");
  }
  return v as { path: string; offset: number; prefix_sha256: string | null };
}

/** Validates an Info body. */
export function checkInfo(
  v: Record<string, unknown>,
): { size: number; mode: number; offset: number; mtime?: number } {
  if (
    !isCount(v.size) || !isCount(v.mode) || !isCount(v.offset) || v.offset > v.size ||
    // The largest time a Date holds.
    !(v.mtime === undefined || (isCount(v.mtime) && v.mtime <= 8.64e15))
  ) {
    throw new MessageError("Malformed download info");
  }
  return v as { size: number; mode: number; offset: number; mtime?: number };
}

/** Validates an End body. */
export function checkDownloadEnd(v: Record<string, unknown>): { size: number; sha256: string } {
  if (!isCount(v.size) || typeof v.sha256 !== "string" || !HEX64.test(v.sha256)) {
    throw new MessageError("Malformed download end");
  }
  return v as { size: number; sha256: string };
}

/** Validates a ListResult body. */
export function checkListResult(
  v: Record<string, unknown>,
): { path: string; entries: ListEntry[] } {
  const ok = typeof v.path === "string" && Array.isArray(v.entries) &&
    v.entries.every((e) =>
      typeof e?.name === "string" && (e.type === "file" || e.type === "dir") && isCount(e.size) &&
      isCount(e.mode)
    );
  if (!ok) throw new MessageError("Malformed listing");
  return v as { path: string; entries: ListEntry[] };
}
