/**
 * Named function calls: a Call message names a function of the server and
 * passes parameters and a message; the answer is an ordinary Response.
 *
 * Call body: `JSON length (u16 BE) | {"function": NAME, "params": {K: V}} | message`.
 *
 * @module
 */

import { concat, fromUtf8, utf8 } from "../bytes.ts";
import { MessageError, MessageType } from "../channel/messages.ts";

/** The Call message type (Responses answer it, as they answer Requests). */
export const CALL_MESSAGE_TYPE = MessageType.Call;

/** Function names: letters, digits, `.`, `_`, `-`, up to 64. */
export const FUNCTION_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** A decoded Call. */
export interface CallBody {
  /** The function's name. */
  function: string;
  /** String parameters. */
  params: Record<string, string>;
  /** The message bytes. */
  message: Uint8Array;
}

/** Encodes a Call body. */
export function encodeCall(call: CallBody): Uint8Array {
  if (!FUNCTION_NAME_PATTERN.test(call.function)) {
    throw new RangeError(`Invalid function name "${call.function}"`);
  }
  const json = utf8(JSON.stringify({ function: call.function, params: call.params }));
  if (json.length > 0xffff) throw new RangeError("The parameters are too large");
  const length = new Uint8Array([json.length >> 8, json.length & 0xff]);
  return concat(length, json, call.message);
}

/** Decodes a Call body; throws MessageError. */
export function decodeCall(body: Uint8Array): CallBody {
  if (body.length < 2) throw new MessageError("Truncated call");
  const length = (body[0] << 8) | body[1];
  if (2 + length > body.length) throw new MessageError("Truncated call header");
  let header: { function?: unknown; params?: unknown };
  try {
    header = JSON.parse(fromUtf8(body.subarray(2, 2 + length)));
  } catch {
    throw new MessageError("Malformed call header");
  }
  // JSON.parse() yields null for "null": reading fields of it would throw a TypeError.
  if (header === null) throw new MessageError("Malformed call header");
  const params = header.params;
  if (
    typeof header.function !== "string" || !FUNCTION_NAME_PATTERN.test(header.function) ||
    typeof params !== "object" || params === null || Array.isArray(params) ||
    !Object.values(params).every((v) => typeof v === "string")
  ) {
    throw new MessageError("Malformed call header");
  }
  return {
    function: header.function,
    params: params as Record<string, string>,
    message: body.subarray(2 + length),
  };
}
