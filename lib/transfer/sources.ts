/**
 * What a file transfer reads from: a file by path (resumable), a directory
 * walked recursively, or any ReadableStream (such as stdin, not resumable).
 *
 * @module
 */

import { basename, join, relative, sep } from "node:path";
import { OvtpError } from "../errors.ts";
import { MAX_BULK_PLAINTEXT } from "../channel.ts";

/** Something to send as one file. */
export interface FileSource {
  /** The relative name the receiver sees, `/`-separated. */
  readonly name: string;
  /** The size, when known in advance. */
  readonly size: number | null;
  /** Unix permission bits, when known. */
  readonly mode: number | null;
  /** Whether it can be read again from the start (and so resumed). */
  readonly resumable: boolean;
  /** Yields the content from the start; each chunk is a fresh buffer. */
  read(): AsyncIterable<Uint8Array>;
}

/** Chunks read from a file at once: each one travels as one bulk record. */
const READ_SIZE = MAX_BULK_PLAINTEXT;

/** A file by path. Throws an OvtpError (`io`) if it cannot be read. */
export async function pathSource(
  path: string,
  name: string = basename(path),
): Promise<FileSource> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
    // Open once now, so an unreadable file fails before anything is sent.
    (await Deno.open(path, { read: true })).close();
  } catch (error) {
    throw sourceError(path, error);
  }
  if (!info.isFile) {
    throw new OvtpError("io", `Cannot send "${path}": not a regular file`);
  }
  return {
    name,
    size: info.size,
    mode: info.mode === null ? null : info.mode & 0o7777,
    resumable: true,
    async *read() {
      const file = await Deno.open(path, { read: true }).catch((error) => {
        throw sourceError(path, error);
      });
      try {
        while (true) {
          const chunk = await readChunk(file, path);
          if (chunk.length === 0) return;
          yield chunk;
          if (chunk.length < READ_SIZE) return;
        }
      } finally {
        file.close();
      }
    },
  };
}

/** Reads up to READ_SIZE bytes into a fresh buffer; fewer only at the end. */
async function readChunk(file: Deno.FsFile, path: string): Promise<Uint8Array> {
  const buffer = new Uint8Array(READ_SIZE);
  let filled = 0;
  try {
    while (filled < buffer.length) {
      const n = await file.read(buffer.subarray(filled));
      if (n === null) break;
      filled += n;
    }
  } catch (error) {
    throw sourceError(path, error);
  }
  return buffer.subarray(0, filled);
}

/** Any stream, read once (it cannot resume). */
export function streamSource(stream: ReadableStream<Uint8Array>, name: string): FileSource {
  let used = false;
  return {
    name,
    size: null,
    mode: null,
    resumable: false,
    async *read() {
      if (used) throw new OvtpError("io", `The stream for "${name}" can be read only once`);
      used = true;
      // Gathered into READ_SIZE pieces: one bulk record each, instead of a
      // small record per pipe read.
      let buffer = new Uint8Array(READ_SIZE);
      let filled = 0;
      for await (const chunk of stream) {
        for (let offset = 0; offset < chunk.length;) {
          const n = Math.min(chunk.length - offset, READ_SIZE - filled);
          buffer.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === READ_SIZE) {
            yield buffer;
            buffer = new Uint8Array(READ_SIZE);
            filled = 0;
          }
        }
      }
      if (filled > 0) yield buffer.subarray(0, filled);
    },
  };
}

/**
 * The files under a directory, recursively, named `<dir name>/<relative
 * path>`. Symlinks are not followed: each one is passed to `onSkip`, as are
 * special files.
 */
export async function* directorySources(
  dir: string,
  onSkip: (path: string, reason: string) => void = () => {},
): AsyncGenerator<FileSource> {
  const root = basename(dir.replace(/[/\\]+$/, "")) || "root";
  async function* walk(folder: string): AsyncGenerator<FileSource> {
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const entry of Deno.readDir(folder)) entries.push(entry);
    } catch (error) {
      throw sourceError(folder, error);
    }
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isSymlink) onSkip(path, "a symlink (not followed)");
      else if (entry.isDirectory) yield* walk(path);
      else if (entry.isFile) {
        const name = [root, ...relative(dir, path).split(sep)].join("/");
        yield await pathSource(path, name);
      } else onSkip(path, "not a regular file");
    }
  }
  yield* walk(dir);
}

function sourceError(path: string, error: unknown): OvtpError {
  const reason = error instanceof Deno.errors.NotFound
    ? "no such file or directory"
    : error instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : (error as Error).message;
  return new OvtpError("io", `Cannot read "${path}": ${reason}`, { cause: error });
}
