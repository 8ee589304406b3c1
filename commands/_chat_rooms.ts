/**
 * What `ovtp chat` shows and resolves in an invite-only room: the lines for
 * membership changes, `/invite` and `/remove` targets, and `/who`.
 *
 * @module
 */

import type { Member } from "../lib/services/chat/chat_messages.ts";
import type { ChatSession } from "../lib/services/chat/chat_session.ts";
import type { MembershipChange, RoomMember } from "../lib/services/chat/membership.ts";
import { OvtpError } from "../lib/errors.ts";
import { fingerprint, parsePublicKey, type PublicKey } from "../lib/identity/keys.ts";
import { printable } from "./_printable.ts";

/** The line shown for a verified change, every fingerprint computed by this client. */
export function membershipLine(room: string, change: MembershipChange): string {
  const by = `${printable(change.by.name)} (${change.by.fingerprint})`;
  if (change.action === "create") return `${by} created invite-only room ${room}`;
  const member = `${printable(change.member.name)} (${change.member.fingerprint})`;
  if (change.by.fingerprint === change.member.fingerprint && change.action === "remove") {
    return `${by} left invite-only room ${room}`;
  }
  return `${by} ${change.action === "add" ? "added" : "removed"} ${member}`;
}

/**
 * The key `/invite TARGET` adds, with the name it gets: a public line (named
 * by its comment up to "@"), or the display name of one person the relay
 * lists in the room (its fingerprint is shown before anything is signed).
 */
export async function inviteTarget(
  session: ChatSession,
  target: string,
): Promise<{ key: PublicKey; name: string; fingerprint: string }> {
  if (target.startsWith("ovtp1 ")) {
    let parsed;
    try {
      parsed = parsePublicKey(target);
    } catch (error) {
      throw new OvtpError("usage", `Cannot invite: ${(error as Error).message}`);
    }
    const fp = await fingerprint(parsed.key);
    return { key: parsed.key, name: parsed.comment.split("@")[0] || fp, fingerprint: fp };
  }
  const listed = session.members.filter((m) => m.display === target);
  const member = unique(listed, target, "in the room", "their public line (ovtp id prints it)");
  return {
    key: parsePublicKey(member.key).key,
    name: member.display,
    fingerprint: member.fingerprint,
  };
}

/** The member `/remove TARGET` removes: by its name in the log, or its fingerprint. */
export function removeTarget(session: ChatSession, target: string): RoomMember {
  const members = session.roomMembers ?? [];
  const byFingerprint = members.filter((m) => m.fingerprint === target);
  const named = byFingerprint.length > 0 ? byFingerprint : members.filter((m) => m.name === target);
  return unique(named, target, "a member of the room", "their fingerprint (/who lists them)");
}

function unique<T>(found: T[], target: string, where: string, instead: string): T {
  if (found.length === 1) return found[0];
  const name = JSON.stringify(printable(target));
  throw new OvtpError(
    "usage",
    found.length === 0
      ? `Nobody named ${name} is ${where}: give ${instead}`
      : `${found.length} people named ${name} are ${where}: give ${instead}`,
  );
}

/** `/who` in an invite-only room: the members of the log, then whoever else the relay lists. */
export function whoInviteOnly(members: RoomMember[], listed: Member[]): string {
  const online = new Set(listed.filter((m) => m.online).map((m) => m.fingerprint));
  const inLog = new Set(members.map((m) => m.fingerprint));
  const lines = members.map((m) =>
    `  ${online.has(m.fingerprint) ? "●" : "○"} ${printable(m.name)} ${m.fingerprint}`
  );
  for (const m of listed.filter((m) => !inLog.has(m.fingerprint))) {
    lines.push(
      `  ✗ ${printable(m.display)} ${m.fingerprint} (not invited: nothing is sealed to it)`,
    );
  }
  return lines.join("\n");
}
