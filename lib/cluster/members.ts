/**
 * A shared room's entry: how its member list (and an invite-only room's
 * signed log) is read from its key-value entry and written back, and how a
 * join changes the list. The same rules as a relay's members.json
 * (lib/services/chat/room_store.ts): a full room refuses newcomers, and members idle
 * past the bound, who are not connected, are removed.
 *
 * @module
 */

import type { KvEntry } from "@nats-io/kv";
import { fromBase64Url, toBase64Url } from "../bytes.ts";
import { parsePublicKey } from "../identity/keys.ts";
import { MAX_CHANGE_LENGTH, MAX_CHANGES } from "../services/chat/room_log.ts";
import type { StoredMember } from "../services/chat/room_store.ts";

/** A member as kept in the shared list, with when it last joined. */
export interface KeptMember extends StoredMember {
  /** When it last joined (ms since the epoch). */
  seen: number;
}

/** A room as its entry holds it. */
export interface KeptRoom {
  members: KeptMember[];
  /**
   * An invite-only room's log of signed changes, in order, as the relays
   * appended them (each checked first); undefined for an ordinary room.
   */
  changes?: Uint8Array[];
}

/**
 * The room in an entry: no members for a missing or deleted one. An
 * ordinary room's entry is its list of members (as before invite-only rooms
 * were shared); an invite-only room's is `{"members": [...], "changes":
 * [base64url...]}`, so that its kind and its log change with its list, in
 * one compare-and-set.
 */
export function parseRoom(entry: KvEntry | null): KeptRoom {
  if (!entry || entry.operation !== "PUT") return { members: [] };
  let parsed: unknown;
  try {
    parsed = entry.json();
  } catch {
    parsed = undefined;
  }
  // The relay parses every key at once: a damaged entry is refused here.
  const room = keptRoom(parsed);
  if (!room) throw new Error(`the member list of "${entry.key}" is damaged`);
  return room;
}

/** The members in a room's entry: none for a missing or deleted one. */
export function parseMembers(entry: KvEntry | null): KeptMember[] {
  return parseRoom(entry).members;
}

/** The value of a room's entry (see {@linkcode parseRoom}). */
export function encodeRoom(room: KeptRoom): string {
  if (!room.changes) return JSON.stringify(room.members);
  return JSON.stringify({ members: room.members, changes: room.changes.map(toBase64Url) });
}

function keptRoom(value: unknown): KeptRoom | undefined {
  if (Array.isArray(value)) return value.every(isKeptMember) ? { members: value } : undefined;
  const v = value as Record<string, unknown>;
  if (
    typeof v !== "object" || v === null || !Array.isArray(v.members) ||
    !v.members.every(isKeptMember) || !Array.isArray(v.changes) ||
    v.changes.length > MAX_CHANGES || !v.changes.every((c) => typeof c === "string")
  ) return undefined;
  const changes: Uint8Array[] = [];
  for (const text of v.changes as string[]) {
    let bytes;
    try {
      bytes = fromBase64Url(text);
    } catch {
      return undefined;
    }
    if (bytes.length === 0 || bytes.length > MAX_CHANGE_LENGTH) return undefined;
    changes.push(bytes);
  }
  return { members: v.members, changes };
}

/** What a join needs to know besides the list. */
export interface AdmitOptions {
  now: number;
  maxMembers: number;
  maxIdleMs: number;
  /** Whether a member is connected (it is then never idle). */
  online: (fingerprint: string) => boolean;
  /** Whether a member is no longer allowed in the room (removed, online or not). */
  revoked?: (fingerprint: string) => boolean;
}

/**
 * The list after `member` joins, and the members removed (idle or no
 * longer allowed); or why
 * it is refused.
 */
export function admitMember(
  members: KeptMember[],
  member: StoredMember,
  options: AdmitOptions,
): { members: KeptMember[]; removed: KeptMember[] } | string {
  const { now, maxMembers, maxIdleMs, online, revoked = () => false } = options;
  const others = members.filter((m) => m.fingerprint !== member.fingerprint);
  const removed = others.filter((m) =>
    revoked(m.fingerprint) || m.seen < now - maxIdleMs && !online(m.fingerprint)
  );
  const kept = others.filter((m) => !removed.includes(m));
  const isNew = others.length === members.length;
  if (isNew && kept.length >= maxMembers) {
    return `The room is full (${maxMembers} members)`;
  }
  const { name, display, fingerprint, key } = member;
  return { members: [...kept, { name, display, fingerprint, key, seen: now }], removed };
}

function isKeptMember(value: unknown): value is KeptMember {
  const m = value as Record<string, unknown>;
  if (
    typeof m !== "object" || m === null || typeof m.name !== "string" ||
    typeof m.display !== "string" || typeof m.fingerprint !== "string" ||
    typeof m.key !== "string" || typeof m.seen !== "number"
  ) return false;
  try {
    parsePublicKey(m.key);
    return true;
  } catch {
    return false;
  }
}
