/**
 * A shared room's member list: how it is read from its key-value entry and
 * how a join changes it. The same rules as a relay's members.json
 * (lib/services/chat/room_store.ts): a full room refuses newcomers, and members idle
 * past the bound, who are not connected, are removed.
 *
 * @module
 */

import type { KvEntry } from "@nats-io/kv";
import { parsePublicKey } from "../identity/keys.ts";
import type { StoredMember } from "../services/chat/room_store.ts";

/** A member as kept in the shared list, with when it last joined. */
export interface KeptMember extends StoredMember {
  /** When it last joined (ms since the epoch). */
  seen: number;
}

/** The members in a room's entry: none for a missing or deleted one. */
export function parseMembers(entry: KvEntry | null): KeptMember[] {
  if (!entry || entry.operation !== "PUT") return [];
  let parsed: unknown;
  try {
    parsed = entry.json();
  } catch {
    parsed = undefined;
  }
  // The relay parses every key at once: a damaged entry is refused here.
  if (!Array.isArray(parsed) || !parsed.every(isKeptMember)) {
    throw new Error(`the member list of "${entry.key}" is damaged`);
  }
  return parsed;
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
