/**
 * A file being received (an upload on the server, a download on the
 * client): buffered writes and a running SHA-256 of everything it holds.
 *
 * @module
 */

import type { Sha256Stream } from "../../crypto/mod.ts";
import { writeAll } from "../../io/files.ts";

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
