/**
 * Uploads into the server's inbox (docs/protocol.md section 14): the upload
 * service, and its side of the transfers on one connection, a small state
 * machine per transfer id (offered, receiving, failed) writing into an
 * {@linkcode Inbox}. An Offer needs the `upload` permission; the transfer's
 * later messages go straight to the receiver, one at a time, so that a slow
 * disk slows the sender. Offer and End are the exceptions: the disk work of
 * their answers (hashing a held prefix; checks, fsync and storing) runs
 * beside the messages that follow (see {@linkcode FileReceiver.handle}).
 * Refusals go back to the sender as a Result; a broken message closes the
 * connection.
 *
 * @module
 */

import { decodeJson, encodeJson, type Message, MessageError } from "../../channel/messages.ts";
import { releaseOpened } from "../../channel/_bulk_buffers.ts";
import type { Peer } from "../../identity/peer.ts";
import {
  checkEnd,
  checkOffer,
  checkStart,
  endMismatch,
  type FileEnd,
  FileMessageType,
  type FileOffer,
  type FileResult,
  type PartialFile,
} from "./engine.ts";
import type { PartialClaim } from "./_inbox_partials.ts";
import type { Inbox } from "./inbox.ts";
import { TransferRefusal } from "./transfer_refusal.ts";
import type { Service, SessionApi } from "../service.ts";
import type { ReceivedFile } from "../../server/types.ts";

interface Transfer {
  offer: FileOffer;
  /** Its file in the inbox's internal folder, held by this transfer alone. */
  claim?: PartialClaim;
  held: number;
  partial?: PartialFile;
  failed: boolean;
  /**
   * Set from an Offer or End until the server answers it (Accept or
   * Result): settles when the work of that answer ends.
   */
  answering?: Promise<void>;
}

/** Bytes between two free-space checks while receiving. */
const SPACE_CHECK_INTERVAL = 64 * 1024 * 1024;
/** Transfers one connection may have open at once. */
const MAX_TRANSFERS = 16;
/** Folders sent as a whole that one connection may store into. */
const MAX_FOLDERS = 4096;

/** Receives the files sent on one connection. */
export class FileReceiver {
  #inbox: Inbox;
  #peer: Peer;
  #send: (message: Message) => Promise<void>;
  #onFile: (file: ReceivedFile) => void | Promise<void>;
  #working: <T>(work: () => Promise<T>) => Promise<T>;
  #transfers = new Map<number, Transfer>();
  /** The folder created for each folder token of this connection. */
  #folders = new Map<string, Promise<string>>();
  /**
   * The Offers being answered, one after another: each may hash a held
   * prefix through a buffer of its own, so that a connection's 16
   * transfers answered at once would hold 16.
   */
  #offers: Promise<void> = Promise.resolve();

  /**
   * Creates a receiver writing to `inbox` and answering through `send`;
   * `working` wraps the work of answering an Offer or End (the server's
   * count of work in progress, which keeps the connection from counting as
   * idle).
   */
  constructor(
    inbox: Inbox,
    peer: Peer,
    send: (message: Message) => Promise<void>,
    onFile: (file: ReceivedFile) => void | Promise<void>,
    working: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
  ) {
    this.#inbox = inbox;
    this.#peer = peer;
    this.#send = send;
    this.#onFile = onFile;
    this.#working = working;
  }

  /**
   * Handles one file message; throws MessageError for a protocol violation.
   * Settles once the message is handled, except for an Offer or an End:
   * those settle once parsed, and their answer (Accept, or Result) is worked
   * out and sent meanwhile. Hashing a large held prefix, or the fsync of a
   * large file, can take longer than a client waits for a silent server,
   * and the connection must go on reading (and answering its Pings)
   * meanwhile. Until the answer, any message for that transfer is a
   * protocol violation.
   */
  async handle(message: Message): Promise<void> {
    const transfer = this.#transfers.get(message.id);
    if (message.type === FileMessageType.Offer) {
      if (transfer) throw new MessageError(`Transfer ${message.id} already exists`);
      if (this.#transfers.size >= MAX_TRANSFERS) throw new MessageError("Too many transfers");
      const offered: Transfer = {
        offer: checkOffer(decodeJson(message.body)),
        held: 0,
        failed: false,
      };
      this.#transfers.set(message.id, offered);
      const answered = this.#offers.then(() =>
        this.#refusing(message.id, () => this.#offer(message.id, offered), true)
      );
      this.#offers = answered.catch(() => {});
      return this.#answer(offered, () => answered);
    }
    if (!transfer) throw new MessageError(`No transfer ${message.id}`);
    if (transfer.answering) {
      throw new MessageError(`Transfer ${message.id} has not been answered yet`);
    }
    if (transfer.failed) {
      // After a refusal the sender may still have data in flight: drop it
      // until it learns, and forget the transfer at its End or Abort.
      if (message.type !== FileMessageType.Data) this.#transfers.delete(message.id);
      return;
    }
    switch (message.type) {
      case FileMessageType.Start:
        return await this.#refusing(message.id, () => this.#start(transfer, message));
      case FileMessageType.Data:
        return await this.#refusing(message.id, () => this.#data(transfer, message.body));
      case FileMessageType.End: {
        const end = checkEnd(decodeJson(message.body));
        if (!transfer.partial) throw new MessageError("End before Start");
        return this.#answer(transfer, () => this.#finish(message.id, transfer, end));
      }
      case FileMessageType.Abort:
        this.#transfers.delete(message.id);
        return await this.#close(transfer);
      default:
        throw new MessageError(`Unexpected file message type ${message.type}`);
    }
  }

  /**
   * Called when the connection ends: transfers in progress keep their data
   * when they can resume, and lose it when they cannot; those being
   * answered are answered first (a file verified at End is stored, its
   * Result lost).
   */
  async close(): Promise<void> {
    for (const transfer of this.#transfers.values()) {
      await transfer.answering;
      await this.#close(transfer);
    }
    this.#transfers.clear();
  }

  // Works out the answer to an Offer or End beside the messages that follow
  // (see handle); `work` sends it, and never rejects but for a lost
  // connection (the parsing that could break the protocol is done).
  #answer(transfer: Transfer, work: () => Promise<void>): void {
    const { promise, resolve } = Promise.withResolvers<void>();
    transfer.answering = promise;
    this.#working(work).catch(() => {}).finally(resolve);
  }

  async #offer(id: number, transfer: Transfer): Promise<void> {
    const { offer } = transfer;
    const resumable = offer.resumable && offer.size !== null;
    if (offer.size !== null) await this.#inbox.checkRoom(offer.size, offer.size);
    else await this.#inbox.checkRoom(0, 0);
    // The claim is this transfer's alone until it ends: a second upload of
    // the same name and size meanwhile gets a file of its own.
    const claim = await this.#inbox.claim(
      this.#peer.fingerprint,
      offer.name,
      offer.size,
      resumable,
    );
    transfer.claim = claim;
    transfer.held = resumable ? Math.min(claim.heldSize, offer.size!) : 0;
    const prefix = transfer.held > 0 ? await claim.prefixHash(transfer.held) : null;
    // Answered: the sender's Start may come once it has the Accept.
    transfer.answering = undefined;
    await this.#send({
      type: FileMessageType.Accept,
      id,
      body: encodeJson({ offset: transfer.held, prefix_sha256: prefix }),
    });
  }

  /** The folder made for `token` on its first stored file (from that file's `root`). */
  #folder(token: string, root: string): Promise<string> {
    let chosen = this.#folders.get(token);
    if (!chosen) {
      if (this.#folders.size >= MAX_FOLDERS) {
        return Promise.reject(
          new TransferRefusal("io", "Too many folders sent on one connection"),
        );
      }
      chosen = this.#inbox.newFolder(this.#peer.name, root);
      this.#folders.set(token, chosen);
      // A failure is not remembered: the next file of the folder tries again.
      chosen.catch(() => this.#folders.delete(token));
    }
    return chosen;
  }

  async #start(transfer: Transfer, message: Message): Promise<void> {
    if (transfer.partial) throw new MessageError("Transfer already started");
    const offset = checkStart(decodeJson(message.body));
    if (offset !== 0 && offset !== transfer.held) {
      throw new MessageError(`Start offset ${offset} does not match the held ${transfer.held}`);
    }
    transfer.partial = await transfer.claim!.open(offset);
  }

  async #data(transfer: Transfer, body: Uint8Array): Promise<void> {
    const partial = transfer.partial;
    if (!partial) throw new MessageError("Data before Start");
    const size = partial.size + body.length;
    if (transfer.offer.size !== null && size > transfer.offer.size) {
      throw new TransferRefusal("bad-size", "More data than the offered size");
    }
    if (
      size > this.#inbox.maxFileSize ||
      Math.floor(size / SPACE_CHECK_INTERVAL) > Math.floor(partial.size / SPACE_CHECK_INTERVAL)
    ) {
      await this.#inbox.checkRoom(size, SPACE_CHECK_INTERVAL);
    }
    await partial.write(body);
    // Written and hashed: the record's buffer can take the next one.
    releaseOpened(body);
  }

  // After an End: checks the file, stores it and answers with the Result
  // (or a refusal). The transfer is forgotten before the Result goes out, so
  // that its id is free for the sender once it has the answer. Never
  // rejects: a Result that cannot be sent has lost its connection, and the
  // stored file is reported to the server all the same.
  async #finish(id: number, transfer: Transfer, end: FileEnd): Promise<void> {
    let result: FileResult;
    let file: ReceivedFile | undefined;
    try {
      file = await this.#store(transfer, end);
      const { path, size, sha256, renamed } = file;
      result = { status: "ok", path, size, sha256, renamed };
    } catch (error) {
      const refusal = refusalFor(error);
      await this.#close(transfer, true);
      result = { status: "error", code: refusal.code, message: refusal.message };
    } finally {
      this.#transfers.delete(id);
    }
    await this.#reply(id, result).catch(() => {});
    try {
      if (file) await this.#onFile(file);
    } catch {
      // The upload service's hook logs its own failures (onFile below);
      // nothing may reject here, with no one awaiting this work.
    }
  }

  // Checks the size and hash the sender ended with, then syncs the file and
  // links it into place.
  async #store(transfer: Transfer, end: FileEnd): Promise<ReceivedFile> {
    const partial = transfer.partial!;
    const { sha256, mismatch } = endMismatch(partial, end);
    if (mismatch === "size" || (transfer.offer.size ?? end.size) !== end.size) {
      throw new TransferRefusal(
        "bad-size",
        `Received ${partial.size} bytes, but the sender says ${end.size}`,
      );
    }
    if (mismatch === "hash") {
      throw new TransferRefusal(
        "bad-hash",
        "The received data does not match the sender's SHA-256",
      );
    }
    await partial.sync();
    // The sender's modification time, set through the handle before the
    // file becomes visible.
    if (transfer.offer.mtime !== undefined) await partial.setModified(transfer.offer.mtime);
    // Linked into place (and its temporary name removed) while this
    // transfer still holds the file's lock; only then is the handle closed.
    // Nothing writes to it afterwards.
    const claim = transfer.claim!;
    transfer.partial = undefined;
    transfer.claim = undefined;
    let stored;
    try {
      stored = await this.#inbox.store(
        partial.path,
        this.#peer.name,
        transfer.offer.name,
        transfer.offer.mode,
        transfer.offer.folder === undefined
          ? undefined
          : (root) => this.#folder(transfer.offer.folder!, root),
      );
    } finally {
      await claim.release(false);
    }
    return {
      peer: this.#peer,
      name: transfer.offer.name,
      path: stored.path,
      absolutePath: stored.absolutePath,
      size: partial.size,
      sha256,
      renamed: stored.renamed,
    };
  }

  // Runs a step; a refusal is answered with an error Result, the partial
  // data is removed, and the transfer ignores what the sender still sends.
  async #refusing(id: number, step: () => Promise<void>, offering = false): Promise<void> {
    try {
      await step();
    } catch (error) {
      const transfer = this.#transfers.get(id);
      if (error instanceof MessageError) throw error;
      const refusal = refusalFor(error);
      if (transfer) {
        transfer.failed = true;
        // A refused offer keeps what an earlier attempt left (a smaller
        // file may fit later); a refusal mid-transfer drops the data.
        await this.#close(transfer, !offering);
        // A refused offer ends the transfer: the sender sends nothing more.
        if (offering) this.#transfers.delete(id);
      }
      await this.#reply(id, { status: "error", code: refusal.code, message: refusal.message });
    }
  }

  async #close(transfer: Transfer, discard = false): Promise<void> {
    const claim = transfer.claim;
    if (!claim) return;
    transfer.claim = undefined;
    transfer.partial = undefined;
    const resumable = transfer.offer.resumable && transfer.offer.size !== null;
    const keep = !discard && resumable;
    await claim.release(keep).catch(() => {});
    // A file left for a resume counts against its sender's cap at once.
    if (keep) await this.#inbox.pruneStale().catch(() => {});
  }

  async #reply(id: number, result: FileResult): Promise<void> {
    await this.#send({ type: FileMessageType.Result, id, body: encodeJson(result) });
  }
}

// The refusal that an error of a step (other than a protocol violation)
// stands for: its own, no-space for a full disk, io for any other.
function refusalFor(error: unknown): TransferRefusal {
  if (error instanceof TransferRefusal) return error;
  if (isNoSpace(error)) return new TransferRefusal("no-space", "The server's disk is full");
  return new TransferRefusal(
    "io",
    `The server could not store the file: ${(error as Error).message}`,
  );
}

// Deno reports a full disk as a plain Error whose message holds the OS's
// text ("No space left on device", os error 28).
function isNoSpace(error: unknown): boolean {
  return error instanceof Error &&
    (/No space left|os error 28|ENOSPC/i.test(error.message) ||
      (error as { code?: string }).code === "ENOSPC");
}

/** The upload service; on when the server has an inbox. */
export const uploadService: Service = {
  name: "upload",
  types: Object.values(FileMessageType),
  unsupported: "This server does not accept files",
  check: (message) => message.type === FileMessageType.Offer ? { permission: "upload" } : undefined,
  refuse: (message, refusal) => ({
    type: FileMessageType.Result,
    id: message.id,
    body: encodeJson({ status: "error", code: refusal.code, message: refusal.message }),
  }),
  open(session) {
    const { inbox } = session.options;
    if (!inbox) return undefined;
    const files = new FileReceiver(
      inbox,
      session.peer,
      session.send,
      (file) => onFile(session, file),
      session.working,
    );
    return {
      handle: (message) => session.working(() => files.handle(message)),
      close: () => files.close(),
    };
  },
};

// The sender already has its answer when the hook runs: a hook that throws
// is the server program's problem, logged here, not the client's.
async function onFile(session: SessionApi, file: ReceivedFile): Promise<void> {
  try {
    await session.options.onFile?.(file);
  } catch (error) {
    session.logger.warn("onFile hook failed", {
      path: file.path,
      error: (error as Error).message,
    });
  }
}
