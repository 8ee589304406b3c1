/**
 * Chat messages inside the channel. A chat session is one request id chosen
 * by the client at Join; every message of the session carries it. Post and
 * Deliver carry an envelope (binary); the others are JSON objects.
 *
 * @module
 */

import { fromBase64Url } from "../../bytes.ts";
import { MessageError, MessageType } from "../../channel/messages.ts";
import { hasHiddenCharacters } from "../../identity/keys.ts";
import { MAX_CHANGE_LENGTH, MAX_CHANGES } from "./room_log.ts";

/** Message types of chat. */
export const ChatMessageType = {
  /** Client: join a room. `{room, display}` */
  Join: MessageType.ChatJoin,
  /** Server: joined; the members. `{room, members}` */
  Joined: MessageType.ChatJoined,
  /** Server: someone joined or left. `{event, member}` */
  Presence: MessageType.ChatPresence,
  /** Client: an envelope for the room. */
  Post: MessageType.ChatPost,
  /** Server: an envelope addressed to this member. */
  Deliver: MessageType.ChatDeliver,
  /** Server: a Join or Post was refused. `{code, message}` */
  Refused: MessageType.ChatRefused,
  /** Client: leave the room. `{}` */
  Leave: MessageType.ChatLeave,
  /**
   * Invite-only rooms. Client: a signed membership change to append to the
   * room's log. Server: a change appended (to every session, the poster's too).
   */
  Change: MessageType.ChatChange,
} as const;

/**
 * A room member as the relay describes it: in {@linkcode ChatSession.members},
 * {@linkcode ChatMessage.member} and {@linkcode ChatEvents.onPresence}.
 *
 * @example Who is online
 * ```ts
 * import { fingerprint, formatPublicKey, generateIdentity, type Member } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function whoIsOnline(members: Member[]): string {
 *   return members.filter((m) => m.online).map((m) => `${m.display} (${m.name})`).join(", ");
 * }
 * // whoIsOnline(session.members)
 *
 * const member = async (name: string, display: string, online: boolean): Promise<Member> => {
 *   const { publicKey } = await generateIdentity();
 *   const key = formatPublicKey(publicKey);
 *   return { name, display, fingerprint: await fingerprint(publicKey), key, online };
 * };
 * const members = [
 *   await member("alice", "Alice", true),
 *   await member("bob", "Bob", false),
 *   await member("carol", "Carol at home", true),
 * ];
 * assert.equal(whoIsOnline(members), "Alice (alice), Carol at home (carol)");
 * ```
 */
export interface Member {
  /** The name in the server's authorized_keys (the relay's word: a label, not identity). */
  name: string;
  /** The display name the member chose (the relay's word: pinned to the key by the CLI). */
  display: string;
  /**
   * Its key's fingerprint. On the wire, what the relay claims; in a
   * {@linkcode ChatSession}, computed from `key` by the client, which leaves
   * out a member whose claim differs.
   */
  fingerprint: string;
  /** Its public line (`ovtp1 ...`, no comment). */
  key: string;
  /** Whether it is connected now. */
  online: boolean;
}

/** Room names: 1 to 64 letters, digits, `.`, `_` or `-`. */
export const ROOM_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** The envelope context of a room. */
export function roomContext(room: string): string {
  return `room:${room}`;
}

/** The longest display name. */
export const MAX_DISPLAY_LENGTH = 64;

/**
 * Whether `display` may name a chat member: 1 to 64 UTF-16 units, none of
 * them control or invisible formatting characters (a relay passes display
 * names to every member's screen; the client escapes them too).
 */
export function isValidDisplay(display: unknown): display is string {
  return typeof display === "string" && display.length > 0 &&
    display.length <= MAX_DISPLAY_LENGTH && !hasHiddenCharacters(display);
}

/** Validates a Join body (`invite_only`, absent for an ordinary room, must be `true` if present). */
export function checkJoin(
  v: Record<string, unknown>,
): { room: string; display: string; inviteOnly: boolean } {
  if (
    typeof v.room !== "string" || !ROOM_PATTERN.test(v.room) || v.room.startsWith(".") ||
    !isValidDisplay(v.display) || (v.invite_only !== undefined && v.invite_only !== true)
  ) {
    throw new MessageError("Malformed chat join");
  }
  return { room: v.room, display: v.display, inviteOnly: v.invite_only === true };
}

// A member list comes from the relay, which may be hostile: its display names
// are not refused here but escaped where they are shown (printable), so one
// odd name does not cost the whole room.
function isMember(v: unknown): v is Member {
  const m = v as Member;
  return typeof m === "object" && m !== null && typeof m.name === "string" &&
    typeof m.display === "string" && typeof m.fingerprint === "string" &&
    typeof m.key === "string" && typeof m.online === "boolean";
}

/**
 * Validates a Joined body; `changes` (an invite-only room's log, each
 * change in base64url) is decoded, its count and sizes bounded.
 */
export function checkJoined(
  v: Record<string, unknown>,
): { room: string; members: Member[]; changes: Uint8Array[] | undefined } {
  if (typeof v.room !== "string" || !Array.isArray(v.members) || !v.members.every(isMember)) {
    throw new MessageError("Malformed chat joined");
  }
  if (v.changes === undefined) return { room: v.room, members: v.members, changes: undefined };
  if (
    !Array.isArray(v.changes) || v.changes.length > MAX_CHANGES ||
    !v.changes.every((c) => typeof c === "string" && c.length <= MAX_CHANGE_LENGTH * 4 / 3 + 4)
  ) {
    throw new MessageError("Malformed chat joined: changes");
  }
  let changes: Uint8Array[];
  try {
    changes = v.changes.map((c: string) => fromBase64Url(c));
  } catch {
    throw new MessageError("Malformed chat joined: changes");
  }
  return { room: v.room, members: v.members, changes };
}

/** Validates a Presence body. */
export function checkPresence(
  v: Record<string, unknown>,
): { event: "join" | "leave"; member: Member } {
  if ((v.event !== "join" && v.event !== "leave") || !isMember(v.member)) {
    throw new MessageError("Malformed chat presence");
  }
  return { event: v.event, member: v.member };
}
