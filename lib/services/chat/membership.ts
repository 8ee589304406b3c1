/**
 * The client's side of an invite-only room: the signed log checked from
 * its first change, compared with what this client saw before, and the
 * members it yields — the only keys a {@linkcode ChatSession} seals to there.
 *
 * @module
 */

import { toHex } from "../../bytes.ts";
import { OvtpError } from "../../errors.ts";
import { formatPublicKey, type Identity, type PublicKey } from "../../identity/keys.ts";
import {
  ChangeAction,
  type ChangeActionCode,
  changeHash,
  changeName,
  type LogMember,
  type RoomChange,
  RoomLog,
  RoomLogError,
  signChange,
} from "./room_log.ts";

/**
 * The newest change of an invite-only room's log that a client verified:
 * kept between sessions (the CLI keeps it in `~/.ovtp/room_heads`), so that
 * a relay that rolls the log back or forks it is caught on the next join.
 *
 * @example Kept as text
 * ```ts
 * import type { RoomHead } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const head: RoomHead = { version: 3, hash: "ab".repeat(32) };
 * const line = `${head.version} ${head.hash}`;
 * const [version, hash] = line.split(" ");
 * assert.deepEqual({ version: Number(version), hash }, head);
 * ```
 */
export interface RoomHead {
  /** Its version: 0 for the room's creation, then one more per change. */
  version: number;
  /** SHA-256 of the change's bytes, in hex. */
  hash: string;
}

/**
 * A member of an invite-only room as its signed log names it.
 *
 * @example Showing a member
 * ```ts
 * import type { RoomMember } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const bob: RoomMember = { name: "bob", fingerprint: "SHA256:abc", key: "ovtp1 AAAA" };
 * assert.equal(`${bob.name} (${bob.fingerprint})`, "bob (SHA256:abc)");
 * ```
 */
export interface RoomMember {
  /** The name the member who added it gave it (its creator's display name for the creator). */
  name: string;
  /** Computed by this client from `key`. */
  fingerprint: string;
  /** Its public line (`ovtp1 ...`, no comment). */
  key: string;
}

/**
 * One verified change of an invite-only room's membership, as
 * {@linkcode ChatEvents.onMembership} receives it.
 *
 * @example A line for each change
 * ```ts
 * import type { MembershipChange } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function describe(change: MembershipChange): string {
 *   const who = `${change.by.name} (${change.by.fingerprint})`;
 *   if (change.action === "create") return `${who} created the room`;
 *   const verb = change.action === "add" ? "added" : "removed";
 *   return `${who} ${verb} ${change.member.name} (${change.member.fingerprint})`;
 * }
 * const alice = { name: "alice", fingerprint: "SHA256:a", key: "ovtp1 A" };
 * const bob = { name: "bob", fingerprint: "SHA256:b", key: "ovtp1 B" };
 * const change: MembershipChange = { action: "add", version: 1, by: alice, member: bob, timestamp: 0 };
 * assert.equal(describe(change), "alice (SHA256:a) added bob (SHA256:b)");
 * ```
 */
export interface MembershipChange {
  /** What it did. */
  action: "create" | "add" | "remove";
  /** Its place in the log. */
  version: number;
  /** The member who signed it. */
  by: RoomMember;
  /** The member created, added or removed. */
  member: RoomMember;
  /** When its signer made it (its clock), in ms since the epoch. */
  timestamp: number;
}

/**
 * {@linkcode JoinOptions.inviteOnly}: join (or create) a room whose
 * membership only its members can change.
 *
 * @example Keeping the head between sessions
 * ```ts
 * import type { InviteOnlyOptions, RoomHead } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * let stored: RoomHead | undefined; // A file, in a real client.
 * const options: InviteOnlyOptions = { seen: stored, onHead: (head) => void (stored = head) };
 * options.onHead?.({ version: 0, hash: "00".repeat(32) });
 * assert.equal(stored?.version, 0);
 * ```
 */
export interface InviteOnlyOptions {
  /**
   * The newest change this client verified in an earlier session: a log
   * that does not hold it, or holds another change in its place, is refused.
   * @default none: the room's log is taken as it comes (the first join)
   */
  seen?: RoomHead;
  /** Called with each newer head once verified: keep it for `seen`. */
  onHead?(head: RoomHead): void | Promise<void>;
}

const ACTIONS: Record<ChangeActionCode, MembershipChange["action"]> = {
  [ChangeAction.Create]: "create",
  [ChangeAction.Add]: "add",
  [ChangeAction.Remove]: "remove",
};

/** @internal What a {@linkcode ChatSession} does in an invite-only room. */
export class Membership {
  readonly #log: RoomLog;
  readonly #identity: Identity;
  readonly #options: InviteOnlyOptions;
  /** Every member the log ever named, by X25519 hex: signers and the removed are shown by name. */
  readonly #known = new Map<string, RoomMember>();

  constructor(room: string, identity: Identity, options: InviteOnlyOptions) {
    this.#log = new RoomLog(room);
    this.#identity = identity;
    this.#options = options;
  }

  /** Whether the log is empty: nobody created the room yet. */
  get empty(): boolean {
    return this.#log.length === 0;
  }

  /** The current members. */
  get members(): RoomMember[] {
    return this.#log.members.map(roomMember);
  }

  /** The current member with this key. */
  memberOf(key: PublicKey): RoomMember | undefined {
    const member = this.#log.memberOf(key);
    return member && roomMember(member);
  }

  /** The keys to seal for: every current member but this client. */
  recipients(): PublicKey[] {
    const own = toHex(this.#identity.publicKey.x25519);
    return this.#log.members.filter((m) => toHex(m.key.x25519) !== own).map((m) => m.key);
  }

  /**
   * Checks the whole log the relay sent on joining, against what this
   * client saw before; returns its changes newer than that, to show.
   */
  async load(changes: Uint8Array[]): Promise<MembershipChange[]> {
    const seen = this.#options.seen;
    if (seen && changes.length <= seen.version) {
      throw forked(
        `The server's log of room "${this.#log.room}" ends at version ${
          changes.length - 1
        }, but this client saw version ${seen.version}: the server rolled it back`,
      );
    }
    if (seen && toHex(changeHash(changes[seen.version])) !== seen.hash) {
      throw forked(
        `The server's log of room "${this.#log.room}" has another change ${seen.version} ` +
          "than the one this client saw: the server forked it",
      );
    }
    const shown: MembershipChange[] = [];
    for (const bytes of changes) {
      try {
        const change = await this.#apply(bytes);
        if (!seen || change.version > seen.version) shown.push(change);
      } catch (error) {
        if (!(error instanceof RoomLogError)) throw error;
        throw forked(`The server's log of room "${this.#log.room}" is not valid: ${error.message}`);
      }
    }
    await this.#saveHead();
    return shown;
  }

  /** Checks one change the relay sent and applies it; throws RoomLogError, changing nothing. */
  async receive(bytes: Uint8Array): Promise<MembershipChange> {
    const change = await this.#apply(bytes);
    await this.#saveHead();
    return change;
  }

  /**
   * Signs the change that does `action` to `subject` after the current
   * head. Refused here when this client is not a member, or the log would
   * refuse it: nothing is sent.
   */
  async sign(action: ChangeActionCode, subject: PublicKey, name: string): Promise<Uint8Array> {
    const room = this.#log.room;
    if (action !== ChangeAction.Create && !this.#log.memberOf(this.#identity.publicKey)) {
      throw new OvtpError(
        "usage",
        `You are not a member of room "${room}": a member must invite you`,
      );
    }
    if (action === ChangeAction.Add && this.#log.memberOf(subject)) {
      throw new OvtpError("usage", `${name} is a member of room "${room}" already`);
    }
    if (action === ChangeAction.Remove && !this.#log.memberOf(subject)) {
      throw new OvtpError("usage", `${name} is not a member of room "${room}"`);
    }
    const head = this.#log.head;
    return await signChange(this.#identity, {
      room,
      version: this.#log.length,
      previous: head?.hash ?? new Uint8Array(32),
      timestamp: Date.now(),
      action,
      subject,
      name: changeName(name),
    });
  }

  async #apply(bytes: Uint8Array): Promise<MembershipChange> {
    const change: RoomChange = await this.#log.append(bytes);
    const subject = this.#log.memberOf(change.subject);
    const member = subject ? roomMember(subject) : this.#known.get(toHex(change.subject.x25519))!;
    this.#known.set(toHex(change.subject.x25519), member);
    return {
      action: ACTIONS[change.action],
      version: change.version,
      by: this.#known.get(toHex(change.signer.x25519))!,
      member,
      timestamp: change.timestamp,
    };
  }

  async #saveHead(): Promise<void> {
    const head = this.#log.head;
    if (head) await this.#options.onHead?.({ version: head.version, hash: toHex(head.hash) });
  }
}

function roomMember(member: LogMember): RoomMember {
  return { name: member.name, fingerprint: member.fingerprint, key: formatPublicKey(member.key) };
}

function forked(message: string): OvtpError {
  return new OvtpError("trust", message, {
    hint: "the relay may be hostile; check with the room's members before trusting it again",
  });
}
