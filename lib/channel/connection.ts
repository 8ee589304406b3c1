/**
 * Messages over a secure channel, in both directions at once: a writer that
 * packs queued message fragments into as few records as possible (one
 * encryption and one write for many pipelined requests) and sends a large
 * body (file data) as one bulk record, and a reader loop that reassembles
 * messages and hands them to a callback.
 *
 * @module
 */

import { MAX_BULK_PLAINTEXT, MAX_RECORD_PLAINTEXT, type SecureChannel } from "./channel.ts";
import { OvtpError } from "../errors.ts";
import { BufferPool } from "../io/buffer_pool.ts";
import {
  BULK_NOTICE_LENGTH,
  checkType,
  FRAGMENT_HEADER_LENGTH,
  isBulkNotice,
  MAX_FRAGMENT_BODY,
  type Message,
  MessageAssembler,
  MessageError,
  writeBulkNotice,
  writeFragment,
} from "./messages.ts";

/**
 * Record plaintext buffers, shared: a connection takes one while it writes
 * and gives it back when its queue is empty, so an idle one holds none.
 */
const RECORD_POOL = new BufferPool(MAX_RECORD_PLAINTEXT, 1024 * 1024);

/** Default bound on one application message. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** Options of {@linkcode Connection}. */
export interface ConnectionOptions {
  /**
   * Called for each complete message received, in order. When it returns a
   * promise, reading pauses until it settles: that is how a slow consumer
   * (a disk) pushes back on the sender through TCP.
   */
  onMessage: (message: Message) => void | Promise<void>;
  /** The largest message accepted. @default 16 MiB */
  maxMessageSize?: number;
  /**
   * Close after this long without receiving anything, unless {@linkcode
   * working} says work for the peer is in progress, and when a write has
   * waited this long for the peer to read it, whatever the peer sends; 0
   * disables. @default 0
   */
  idleTimeoutMs?: number;
  /**
   * Whether this side is doing work for the peer (answering a request,
   * streaming a download). The idle timeout waits for it: the peer waiting
   * for a slow answer, or reading a long download, is not idle.
   * @default () => false
   */
  working?: () => boolean;
}

interface Pending {
  message: Message;
  /** Body bytes already written in fragments. */
  offset: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A message connection over an established channel. */
export class Connection {
  #channel: SecureChannel;
  #options: ConnectionOptions;
  #queue: Pending[] = [];
  #flushing = false;
  #closed: Error | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastSendAt = Date.now();
  // When the record being written started; undefined between writes.
  #writingSince: number | undefined;
  #lastReceiveAt = Date.now();

  /** Wraps `channel`; call {@linkcode run} to start receiving. */
  constructor(channel: SecureChannel, options: ConnectionOptions) {
    this.#channel = channel;
    this.#options = options;
  }

  /** The channel underneath. */
  get channel(): SecureChannel {
    return this.#channel;
  }

  /** When a message was last sent (ms since the epoch; the connection's start before any). */
  get lastSendAt(): number {
    return this.#lastSendAt;
  }

  /**
   * Queues a message; resolves once it has been written. Messages are
   * written in the order they were sent.
   */
  send(message: Message): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    try {
      checkType(message.type);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#lastSendAt = Date.now();
    return new Promise((resolve, reject) => {
      this.#queue.push({ message, offset: 0, resolve, reject });
      if (!this.#flushing) this.#flush();
    });
  }

  /**
   * Receives until the peer closes. Resolves on a clean close, rejects with
   * an OvtpError when the peer breaks the protocol or the network fails.
   */
  async run(): Promise<void> {
    const assembler = new MessageAssembler(
      this.#options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    );
    try {
      while (true) {
        this.#lastReceiveAt = Date.now();
        this.#armIdleTimer();
        const record = await this.#channel.receive();
        if (record === null) break;
        for (const item of assembler.push(record)) {
          // Bulk records follow their record in the order of the notices.
          const message = isBulkNotice(item)
            ? { type: item.type, id: item.id, body: await this.#channel.receiveBulk(item.bulkSize) }
            : item;
          const pending = this.#options.onMessage(message);
          if (pending) await pending;
        }
      }
      this.close();
    } catch (error) {
      const failure = error instanceof MessageError
        ? new OvtpError("protocol", `Protocol error: ${error.message}`, { cause: error })
        : this.#closed ?? error as Error;
      this.close(failure);
      throw failure;
    } finally {
      clearTimeout(this.#idleTimer);
    }
  }

  /** Closes the connection; queued messages fail with `reason`. */
  close(reason?: Error): void {
    if (!this.#closed) {
      this.#closed = reason ?? new OvtpError("network", "The connection is closed");
    }
    clearTimeout(this.#idleTimer);
    for (const pending of this.#queue.splice(0)) pending.reject(this.#closed);
    this.#channel.close();
  }

  // The idle timer fires when nothing has been received for the idle
  // timeout, or when the record being written has waited that long (a
  // peer that sends but does not read, pings included), whichever is first.
  // It is always armed (no timer per write): a write that starts later
  // than the last receive is due later than the timer already set.
  #armIdleTimer(recheckAt = 0): void {
    const ms = this.#options.idleTimeoutMs ?? 0;
    if (ms <= 0) return;
    clearTimeout(this.#idleTimer);
    const writeDue = this.#writingSince === undefined ? Infinity : this.#writingSince + ms;
    const due = Math.min(Math.max(this.#lastReceiveAt + ms, recheckAt), writeDue);
    this.#idleTimer = setTimeout(() => this.#idleTimeout(ms), Math.max(0, due - Date.now()));
  }

  // Closes when the peer left a write untaken for `ms`, or sent nothing for
  // `ms` while no work for it goes on (checked again a quarter of `ms` later
  // while there is).
  #idleTimeout(ms: number): void {
    const now = Date.now();
    if (this.#writingSince !== undefined && now - this.#writingSince >= ms) {
      return this.close(new OvtpError("network", `The peer read nothing for ${ms} ms; closing`));
    }
    // Due for a write that has ended since: nothing to close for yet.
    if (now - this.#lastReceiveAt < ms) return this.#armIdleTimer();
    if (this.#options.working?.()) return this.#armIdleTimer(now + ms / 4);
    this.close(new OvtpError("network", `Idle for ${ms} ms; closing`));
  }

  // Writes queued fragments, packing as many as fit into each record, and
  // the bulk records that record announces. While one record is being
  // written, new messages queue up and go out together in the next one.
  async #flush(): Promise<void> {
    this.#flushing = true;
    let finished: Pending[] = [];
    // One record's plaintext, reused for each record of this flush:
    // fragments are written straight into it.
    const record = RECORD_POOL.take();
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        finished = [];
        const bulk: Uint8Array[] = [];
        const size = this.#pack(record, finished, bulk);
        this.#writingSince = Date.now();
        await this.#channel.send(record.subarray(0, size), bulk);
        this.#writingSince = undefined;
        for (const pending of finished) pending.resolve();
        finished = [];
      }
    } catch (error) {
      this.close(error as Error);
      for (const pending of finished) pending.reject(error as Error);
    } finally {
      // send() has encrypted every record it was given by now.
      RECORD_POOL.give(record);
      this.#flushing = false;
    }
  }

  // Fills the record with whole fragments of the queued messages, in order
  // (a message is split only at MAX_FRAGMENT_BODY, so that the receiver
  // rarely has to join pieces), or with a bulk notice for a message that
  // would need several fragments but fits one bulk record, whose body goes
  // to `bulk`. Moves the messages it completes to `finished`; returns the
  // plaintext length.
  #pack(record: Uint8Array, finished: Pending[], bulk: Uint8Array[]): number {
    let size = 0;
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      const { body } = head.message;
      if (head.offset === 0 && isBulk(body)) {
        if (size + BULK_NOTICE_LENGTH > record.length) break;
        size += writeBulkNotice(record, size, head.message);
        bulk.push(body);
        head.offset = body.length;
      } else {
        const length = Math.min(MAX_FRAGMENT_BODY, body.length - head.offset);
        if (size + FRAGMENT_HEADER_LENGTH + length > record.length) break;
        head.offset += writeFragment(record, size, head.message, head.offset);
        size += FRAGMENT_HEADER_LENGTH + length;
      }
      if (head.offset === body.length) finished.push(this.#queue.shift()!);
    }
    return size;
  }
}

function isBulk(body: Uint8Array): boolean {
  return body.length > MAX_FRAGMENT_BODY && body.length <= MAX_BULK_PLAINTEXT;
}
