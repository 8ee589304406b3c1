/**
 * Messages over a secure channel, in both directions at once: a writer that
 * packs queued message fragments into as few records as possible (one
 * encryption and one write for many pipelined requests) and sends a large
 * body (file data) as one bulk record, and a reader loop that reassembles
 * messages and hands them to a callback.
 *
 * A record's plaintext holds one or more message fragments, each
 * `type (u8) | request id (u32 BE) | length (u16 BE) | body`; the high bit
 * of `type` says that the message continues in the next fragment with the
 * same id (docs/protocol.md section 6). Small messages share a record, which
 * is what makes pipelined requests cheap; large ones span records, or
 * travel as one bulk record that a bulk notice announces.
 *
 * @module
 */

import { MAX_BULK_PLAINTEXT, MAX_RECORD_PLAINTEXT, type SecureChannel } from "./channel.ts";
import { OvtpError } from "../errors.ts";
import { BufferPool } from "../io/buffer_pool.ts";
import { concat } from "../bytes.ts";
import { type Message, MessageError } from "./messages.ts";

/** Header length of a fragment. */
export const FRAGMENT_HEADER_LENGTH = 7;
/** The largest fragment body. */
export const MAX_FRAGMENT_BODY = MAX_RECORD_PLAINTEXT - FRAGMENT_HEADER_LENGTH;
const CONTINUES = 0x80;
/**
 * The fragment type of a bulk notice (section 6.1): the message it names
 * travels in the bulk record that follows the record.
 */
export const BULK_NOTICE = 0x7f;
/** A bulk notice's body: the message type (u8) and its body's size (u32). */
const BULK_NOTICE_BODY = 5;
/** The length of a whole bulk notice fragment. */
export const BULK_NOTICE_LENGTH = FRAGMENT_HEADER_LENGTH + BULK_NOTICE_BODY;

/** A message whose body follows the record, in a bulk record. */
export interface BulkNotice {
  /** The message's type. */
  type: number;
  /** Its request id. */
  id: number;
  /** The size of its body, the bulk record's plaintext. */
  bulkSize: number;
}

/**
 * Writes the next fragment of `message`, from body byte `offset` on, into
 * `record` at `at`: its header, then as much of the body as fits before the
 * end of `record` (at most MAX_FRAGMENT_BODY). The fragment ends the message
 * when it takes the rest of the body. Returns the body bytes it took.
 * Throws a RangeError when `record` has no room for the header.
 */
export function writeFragment(
  record: Uint8Array,
  at: number,
  message: Message,
  offset: number,
): number {
  const { type, id, body } = message;
  checkType(type);
  const room = record.length - at - FRAGMENT_HEADER_LENGTH;
  if (room < 0) throw new RangeError("No room for a fragment header");
  const length = Math.min(MAX_FRAGMENT_BODY, body.length - offset, room);
  const view = new DataView(record.buffer, record.byteOffset + at, FRAGMENT_HEADER_LENGTH);
  view.setUint8(0, offset + length === body.length ? type : type | CONTINUES);
  view.setUint32(1, id);
  view.setUint16(5, length);
  record.set(body.subarray(offset, offset + length), at + FRAGMENT_HEADER_LENGTH);
  return length;
}

/**
 * Writes a bulk notice for `message` into `record` at `at`; the message's
 * body must then be sent as the next bulk record. Returns the bytes written,
 * BULK_NOTICE_LENGTH.
 */
export function writeBulkNotice(record: Uint8Array, at: number, message: Message): number {
  checkType(message.type);
  if (message.body.length > MAX_BULK_PLAINTEXT) {
    throw new RangeError(`A bulk record holds at most ${MAX_BULK_PLAINTEXT} bytes`);
  }
  const view = new DataView(record.buffer, record.byteOffset + at, BULK_NOTICE_LENGTH);
  view.setUint8(0, BULK_NOTICE);
  view.setUint32(1, message.id);
  view.setUint16(5, BULK_NOTICE_BODY);
  view.setUint8(7, message.type);
  view.setUint32(8, message.body.length);
  return BULK_NOTICE_LENGTH;
}

/** Throws a RangeError unless `type` is a message type (1..0x7e). */
export function checkType(type: number): void {
  if (!(Number.isInteger(type) && type > 0 && type < BULK_NOTICE)) {
    throw new RangeError(`Invalid message type ${type}`);
  }
}

/** Splits a message into encoded fragments that each fit a record. */
export function encodeFragments(message: Message): Uint8Array[] {
  const fragments: Uint8Array[] = [];
  let offset = 0;
  do {
    const length = Math.min(MAX_FRAGMENT_BODY, message.body.length - offset);
    const fragment = new Uint8Array(FRAGMENT_HEADER_LENGTH + length);
    offset += writeFragment(fragment, 0, message, offset);
    fragments.push(fragment);
  } while (offset < message.body.length);
  return fragments;
}

/**
 * The most fragments one message may span: ovtp writes a 16 MiB message in
 * 257, and a sender that cuts fragments at record ends in about twice as
 * many; 4,096 leaves room for fragments of 4 KiB on average.
 */
export const MAX_MESSAGE_FRAGMENTS = 4096;
/** The most continued fragments held for all messages in progress together. */
export const MAX_HELD_FRAGMENTS = 4096;

/** What a {@linkcode MessageAssembler} holds for messages in progress. */
export interface AssemblerHolding {
  /** Messages in progress. */
  messages: number;
  /** Continued fragments held for them. */
  fragments: number;
  /** Body bytes held for them (each fragment's own buffer or its share of a record). */
  bytes: number;
}

/**
 * Reassembles messages from records, bounding what it holds whatever the
 * peer sends: one message's size; the messages in progress at once; the
 * bytes held for all of them together (no more than one message's limit:
 * otherwise a peer could park 64 messages of almost 16 MiB each, 1 GiB per
 * connection); and the fragments, per message and together. A continued
 * fragment must carry at least one byte: empty ones would cost memory and
 * work and count for nothing (records full of them grew a server by
 * gigabytes). A small fragment is copied out of its record, so that it does
 * not keep the whole record alive while its message is in progress.
 */
export class MessageAssembler {
  #partial = new Map<number, { type: number; parts: Uint8Array[]; size: number }>();
  #heldBytes = 0;
  #heldFragments = 0;
  #maxMessageSize: number;
  #maxPartial: number;

  /** Creates an assembler with the given bounds. */
  constructor(maxMessageSize: number, maxPartial = 64) {
    this.#maxMessageSize = maxMessageSize;
    this.#maxPartial = maxPartial;
  }

  /** What is held now for messages in progress. */
  get holding(): AssemblerHolding {
    return {
      messages: this.#partial.size,
      fragments: this.#heldFragments,
      bytes: this.#heldBytes,
    };
  }

  /**
   * Parses one record; returns, in order, the messages it completes and the
   * bulk notices it holds (each one's body is the next bulk record). The
   * messages' bodies may share memory with `record`, which must not be
   * reused.
   */
  push(record: Uint8Array): (Message | BulkNotice)[] {
    const done: (Message | BulkNotice)[] = [];
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    let offset = 0;
    if (record.length === 0) throw new MessageError("Empty record");
    while (offset < record.length) {
      if (record.length - offset < FRAGMENT_HEADER_LENGTH) {
        throw new MessageError("Truncated fragment header");
      }
      const rawType = view.getUint8(offset);
      const id = view.getUint32(offset + 1);
      const length = view.getUint16(offset + 5);
      const start = offset + FRAGMENT_HEADER_LENGTH;
      if (start + length > record.length) throw new MessageError("Truncated fragment body");
      const body = record.subarray(start, start + length);
      offset = start + length;
      const type = rawType & ~CONTINUES;
      if (type === 0) throw new MessageError("Invalid message type 0");
      const partial = this.#partial.get(id);
      if (type === BULK_NOTICE) {
        if (partial) throw new MessageError(`A bulk notice interrupts message ${id}`);
        done.push(this.#bulkNotice(rawType, id, body));
        continue;
      }
      if (partial && partial.type !== type) {
        throw new MessageError(`Fragment type ${type} interrupts message ${id}`);
      }
      const size = (partial?.size ?? 0) + length;
      if (size > this.#maxMessageSize) {
        throw new MessageError(
          `Message of more than ${this.#maxMessageSize} bytes exceeds the limit`,
        );
      }
      if (rawType & CONTINUES) {
        this.#hold(id, type, partial, keepable(body, record), size);
        continue;
      }
      if (partial) {
        this.#heldBytes -= partial.size;
        this.#heldFragments -= partial.parts.length;
        this.#partial.delete(id);
      }
      // Records are fresh buffers from decryption, so bodies may alias them.
      done.push({
        type,
        id,
        body: partial ? concat(...partial.parts, body) : keepable(body, record),
      });
    }
    return done;
  }

  // Keeps a continued fragment's body for its message, within every bound.
  #hold(
    id: number,
    type: number,
    partial: { type: number; parts: Uint8Array[]; size: number } | undefined,
    body: Uint8Array,
    size: number,
  ): void {
    if (body.length === 0) throw new MessageError(`Empty continued fragment of message ${id}`);
    if (this.#heldBytes + body.length > this.#maxMessageSize) {
      throw new MessageError(
        `Messages in progress hold more than ${this.#maxMessageSize} bytes together`,
      );
    }
    if ((partial?.parts.length ?? 0) + 1 >= MAX_MESSAGE_FRAGMENTS) {
      throw new MessageError(`Message ${id} spans more than ${MAX_MESSAGE_FRAGMENTS} fragments`);
    }
    if (this.#heldFragments >= MAX_HELD_FRAGMENTS) {
      throw new MessageError(
        `Messages in progress hold more than ${MAX_HELD_FRAGMENTS} fragments together`,
      );
    }
    if (!partial && this.#partial.size >= this.#maxPartial) {
      throw new MessageError("Too many messages in progress");
    }
    this.#heldBytes += body.length;
    this.#heldFragments++;
    if (partial) {
      partial.parts.push(body);
      partial.size = size;
    } else {
      this.#partial.set(id, { type, parts: [body], size });
    }
  }

  #bulkNotice(rawType: number, id: number, body: Uint8Array): BulkNotice {
    if (rawType & CONTINUES || body.length !== BULK_NOTICE_BODY) {
      throw new MessageError("Malformed bulk notice");
    }
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const type = view.getUint8(0);
    const bulkSize = view.getUint32(1);
    if (type === 0 || type >= BULK_NOTICE) throw new MessageError(`Invalid message type ${type}`);
    const limit = Math.min(this.#maxMessageSize, MAX_BULK_PLAINTEXT);
    if (bulkSize > limit) {
      throw new MessageError(`Bulk record of ${bulkSize} bytes exceeds the limit of ${limit}`);
    }
    return { type, id, bulkSize };
  }
}

/**
 * `body` itself when it fills at least half of `record`, else a copy: what
 * is kept of a record (by a message in progress, or by a handler still
 * running) then costs at most twice its own size.
 */
function keepable(body: Uint8Array, record: Uint8Array): Uint8Array {
  return 2 * body.length >= record.length ? body : body.slice();
}

/** Whether `item`, from {@linkcode MessageAssembler.push}, is a bulk notice. */
export function isBulkNotice(item: Message | BulkNotice): item is BulkNotice {
  return "bulkSize" in item;
}

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

  /** When the record being written started (ms since the epoch); undefined between writes. */
  get writingSince(): number | undefined {
    return this.#writingSince;
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
      // A write cut short by close(reason) fails with that reason (a
      // keep-alive's "stopped answering"), not with the channel's "closed".
      const failure = this.#closed ?? error as Error;
      this.close(failure);
      for (const pending of finished) pending.reject(failure);
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
