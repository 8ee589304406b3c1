/**
 * The messages of a pairing connection (docs/protocol.md section 20): each
 * is one fragment with id 0, alone in its record, so that a party reads
 * exactly one record per step and nothing larger than a record.
 *
 * @module
 */

import { decodeJson, encodeJson } from "../channel/messages.ts";
import { MessageType } from "../channel/messages.ts";
import type { SecureChannel } from "../channel/channel.ts";
import { OvtpError } from "../errors.ts";
import { type PublicKey, publicKeyBytes } from "../identity/keys.ts";
import { concat, utf8 } from "../bytes.ts";
import type { Spake2Context } from "./spake2.ts";
import { encodeFragments, FRAGMENT_HEADER_LENGTH } from "../channel/connection.ts";

/** The payload of Noise message 1 that makes a connection a pairing connection. */
export const PAIR_INTENT: Uint8Array = new TextEncoder().encode("pair");

/** Message types of a pairing connection. */
export const PairMessageType = {
  /** Client to server: nameplate (u16 BE) || pA (65 bytes). */
  Start: MessageType.PairStart,
  /** Server to client: pB (65 bytes) || cB (32 bytes). */
  Reply: MessageType.PairReply,
  /** Client to server: cA (32 bytes) || the name asked for (UTF-8, 0..64 bytes). */
  Confirm: MessageType.PairConfirm,
  /** Server to client: JSON {"name": NAME, "added": BOOLEAN}. */
  Done: MessageType.PairDone,
} as const;

/** The longest name a client may ask for, in UTF-8 bytes. */
export const MAX_PAIR_NAME = 64;
const PAIR_AAD_LABEL = utf8("ovtp/1 pair");

/**
 * The SPAKE2 context of a pairing: A is the client's 64-byte key, B the
 * server's, and the AAD binds the exchange to this connection's Noise
 * handshake hash, so that a relay between two connections fails.
 */
export function pairContext(
  client: PublicKey,
  server: PublicKey,
  handshakeHash: Uint8Array,
): Spake2Context {
  return {
    idA: publicKeyBytes(client),
    idB: publicKeyBytes(server),
    aad: concat(PAIR_AAD_LABEL, handshakeHash),
  };
}

/** The largest record a pairing party reads (the longest message is Done). */
export const MAX_PAIR_RECORD = 1024;

/** One message of a pairing connection. */
export interface PairMessage {
  /** Its type: one of {@linkcode PairMessageType}, or Error (0x02). */
  type: number;
  /** Its body. */
  body: Uint8Array;
}

/** Sends one message in its own record. */
export async function sendPairMessage(channel: SecureChannel, message: PairMessage): Promise<void> {
  const [fragment] = encodeFragments({ type: message.type, id: 0, body: message.body });
  await channel.send(fragment);
}

/** Sends an Error (0x02) with `code` and `message`. */
export async function sendPairError(
  channel: SecureChannel,
  code: string,
  message: string,
): Promise<void> {
  await sendPairMessage(channel, { type: MessageType.Error, body: encodeJson({ code, message }) });
}

/**
 * Reads the next record as one whole message with id 0. Throws an
 * OvtpError of kind `protocol` for anything else, `network` at the end of
 * the stream.
 */
export async function readPairMessage(channel: SecureChannel): Promise<PairMessage> {
  const record = await channel.receive();
  if (record === null) {
    throw new OvtpError("network", "The peer closed the connection during pairing");
  }
  if (record.length < FRAGMENT_HEADER_LENGTH || record.length > MAX_PAIR_RECORD) {
    throw new OvtpError("protocol", `A pairing record of ${record.length} bytes`);
  }
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const type = view.getUint8(0);
  if (type & 0x80 || type === 0 || view.getUint32(1) !== 0) {
    throw new OvtpError("protocol", "A pairing message must be one fragment with id 0");
  }
  if (view.getUint16(5) !== record.length - FRAGMENT_HEADER_LENGTH) {
    throw new OvtpError("protocol", "A pairing record must hold exactly one message");
  }
  return { type, body: record.slice(FRAGMENT_HEADER_LENGTH) };
}

/** Turns an Error message from the peer into an OvtpError (kind `trust`). */
export function pairErrorOf(message: PairMessage): OvtpError {
  let info: Record<string, unknown> = {};
  try {
    info = decodeJson(message.body);
  } catch {
    // A malformed error is still a refusal.
  }
  const text = typeof info.message === "string" ? info.message : "The server refused to pair";
  return new OvtpError(info.code === "pair-rate" ? "remote" : "trust", text);
}
