/**
 * The client's side of the transfer service, attached to one connection:
 * uploads (sender.ts), downloads and listings (fetcher.ts) and folder pulls
 * (fetch_folder.ts). OvtpClient's file methods call it; it needs only the
 * connection's MessageLink, as every client-side service does.
 *
 * @module
 */

import type { MessageLink } from "../../client/message_link.ts";
import type { ListEntry } from "./download_messages.ts";
import { type FetchedFolder, fetchFolder, type FolderFetchOptions } from "./fetch_folder.ts";
import {
  type FetchedFile,
  fetchFile,
  type FetchOptions,
  listFiles,
  streamFile,
} from "./fetcher.ts";
import { sendFile, type SendFileOptions, type SentFile } from "./sender.ts";
import type { FileSource } from "./sources.ts";

export type {
  FetchedFile,
  FetchedFolder,
  FetchOptions,
  FileSource,
  FolderFetchOptions,
  ListEntry,
  SendFileOptions,
  SentFile,
};

/** File transfers over one connection. */
export class TransferClient {
  #link: MessageLink;

  /** Transfers over `link`. */
  constructor(link: MessageLink) {
    this.#link = link;
  }

  /** Sends a file and resolves once the server has verified and stored it. */
  sendFile(source: FileSource, options: SendFileOptions = {}): Promise<SentFile> {
    return sendFile(this.#link, source, options);
  }

  /** Downloads a file into `dest` (resuming a partial one). */
  getFile(remotePath: string, dest: string, options: FetchOptions = {}): Promise<FetchedFile> {
    return fetchFile(this.#link, remotePath, dest, options);
  }

  /** Pulls a folder into `dest`. */
  getFolder(
    remotePath: string,
    dest: string,
    options: FolderFetchOptions = {},
  ): Promise<FetchedFolder> {
    return fetchFolder(this.#link, remotePath, dest, options);
  }

  /** Downloads a file into `sink`, from the start. */
  streamFile(
    remotePath: string,
    sink: { write(bytes: Uint8Array): Promise<void> },
    options: Pick<FetchOptions, "onProgress"> = {},
  ): Promise<Omit<FetchedFile, "path">> {
    return streamFile(this.#link, remotePath, sink, options);
  }

  /** Lists a folder of the served folder. */
  listFiles(remotePath: string): Promise<ListEntry[]> {
    return listFiles(this.#link, remotePath);
  }
}
