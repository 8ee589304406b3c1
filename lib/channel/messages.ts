/**
 * Application messages inside the channel. A record's plaintext holds one or
 * more message fragments, each `type (u8) | request id (u32 BE) |
 * length (u16 BE) | body`; the high bit of `type` says that the message
 * continues in the next fragment with the same id. Small messages share a
 * record, which is what makes pipelined requests cheap; large ones span
 * records, or travel as one bulk record that a bulk notice announces.
 *
 * @module
 */

import { concat, fromUtf8, utf8 } from "../bytes.ts";
import { MAX_BULK_PLAINTEXT, MAX_RECORD_PLAINTEXT } from "./channel.ts";

/** Message types of ovtp/1. */
export const MessageType = {
  /** Server to client, id 0: the connection is accepted. JSON body. */
  Welcome: 0x01,
  /** Either way, id 0: a fatal error; the sender closes. JSON body. */
  Error: 0x02,
  /** Client to server: a request; the body is the message. */
  Request: 0x10,
  /** Server to client: the answer to the request with the same id. */
  Response: 0x11,
} as const;

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

/** A complete application message. */
export interface Message {
  /** One of {@linkcode MessageType}. */
  type: number;
  /** The request id it belongs to; 0 for connection-level messages. */
  id: number;
  /** The body. */
  body: Uint8Array;
}

/** A message whose body follows the record, in a bulk record. */
export interface BulkNotice {
  /** The message's type. */
  type: number;
  /** Its request id. */
  id: number;
  /** The size of its body, the bulk record's plaintext. */
  bulkSize: number;
}

/** Thrown for a malformed record or message. */
export class MessageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MessageError";
  }
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

/** A request's status and response, as carried in a Response body. */
export interface ResponseBody {
  /** `ok`, `error`, or another short status. */
  status: string;
  /** The response bytes. */
  response: Uint8Array;
}

const STATUS_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;

/** Encodes a Response body: status length (u8), status, response. */
export function encodeResponse({ status, response }: ResponseBody): Uint8Array {
  if (!STATUS_PATTERN.test(status)) throw new RangeError(`Invalid status "${status}"`);
  const statusBytes = utf8(status);
  const out = new Uint8Array(1 + statusBytes.length + response.length);
  out[0] = statusBytes.length;
  out.set(statusBytes, 1);
  out.set(response, 1 + statusBytes.length);
  return out;
}

/** Decodes a Response body. */
export function decodeResponse(body: Uint8Array): ResponseBody {
  const length = body[0];
  if (body.length < 1 || 1 + length > body.length) throw new MessageError("Truncated response");
  // The status is ASCII; anything else, valid UTF-8 or not, is refused.
  const status = String.fromCharCode(...body.subarray(1, 1 + length));
  if (!STATUS_PATTERN.test(status)) throw new MessageError("Invalid response status");
  return { status, response: body.slice(1 + length) };
}

/** Encodes a JSON control message body. */
export function encodeJson(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

/** Decodes a JSON control message body into an object. */
export function decodeJson(body: Uint8Array): Record<string, unknown> {
  try {
    const value = JSON.parse(fromUtf8(body));
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError("not an object");
    }
    return value;
  } catch {
    throw new MessageError("Malformed control message");
  }
}
