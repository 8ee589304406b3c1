/**
 * Application messages: the table of every message type of ovtp/1, the
 * message itself, and the bodies several services share (a Response's
 * status and bytes, JSON control messages). How messages are cut into
 * record fragments and put back together is lib/channel/connection.ts.
 *
 * @module
 */

import { fromUtf8, utf8 } from "../bytes.ts";

/**
 * Every message type of ovtp/1, in one table (docs/protocol.md sections 7,
 * 14, 16, 18 and 20 describe them; tests/protocol_doc_test.ts checks that
 * the two agree). A service takes the types it handles from here, so two
 * services cannot pick one number without this table showing it.
 */
export const MessageType = {
  /** Server to client, id 0: the connection is accepted. JSON body. */
  Welcome: 0x01,
  /** Either way, id 0: a fatal error; the sender closes. JSON body. */
  Error: 0x02,
  /** Client to server: a request; the body is the message. */
  Request: 0x10,
  /** Server to client: the answer to the request (or call, or ping) with the same id. */
  Response: 0x11,
  /** Client to server: a named function call (services/function_call.ts). */
  Call: 0x12,
  /** Client to server: the server's clock, please (services/ping.ts). */
  Ping: 0x13,

  // Uploads into the inbox (services/transfer/engine.ts).
  /** Client: a file or folder entry on offer. */
  UploadOffer: 0x20,
  /** Server: the offset to start from and the prefix it holds. */
  UploadAccept: 0x21,
  /** Client: the offset it starts from. */
  UploadStart: 0x22,
  /** Client: the next bytes. */
  UploadData: 0x23,
  /** Client: the size and SHA-256 of the whole file. */
  UploadEnd: 0x24,
  /** Server: where the file landed, or why it did not. */
  UploadResult: 0x25,
  /** Client: the transfer is given up. */
  UploadAbort: 0x26,

  // Chat (services/chat/chat_messages.ts).
  /** Client: join a room. */
  ChatJoin: 0x30,
  /** Server: joined; the members. */
  ChatJoined: 0x31,
  /** Server: someone joined or left. */
  ChatPresence: 0x32,
  /** Client: an envelope for the room. */
  ChatPost: 0x33,
  /** Server: an envelope addressed to this member. */
  ChatDeliver: 0x34,
  /** Server: a Join or Post was refused. */
  ChatRefused: 0x35,
  /** Client: leave the room. */
  ChatLeave: 0x36,
  /** Either way: a membership change of an invite-only room. */
  ChatChange: 0x37,

  // Downloads from the served folder (services/transfer/download_messages.ts).
  /** Client: a file from an offset. */
  DownloadGet: 0x40,
  /** Server: the file's size and mode, and where the data starts. */
  DownloadInfo: 0x41,
  /** Server: the next bytes. */
  DownloadData: 0x42,
  /** Server: the size and SHA-256 of the whole file. */
  DownloadEnd: 0x43,
  /** Server: why the Get or List failed. */
  DownloadError: 0x44,
  /** Client: a folder's listing. */
  DownloadList: 0x45,
  /** Server: the listing. */
  DownloadListResult: 0x46,

  // Pairing by a one-time code, on a pairing connection (pair/wire.ts).
  /** Client: nameplate and SPAKE2 message. */
  PairStart: 0x50,
  /** Server: its SPAKE2 message and confirmation. */
  PairReply: 0x51,
  /** Client: its confirmation and the name asked for. */
  PairConfirm: 0x52,
  /** Server: the name given. */
  PairDone: 0x53,
} as const;

/** A complete application message. */
export interface Message {
  /** One of {@linkcode MessageType}. */
  type: number;
  /** The request id it belongs to; 0 for connection-level messages. */
  id: number;
  /** The body. */
  body: Uint8Array;
}

/** Thrown for a malformed record or message. */
export class MessageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MessageError";
  }
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
