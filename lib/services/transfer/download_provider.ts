/**
 * Downloads from the server's served folder (docs/protocol.md section 18):
 * the download service, and its side of one connection, which answers Get
 * with the file's data (after a verified prefix, to resume) and List with a
 * listing, from a {@linkcode ServedFolder}. Each needs the `download`
 * permission, then streams in the background while reading goes on. The
 * server's own download messages are not registered, so a client that sends
 * one is a protocol error.
 *
 * @module
 */

import { OvtpError } from "../../errors.ts";
import { decodeJson, encodeJson, type Message, MessageError } from "../../channel/messages.ts";
import { checkGet, DownloadMessageType } from "./download_messages.ts";
import type { ServedFolder } from "./served_folder.ts";
import { sendChunks, startAfter } from "./engine.ts";
import { fileChunks } from "./sources.ts";
import type { Service } from "../service.ts";

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
      // Two buffers take turns: the next chunk is read while one is sealed.
      const read = () => fileChunks(file, get.path, true, size);
      const held = get.offset <= size ? { offset: get.offset, sha256: get.prefix_sha256 } : null;
      const start = await startAfter(read, held);
      await this.#send({
        type: DownloadMessageType.Info,
        id,
        // mtime is optional: an older client ignores it.
        body: encodeJson({
          size,
          mode,
          offset: start.offset,
          ...(mtime === undefined ? {} : { mtime }),
        }),
      });
      const send = (chunk: Uint8Array) =>
        this.#send({ type: DownloadMessageType.Data, id, body: chunk });
      const sent = await sendChunks(start, send, { stopped: () => this.#closed });
      if (sent !== size - start.offset) {
        throw new OvtpError("io", "The file changed size while being sent");
      }
      await this.#send({
        type: DownloadMessageType.End,
        id,
        body: encodeJson({ size, sha256: start.hash.digest("hex") }),
      });
    } finally {
      file.close();
    }
  }
}

/** The download service; on when the server serves a folder. */
export const downloadService: Service = {
  name: "download",
  types: [DownloadMessageType.Get, DownloadMessageType.List],
  unsupported: "This server serves no files",
  check: () => ({ permission: "download" }),
  refuse: (message, refusal) => ({
    type: DownloadMessageType.Error,
    id: message.id,
    body: encodeJson({ code: refusal.code, message: refusal.message }),
  }),
  open(session) {
    const { served } = session.options;
    if (!served) return undefined;
    const downloads = new DownloadProvider(served, session.send);
    return {
      handle(message) {
        session.working(() => downloads.handle(message)).catch((error) => {
          session.logger.warn(`download failed: ${(error as Error).message}`, {
            remote: session.remote,
            name: session.peer.name,
          });
        });
      },
      close: () => downloads.close(),
    };
  },
};
