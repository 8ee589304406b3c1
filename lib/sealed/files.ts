/**
 * Files in and out of the sealed-file streams: a reader turned into a
 * stream of large pieces, and an output file that appears only once it is
 * complete, so that a file that fails to open leaves nothing half-written
 * behind.
 *
 * @module
 */

import { writeAll as writeBytes, type Writer, writeThroughTemp } from "../io/files.ts";
import { checkNotLink } from "../io/no_follow.ts";

/** Something to read from: a `Deno.FsFile`, `Deno.stdin`. */
export interface Readable {
  /** Reads into `buffer`; null at the end. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Options of {@linkcode readerStream}. */
export interface ReaderStreamOptions {
  /** Bytes per read for a default reader. @default 1 MiB */
  chunkSize?: number;
  /** Called once, at the end, on an error or on cancel (e.g. to close the file). */
  onClose?: () => void;
}

/**
 * A byte stream of `reader`'s bytes. A BYOB reader (as the sealed-file
 * reader uses) gets the bytes read straight into its buffer; a default
 * reader gets pieces of `chunkSize`.
 *
 * @param reader What to read.
 * @param options The read size and a close hook.
 * @returns The stream.
 */
export function readerStream(
  reader: Readable,
  options: ReaderStreamOptions = {},
): ReadableStream<Uint8Array> {
  let closed = false;
  const close = () => {
    if (!closed) options.onClose?.();
    closed = true;
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: options.chunkSize ?? 1024 * 1024,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      let count: number | null;
      try {
        count = await reader.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      } catch (error) {
        close();
        throw error;
      }
      if (count === null) {
        close();
        controller.close();
        request.respond(0);
      } else {
        request.respond(count);
      }
    },
    cancel() {
      close();
    },
  });
}

/** Options of {@linkcode writeFileAtomically}. */
export interface WriteFileAtomicallyOptions {
  /** The new file's mode. @default 0o600 */
  mode?: number;
  /**
   * Whether an existing regular file at `path` is replaced. When false, the
   * finished file is linked into place, which never replaces a name: a file
   * that appeared meanwhile fails the write with `Deno.errors.AlreadyExists`.
   * @default true
   */
  replace?: boolean;
}

/**
 * Writes `stream` to `path` through a temporary file in the same directory,
 * synced and renamed over `path` only when the stream has ended without
 * error. When the stream errors, the temporary file is removed and `path`
 * is left as it was. A `path` that exists and is not a regular file
 * (`/dev/null`, a pipe) is written directly: it cannot be replaced. A
 * symlink to a regular file (or to nothing) is refused.
 *
 * @param path The file to write.
 * @param stream The content.
 * @param options The mode, and whether an existing file is replaced.
 * @returns The number of bytes written.
 */
export async function writeFileAtomically(
  path: string,
  stream: ReadableStream<Uint8Array>,
  options: WriteFileAtomicallyOptions = {},
): Promise<number> {
  const mode = options.mode ?? 0o600;
  if (await isSpecial(path)) {
    using file = await Deno.open(path, { write: true });
    return await writeAll(file, stream);
  }
  return await writeThroughTemp(path, mode, (file) => writeAll(file, stream), options);
}

// A device or a pipe, reached directly or through a link (/dev/stdout is
// one). A link to a regular file, or to nothing, is refused: ovtp never
// writes through a link, nor silently replaces one.
async function isSpecial(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    if (info.isFile) await checkNotLink(path);
    return !info.isFile;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    await checkNotLink(path);
    return false;
  }
}

/** Something to write to: a `Deno.FsFile`, `Deno.stdout`. */
export type Writable = Writer;

/**
 * Writes all of `stream` to `writer`, each piece while the next one is
 * being produced. A byte stream is read into two buffers in turn (BYOB), so
 * that no buffer is allocated per piece.
 *
 * @param writer Where to write.
 * @param stream What to write.
 * @returns The number of bytes written.
 */
export async function writeAll(
  writer: Writable,
  stream: ReadableStream<Uint8Array>,
): Promise<number> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    byob = undefined;
  }
  const reader = byob ?? stream.getReader();
  const spare: Uint8Array<ArrayBuffer>[] = [
    new Uint8Array(WRITE_BUFFER),
    new Uint8Array(WRITE_BUFFER),
  ];
  const next = async (): Promise<Uint8Array | undefined> => {
    if (byob) {
      const { value, done } = await byob.read(spare.pop()!);
      return done ? undefined : value;
    }
    const { value, done } = await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
    return done ? undefined : value;
  };
  let total = 0;
  let writing: Promise<void> | undefined;
  try {
    while (true) {
      const value = await next();
      await writing;
      writing = undefined;
      if (!value) break;
      total += value.length;
      writing = writeBytes(writer, value).then(() => {
        // A BYOB read lent this buffer: it is the next one to read into.
        if (byob) spare.push(new Uint8Array(value.buffer as ArrayBuffer));
      });
      // Awaited before the next write; until then a failure (a closed
      // stdout) must not count as an unhandled rejection, which ends Deno.
      writing.catch(() => {});
    }
  } catch (error) {
    await writing?.catch(() => {});
    await reader.cancel(error).catch(() => {});
    throw error;
  }
  return total;
}

// Two of these: one being written while the next is filled.
const WRITE_BUFFER = 1024 * 1024;
