/**
 * What a file transfer reads from: a file by path (resumable), a directory
 * walked recursively, or any ReadableStream (such as stdin, not resumable).
 *
 * @module
 */

import { basename, join, relative, sep } from "node:path";
import { OvtpError } from "../../errors.ts";
import { MAX_BULK_PLAINTEXT } from "../../channel/channel.ts";

/**
 * Something to send as one file with {@linkcode OvtpClient.sendFile}.
 * {@linkcode pathSource}, {@linkcode streamSource} and
 * {@linkcode directorySources} make them; any object of this shape works.
 *
 * @example Sending generated content, resumable because it can be made again
 * ```ts
 * import { type FileSource, generateIdentity, Inbox, OvtpClient, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const lines = ["id,name", "1,alice", "2,bob"];
 * const report: FileSource = {
 *   name: "report.csv",
 *   size: null, // Unknown until generated.
 *   mode: 0o640,
 *   resumable: true,
 *   async *read() {
 *     for (const line of lines) yield new TextEncoder().encode(line + "\n");
 *   },
 * };
 *
 * const dir = await Deno.makeTempDir();
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   inbox: new Inbox(dir),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * const sent = await client.sendFile(report);
 * assert.equal(sent.path, "alice/report.csv");
 * assert.equal(await Deno.readTextFile(`${dir}/alice/report.csv`), "id,name\n1,alice\n2,bob\n");
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface FileSource {
  /** The relative name the receiver sees, `/`-separated. */
  readonly name: string;
  /** The size, when known in advance. */
  readonly size: number | null;
  /** Unix permission bits, when known. */
  readonly mode: number | null;
  /** Whether it can be read again from the start (and so resumed). */
  readonly resumable: boolean;
  /**
   * Set by {@linkcode directorySources}: the same token for every file of
   * one folder, so that the server stores them in one new folder.
   */
  readonly folder?: string;
  /** The modification time to keep, in milliseconds since the Unix epoch (a file by path has one). */
  readonly mtime?: number;
  /**
   * Yields the content from the start; each chunk is a fresh buffer, unless
   * `options.reuse` allows a source to reuse them (one that ignores it
   * still works).
   */
  read(options?: ReadOptions): AsyncIterable<Uint8Array>;
}

/**
 * Options of {@linkcode FileSource.read}.
 *
 * @example Reading a file in reused buffers: each chunk is consumed before the next
 * ```ts
 * import { pathSource, type ReadOptions } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.bin`, new Uint8Array(3 * 1024 * 1024 + 1).fill(7));
 * const source = await pathSource(`${dir}/a.bin`);
 * const options: ReadOptions = { reuse: true };
 * let total = 0;
 * for await (const chunk of source.read(options)) {
 *   total += chunk.length; // Use it now: the next chunk may be read into its buffer.
 * }
 * assert.equal(total, 3 * 1024 * 1024 + 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface ReadOptions {
  /**
   * The caller is done with each chunk when it asks for the next, so the
   * source may read later chunks into the same buffers (no allocation, no
   * garbage per MiB). A file by path also reads the next chunk while the
   * caller uses this one. @default false
   */
  reuse?: boolean;
}

/** Chunks read from a file at once: each one travels as one bulk record. */
const READ_SIZE = MAX_BULK_PLAINTEXT;

/**
 * A file by path, sent under `name` (its base name by default); resumable.
 * Throws an OvtpError (`io`) if it cannot be read.
 *
 * @example A file's source, and a missing file
 * ```ts
 * import { OvtpError, pathSource } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/notes.txt`, "hello");
 *
 * const source = await pathSource(`${dir}/notes.txt`);
 * assert.equal(source.name, "notes.txt");
 * assert.equal(source.size, 5);
 * assert.equal(source.resumable, true);
 * const chunks = await Array.fromAsync(source.read());
 * assert.equal(new TextDecoder().decode(chunks[0]), "hello");
 *
 * assert.equal((await pathSource(`${dir}/notes.txt`, "docs/today.txt")).name, "docs/today.txt");
 * await assert.rejects(
 *   pathSource(`${dir}/missing.txt`),
 *   (error) => error instanceof OvtpError && error.kind === "io",
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
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
    ...(info.mtime ? { mtime: Math.max(0, Math.floor(info.mtime.getTime())) } : {}),
    async *read(options?: ReadOptions) {
      const file = await Deno.open(path, { read: true }).catch((error) => {
        throw sourceError(path, error);
      });
      try {
        yield* fileChunks(file, path, options?.reuse === true);
      } finally {
        file.close();
      }
    },
  };
}

/**
 * The chunks of an open file's first `length` bytes (all of it by
 * default): READ_SIZE bytes each, the last one shorter. With `reuse`, two buffers take turns: the next chunk is
 * read into one while the caller uses the other, and a chunk is valid only
 * until the caller asks for the one after. The caller closes the file.
 */
export async function* fileChunks(
  file: Deno.FsFile,
  path: string,
  reuse: boolean,
  length = Infinity,
): AsyncGenerator<Uint8Array> {
  await file.seek(0, Deno.SeekMode.Start);
  const size = Math.min(READ_SIZE, length);
  const buffers = reuse ? [new Uint8Array(size), new Uint8Array(size)] : [];
  let left = length;
  // The next chunk's buffer: never past `length`, so a growing file is read
  // as it was when its size was taken.
  const buffer = (i: number) =>
    (buffers[i % 2] ?? new Uint8Array(size)).subarray(0, Math.min(size, left));
  const readNext = (i: number) => {
    const chunk = readChunk(file, path, buffer(i));
    return chunk.then((bytes) => {
      left -= bytes.length;
      return bytes;
    });
  };
  let next: Promise<Uint8Array> | undefined = readNext(0);
  try {
    for (let i = 1; next; i++) {
      const chunk = await next;
      next = undefined;
      if (chunk.length === 0) return;
      const more = chunk.length === size && left > 0;
      if (more && reuse) {
        next = readNext(i);
        next.catch(() => {}); // Awaited on the next round, or in finally.
      }
      yield chunk;
      if (more && !reuse) next = readNext(i);
    }
  } finally {
    // A read still running must end before its file is closed.
    await next?.catch(() => {});
  }
}

/** Reads until `buffer` is full; less only at the end. */
async function readChunk(
  file: Deno.FsFile,
  path: string,
  buffer: Uint8Array,
): Promise<Uint8Array> {
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

/**
 * Any stream, read once (it cannot resume), such as `Deno.stdin.readable`.
 *
 * @example A stream's source can be read once only
 * ```ts
 * import { OvtpError, streamSource } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const stream = ReadableStream.from(["one ", "two"]).pipeThrough(new TextEncoderStream());
 * const source = streamSource(stream, "log.txt");
 * assert.equal(source.size, null);
 * assert.equal(source.resumable, false);
 *
 * const chunks = await Array.fromAsync(source.read());
 * assert.equal(chunks.map((chunk) => new TextDecoder().decode(chunk)).join(""), "one two");
 * await assert.rejects(Array.fromAsync(source.read()), OvtpError);
 * ```
 */
export function streamSource(stream: ReadableStream<Uint8Array>, name: string): FileSource {
  let used = false;
  return {
    name,
    size: null,
    mode: null,
    resumable: false,
    async *read(options?: ReadOptions) {
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
            if (!options?.reuse) buffer = new Uint8Array(READ_SIZE);
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
 * path>` (`<rootName>/<relative path>` when given). Symlinks are not
 * followed: each one is passed to `onSkip`, as are special files. All of
 * them carry the same {@linkcode FileSource.folder} token, fresh for each
 * call: a server stores them together in a new folder.
 *
 * @example Walking a folder
 * ```ts
 * import { directorySources } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 * import { basename, join } from "node:path";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/sub`);
 * await Deno.writeTextFile(`${dir}/a.txt`, "a");
 * await Deno.writeTextFile(`${dir}/sub/b.txt`, "bb");
 * await Deno.symlink(`${dir}/a.txt`, `${dir}/link.txt`);
 *
 * const skipped: string[] = [];
 * const names = [];
 * for await (const source of directorySources(dir, (path) => skipped.push(path))) {
 *   names.push(source.name);
 *   // Each one would go to client.sendFile(source).
 * }
 * const root = basename(dir);
 * assert.deepEqual(names, [`${root}/a.txt`, `${root}/sub/b.txt`]);
 * assert.deepEqual(skipped, [join(dir, "link.txt")]); // With the system's separator.
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function* directorySources(
  dir: string,
  onSkip: (path: string, reason: string) => void = () => {},
  rootName?: string,
): AsyncGenerator<FileSource> {
  const root = rootName ?? (basename(dir.replace(/[/\\]+$/, "")) || "root");
  // One token per folder sent: the server keeps its files together, in a
  // new folder rather than mixed into one an earlier send made.
  const token = crypto.randomUUID();
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
        yield { ...await pathSource(path, name), folder: token };
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
