/**
 * Application messages: the table of every message type of ovtp/1, the
 * message itself, and the bodies several services share (a Response's
 * status and bytes, JSON control messages). How messages are cut into
 * record fragments and put back together is lib/channel/connection.ts.
 *
 * @module
 */

import { fromUtf8, utf8 } from "../bytes.ts";

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
