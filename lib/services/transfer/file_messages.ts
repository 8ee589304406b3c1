/**
 * The file transfer messages and their JSON bodies (Data is raw bytes).
 * A transfer is one request id: Offer, Accept, Start, Data..., End, Result.
 *
 * @module
 */

import { MessageError, MessageType } from "../../channel/messages.ts";

/** Message types of a file transfer. */
export const FileMessageType = {
  /** Client: a file it wants to send. */
  Offer: MessageType.UploadOffer,
  /** Server: how much of it the server already holds. */
  Accept: MessageType.UploadAccept,
  /** Client: where the data will start. */
  Start: MessageType.UploadStart,
  /** Client: the next bytes of the file. */
  Data: MessageType.UploadData,
  /** Client: the whole file's size and SHA-256. */
  End: MessageType.UploadEnd,
  /** Server: the outcome; also a refusal at any point. */
  Result: MessageType.UploadResult,
  /** Client: it gives up (a local read error). */
  Abort: MessageType.UploadAbort,
} as const;

/** Offer body. */
export interface FileOffer {
  /** The relative path, `/`-separated. */
  name: string;
  /** The size when known (a file), null for a stream. */
  size: number | null;
  /** Unix permission bits, or null. */
  mode: number | null;
  /** Whether the client can resend from an offset. */
  resumable: boolean;
  /**
   * Absent for a lone file. For a file of a folder sent as a whole: a token
   * (1 to 64 characters) the same for every file of that folder on this
   * connection; the first component of `name` is the folder, which the
   * server stores as a new folder (`proj`, or `proj (1)`, ...).
   */
  folder?: string;
  /**
   * Optional: the file's modification time, in whole milliseconds since the
   * Unix epoch; the server gives it to the stored file (as `scp -p`).
   */
  mtime?: number;
}

/** Accept body. */
export interface FileAccept {
  /** Bytes the server holds from an earlier, interrupted transfer. */
  offset: number;
  /** SHA-256 (hex) of those bytes, or null when offset is 0. */
  prefix_sha256: string | null;
}

/** End body. */
export interface FileEnd {
  /** The total size sent. */
  size: number;
  /** SHA-256 (hex) of the whole content. */
  sha256: string;
}

/** Result body. */
export interface FileResult {
  /** `ok`, or `error` with a code and message. */
  status: "ok" | "error";
  /** For errors: `too-large`, `no-space`, `bad-hash`, `bad-size`, `io`, `protocol`. */
  code?: string;
  /** For errors: what went wrong. */
  message?: string;
  /** Where the file was stored, relative to the inbox, `/`-separated. */
  path?: string;
  /** The stored size. */
  size?: number;
  /** The verified SHA-256 (hex). */
  sha256?: string;
  /** Whether the name was changed because a file of that name existed. */
  renamed?: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** Validates an Offer body. */
export function checkOffer(v: Record<string, unknown>): FileOffer {
  if (
    typeof v.name !== "string" || v.name.length === 0 || v.name.length > 4096 ||
    !(v.size === null || isCount(v.size)) ||
    !(v.mode === null || (isCount(v.mode) && v.mode <= 0o7777)) ||
    typeof v.resumable !== "boolean" ||
    !(v.folder === undefined ||
      (typeof v.folder === "string" && v.folder.length > 0 && v.folder.length <= 64)) ||
    // The largest time a Date holds.
    !(v.mtime === undefined || (isCount(v.mtime) && v.mtime <= 8.64e15))
  ) {
    throw new MessageError("Malformed file offer");
  }
  return v as unknown as FileOffer;
}

/** Validates an Accept body. */
export function checkAccept(v: Record<string, unknown>): FileAccept {
  if (
    !isCount(v.offset) ||
    !(v.prefix_sha256 === null || (typeof v.prefix_sha256 === "string" &&
      HEX64.test(v.prefix_sha256)))
  ) {
    throw new MessageError("Malformed file accept");
  }
  return v as unknown as FileAccept;
}

/** Validates a Start body; returns the offset. */
export function checkStart(v: Record<string, unknown>): number {
  if (!isCount(v.offset)) throw new MessageError("Malformed file start");
  return v.offset;
}

/** Validates an End body. */
export function checkEnd(v: Record<string, unknown>): FileEnd {
  if (!isCount(v.size) || typeof v.sha256 !== "string" || !HEX64.test(v.sha256)) {
    throw new MessageError("Malformed file end");
  }
  return v as unknown as FileEnd;
}

/** Validates a Result body. */
export function checkResult(v: Record<string, unknown>): FileResult {
  if (v.status !== "ok" && v.status !== "error") throw new MessageError("Malformed file result");
  // The optional fields too: the sender reads them (path, renamed) as typed.
  const optional = (value: unknown, type: string) => value === undefined || typeof value === type;
  if (
    !optional(v.code, "string") || !optional(v.message, "string") ||
    !optional(v.path, "string") || !(v.size === undefined || isCount(v.size)) ||
    !optional(v.sha256, "string") || !optional(v.renamed, "boolean")
  ) {
    throw new MessageError("Malformed file result");
  }
  return v as unknown as FileResult;
}
