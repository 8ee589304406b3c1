/**
 * The transfer engine: the steps every resumable transfer takes, in both
 * directions. Uploads (the client sends, the server's inbox receives) and
 * downloads (the server's served folder sends, the client receives) carry
 * them in their own messages (the upload's are at the end of this file,
 * the download's in download_messages.ts; docs/protocol.md sections 14 and
 * 18), but the steps are these:
 *
 * 1. The receiver holds a partial file ({@linkcode PartialFile}, below:
 *    buffered writes and a running SHA-256 of everything it holds) and
 *    names its length and SHA-256.
 * 2. The sender starts after those bytes if its source's first bytes hash
 *    to the same value, else from the start: {@linkcode startAfter}.
 * 3. The data follows in bulk records, hashed as it goes:
 *    {@linkcode sendChunks}, and on the other side PartialFile.write.
 * 4. The end names the size and SHA-256 of the whole, which the receiver
 *    checks ({@linkcode endMismatch}) before the file takes its name.
 *
 * @module
 */

import { type Sha256Stream, sha256Stream } from "../../crypto/mod.ts";
import { writeAll } from "../../io/files.ts";
import { MessageError, MessageType } from "../../channel/messages.ts";

/** What the receiver holds: a length and the SHA-256 (hex) of those bytes. */
export interface HeldPrefix {
  offset: number;
  sha256: string | null;
}

/** Where a sender starts: the bytes skipped, their running hash, and the rest of the source. */
export interface SendStart {
  /** Bytes the receiver already holds (0: from the start). */
  offset: number;
  /** The SHA-256 of the source so far, to go on with. */
  hash: Sha256Stream;
  /** The source from `offset` on. */
  chunks: AsyncIterator<Uint8Array>;
  /** The part of the last chunk read that lies past `offset`, sent first. */
  pending?: Uint8Array;
}

/**
 * Reads the first `held.offset` bytes of the source that `read` opens and,
 * when they hash to `held.sha256`, starts after them; otherwise (another
 * source, a shorter one, nothing held) starts from the beginning, with
 * `read` called again for a fresh read.
 */
export async function startAfter(
  read: () => AsyncIterator<Uint8Array>,
  held: HeldPrefix | null,
): Promise<SendStart> {
  const chunks = read();
  const hash = sha256Stream();
  if (!held || held.offset === 0 || held.sha256 === null) return { offset: 0, hash, chunks };
  let seen = 0;
  let pending: Uint8Array | undefined;
  while (seen < held.offset) {
    const { value, done } = await chunks.next();
    if (done) return { offset: 0, hash: sha256Stream(), chunks: read() };
    const take = Math.min(value.length, held.offset - seen);
    hash.update(value.subarray(0, take));
    seen += take;
    if (take < value.length) pending = value.subarray(take);
  }
  if (hash.copy().digest("hex") !== held.sha256) {
    await chunks.return?.();
    return { offset: 0, hash: sha256Stream(), chunks: read() };
  }
  return { offset: seen, hash, chunks, pending };
}

/** Options of {@linkcode sendChunks}. */
export interface SendChunksOptions {
  /**
   * Wraps each wait for the source: the sender of an upload rejects it as
   * soon as the connection fails, so that a slow pipe does not keep a dead
   * connection waiting.
   */
  waitFor?: <T>(promise: Promise<T>) => Promise<T>;
  /** Checked before each chunk: true stops the transfer (the connection ended). */
  stopped?: () => boolean;
  /** Called after each chunk with the bytes sent so far, counting the offset. */
  onChunk?: (done: number) => void;
}

/**
 * Sends the rest of the source through `send` (one bulk record per chunk),
 * hashing each chunk while it is sealed; both settle before the source
 * reads into its buffer again. Returns the bytes sent after the offset.
 * On a failure the source is closed (not awaited: a read blocked on a
 * pipe ends only when the pipe says something).
 */
export async function sendChunks(
  start: SendStart,
  send: (chunk: Uint8Array) => Promise<void>,
  options: SendChunksOptions = {},
): Promise<number> {
  const waitFor = options.waitFor ?? ((promise) => promise);
  let sent = 0;
  const sendOne = async (chunk: Uint8Array) => {
    const [hashed, written] = await Promise.allSettled([
      start.hash.updateAsync(chunk),
      send(chunk),
    ]);
    if (written.status === "rejected") throw written.reason;
    if (hashed.status === "rejected") throw hashed.reason;
    sent += chunk.length;
    options.onChunk?.(start.offset + sent);
  };
  try {
    if (start.pending && start.pending.length > 0) await sendOne(start.pending);
    while (!options.stopped?.()) {
      const { value, done } = await waitFor(start.chunks.next());
      if (done) break;
      if (value.length > 0) await sendOne(value);
    }
    if (options.stopped?.()) await start.chunks.return?.();
  } catch (error) {
    start.chunks.return?.().catch(() => {});
    throw error;
  }
  return sent;
}

/**
 * What is wrong with the end a sender announced, against what the receiver
 * wrote: `size` or `hash`, or undefined when both match. Returns the
 * received SHA-256 too.
 */
export function endMismatch(
  partial: PartialFile,
  end: { size: number; sha256: string },
): { sha256: string; mismatch?: "size" | "hash" } {
  const sha256 = partial.hash.digest("hex");
  if (end.size !== partial.size) return { sha256, mismatch: "size" };
  if (end.sha256 !== sha256) return { sha256, mismatch: "hash" };
  return { sha256 };
}

/** Bytes gathered before one write: fewer, larger writes cost less. */
const WRITE_BUFFER_SIZE = 1024 * 1024;

/** A file being received: buffered writes and a running SHA-256. */
export class PartialFile {
  /** Its path. */
  readonly path: string;
  /** SHA-256 of what it holds so far. */
  readonly hash: Sha256Stream;
  /** Bytes received (written or buffered). */
  size: number;
  #file: Deno.FsFile;
  #buffer = new Uint8Array(WRITE_BUFFER_SIZE);
  #buffered = 0;

  /** Wraps an open file positioned at `size`. */
  constructor(file: Deno.FsFile, path: string, hash: Sha256Stream, size: number) {
    this.#file = file;
    this.path = path;
    this.hash = hash;
    this.size = size;
  }

  /**
   * Appends bytes (hashing them). A whole bulk record is written as it is,
   * while it is hashed (on another thread with the native backend); the
   * caller may reuse `data` once this settles.
   */
  async write(data: Uint8Array): Promise<void> {
    this.size += data.length;
    if (this.#buffered + data.length > this.#buffer.length) await this.flush();
    if (data.length >= this.#buffer.length) {
      // Both settle before this does, even when one fails: neither may
      // still be reading `data` when the caller reuses it.
      const [hashed, written] = await Promise.allSettled([
        this.hash.updateAsync(data),
        writeAll(this.#file, data),
      ]);
      if (written.status === "rejected") throw written.reason;
      if (hashed.status === "rejected") throw hashed.reason;
      return;
    }
    this.hash.update(data);
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

  /** Sets the modification (and access) time, through the handle: never through a link. */
  async setModified(mtimeMs: number): Promise<void> {
    await this.#file.utime(new Date(mtimeMs), new Date(mtimeMs));
  }

  /** The file's identity (for checking that a path still leads to it). */
  async stat(): Promise<Deno.FileInfo> {
    return await this.#file.stat();
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

// The upload's messages and their JSON bodies (Data is raw bytes). An upload
// is one request id: Offer, Accept, Start, Data..., End, Result.

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
