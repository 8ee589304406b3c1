/**
 * The server's side of downloads on one connection: answers Get with the
 * file's data (after a verified prefix, to resume) and List with a listing,
 * from a {@linkcode ServedFolder}.
 *
 * @module
 */

import { sha256Stream } from "../../crypto/mod.ts";
import { MAX_BULK_PLAINTEXT } from "../../channel/channel.ts";
import { OvtpError } from "../../errors.ts";
import { decodeJson, encodeJson, type Message, MessageError } from "../../channel/messages.ts";
import { checkGet, DownloadMessageType } from "./download_messages.ts";
import type { ServedFolder } from "./served_folder.ts";

/**
 * Gets and Lists one connection may have in progress at once: each holds an
 * open file and a 1 MiB read buffer, so without a cap one client could
 * hold every file descriptor and gigabytes. One more is answered `busy`.
 */
export const MAX_DOWNLOADS_IN_FLIGHT = 8;

/** Serves downloads on one connection. */
export class DownloadProvider {
  #folder: ServedFolder;
  #send: (message: Message) => Promise<void>;
  #closed = false;
  #inFlight = 0;

  /** Serves `folder`, answering through `send`. */
  constructor(folder: ServedFolder, send: (message: Message) => Promise<void>) {
    this.#folder = folder;
    this.#send = send;
  }

  /** Downloads and listings in progress. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Answers a Get or a List, or Error `busy` when MAX_DOWNLOADS_IN_FLIGHT are in progress. */
  async handle(message: Message): Promise<void> {
    if (this.#inFlight >= MAX_DOWNLOADS_IN_FLIGHT) {
      return await this.#send({
        type: DownloadMessageType.Error,
        id: message.id,
        body: encodeJson({
          code: "busy",
          message:
            `Too many downloads in progress on this connection (at most ${MAX_DOWNLOADS_IN_FLIGHT})`,
        }),
      }).catch(() => {});
    }
    this.#inFlight++;
    try {
      if (message.type === DownloadMessageType.List) {
        const body = decodeJson(message.body);
        const path = typeof body.path === "string" ? body.path : "";
        const entries = await this.#folder.list(path);
        await this.#send({
          type: DownloadMessageType.ListResult,
          id: message.id,
          body: encodeJson({ path, entries }),
        });
      } else {
        await this.#get(message.id, checkGet(decodeJson(message.body)));
      }
    } catch (error) {
      if (this.#closed) return;
      const known = error instanceof OvtpError || error instanceof MessageError;
      await this.#send({
        type: DownloadMessageType.Error,
        id: message.id,
        body: encodeJson({
          code: error instanceof MessageError ? "protocol" : "refused",
          message: known ? (error as Error).message : "The server could not read the file",
        }),
      }).catch(() => {});
    } finally {
      this.#inFlight--;
    }
  }

  /** Stops streams in progress (the connection ended). */
  close(): void {
    this.#closed = true;
  }

  async #get(id: number, get: { path: string; offset: number; prefix_sha256: string | null }) {
    const { file, size, mode, mtime } = await this.#folder.open(get.path);
    try {
      const hash = sha256Stream();
      let offset = 0;
      if (get.offset > 0 && get.offset <= size && get.prefix_sha256) {
        await copy(file, get.offset, (chunk) => hash.update(chunk));
        if (hash.copy().digest("hex") === get.prefix_sha256) offset = get.offset;
      }
      const data = offset > 0 ? hash : sha256Stream();
      if (offset === 0) await file.seek(0, Deno.SeekMode.Start);
      await this.#send({
        type: DownloadMessageType.Info,
        id,
        // mtime is optional: an older client ignores it.
        body: encodeJson({ size, mode, offset, ...(mtime === undefined ? {} : { mtime }) }),
      });
      const sent = await copy(file, size - offset, async (chunk) => {
        // Hashed (on another thread with the native backend) while it is
        // sealed; the channel keeps the ciphertext, so the buffer is free
        // for the next chunk once both settle.
        const [hashed, written] = await Promise.allSettled([
          data.updateAsync(chunk),
          this.#send({ type: DownloadMessageType.Data, id, body: chunk }),
        ]);
        if (written.status === "rejected") throw written.reason;
        if (hashed.status === "rejected") throw hashed.reason;
      }, () => this.#closed);
      if (sent !== size - offset) {
        throw new OvtpError("io", "The file changed size while being sent");
      }
      await this.#send({
        type: DownloadMessageType.End,
        id,
        body: encodeJson({ size, sha256: data.digest("hex") }),
      });
    } finally {
      file.close();
    }
  }
}

/**
 * Reads `length` bytes from `file` in bulk-record-sized chunks, passing each
 * to `use` and awaiting it: every chunk is read into the same buffer, so
 * `use` must be done with it when it settles. Returns the bytes read, less
 * if the file is shorter or `stop` says so.
 */
async function copy(
  file: Deno.FsFile,
  length: number,
  use: (chunk: Uint8Array) => unknown,
  stop: () => boolean = () => false,
): Promise<number> {
  let done = 0;
  const buffer = new Uint8Array(Math.min(MAX_BULK_PLAINTEXT, length));
  while (done < length && !stop()) {
    const chunk = buffer.subarray(0, Math.min(MAX_BULK_PLAINTEXT, length - done));
    const n = await file.read(chunk);
    if (n === null) break;
    await use(chunk.subarray(0, n));
    done += n;
  }
  return done;
}
