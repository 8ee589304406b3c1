/**
 * The signed membership log of an invite-only room: a chain of changes,
 * each signed by a member current at that point, from the creator's first
 * change. The relay stores and forwards the log but cannot write it: a
 * change it made up, reordered or altered fails here. The layout is in
 * docs/protocol.md ("Invite-only rooms").
 *
 * @module
 */

import { concat, constantTimeEqual, fromUtf8, toHex, utf8 } from "../../bytes.ts";
import { ed25519Sign, ed25519Verify, sha256 } from "../../crypto/mod.ts";
import {
  fingerprint,
  hasHiddenCharacters,
  type Identity,
  type PublicKey,
  publicKeyBytes,
  publicKeyFromBytes,
  samePublicKey,
} from "../../identity/keys.ts";

/** The first bytes of every change: format version 1. */
const CHANGE_MAGIC = utf8("OVM1");
/** What each signature covers first, so that it means nothing in another protocol. */
const SIGNATURE_CONTEXT = utf8("ovtp room change v1\0");
const KEY_BYTES = 64;
const SIGNATURE_LENGTH = 64;
const HASH_LENGTH = 32;
const ZERO_HASH = new Uint8Array(HASH_LENGTH);

/** The most members an invite-only room has at once (the relay's bound on any room). */
export const MAX_LOG_MEMBERS = 256;
/** The most changes a room's log holds: then it is full, and nobody can be added or removed. */
export const MAX_CHANGES = 1024;
/** The longest name in a change, in UTF-8 bytes. */
export const MAX_CHANGE_NAME = 64;
/** The largest change, in bytes (a full-length room name and member name). */
export const MAX_CHANGE_LENGTH = 4 + 1 + 64 + 4 + HASH_LENGTH + 8 + 1 + 2 * KEY_BYTES + 1 +
  MAX_CHANGE_NAME + SIGNATURE_LENGTH;

/** What a change does. */
export const ChangeAction = { Create: 1, Add: 2, Remove: 3 } as const;
/** One of {@linkcode ChangeAction}. */
export type ChangeActionCode = typeof ChangeAction[keyof typeof ChangeAction];

/**
 * Why a change was refused: `malformed` (not a change, or for another
 * room), `order` (it does not extend the log: wrong version or previous
 * hash), `signer` (not signed by a current member), `rule` (adds a member
 * twice, removes a non-member, a second creation, a full room or log),
 * `signature` (the signature does not verify).
 */
export type RoomLogFailure = "malformed" | "order" | "signer" | "rule" | "signature";

/** A change that could not be appended, with the reason. */
export class RoomLogError extends Error {
  /** What failed. */
  readonly reason: RoomLogFailure;

  /** Creates the error. */
  constructor(reason: RoomLogFailure, message: string) {
    super(message);
    this.name = "RoomLogError";
    this.reason = reason;
  }
}

/** A change, parsed. */
export interface RoomChange {
  room: string;
  version: number;
  previous: Uint8Array;
  timestamp: number;
  action: ChangeActionCode;
  signer: PublicKey;
  subject: PublicKey;
  /** The subject's name, as the signer gave it. */
  name: string;
  signed: Uint8Array;
  signature: Uint8Array;
}

/** A current member of the log, with its fingerprint computed from its key. */
export interface LogMember {
  key: PublicKey;
  fingerprint: string;
  name: string;
}

/** The newest change of a log: its version and the SHA-256 of its bytes. */
export interface LogHead {
  version: number;
  hash: Uint8Array;
}

/** Encodes and signs a change (the caller checks it extends the log). */
export async function signChange(
  identity: Identity,
  change: Omit<RoomChange, "signer" | "signed" | "signature">,
): Promise<Uint8Array> {
  const room = utf8(change.room);
  const name = utf8(change.name);
  const fixed = new Uint8Array(4 + 8);
  const view = new DataView(fixed.buffer);
  view.setUint32(0, change.version);
  view.setBigUint64(4, BigInt(change.timestamp));
  const signed = concat(
    CHANGE_MAGIC,
    new Uint8Array([room.length]),
    room,
    fixed.subarray(0, 4),
    change.previous,
    fixed.subarray(4),
    new Uint8Array([change.action]),
    publicKeyBytes(identity.publicKey),
    publicKeyBytes(change.subject),
    new Uint8Array([name.length]),
    name,
  );
  const signature = await ed25519Sign(identity.ed25519Private, concat(SIGNATURE_CONTEXT, signed));
  return concat(signed, signature);
}

/** Parses a change, every length checked, no trailing bytes; does not verify it. */
export function parseChange(bytes: Uint8Array): RoomChange {
  const malformed = (why: string) => new RoomLogError("malformed", `Malformed room change: ${why}`);
  if (bytes.length > MAX_CHANGE_LENGTH) throw malformed("too long");
  let offset = 0;
  const take = (n: number) => {
    if (offset + n > bytes.length) throw malformed("truncated");
    const piece = bytes.subarray(offset, offset + n);
    offset += n;
    return piece;
  };
  if (!constantTimeEqual(take(4), CHANGE_MAGIC)) throw malformed("not a version 1 change");
  const room = text(take(take(1)[0]), 64, malformed);
  const view = (piece: Uint8Array) => new DataView(piece.buffer, piece.byteOffset, piece.length);
  const version = view(take(4)).getUint32(0);
  const previous = take(HASH_LENGTH).slice();
  const timestamp = Number(view(take(8)).getBigUint64(0));
  const action = take(1)[0];
  if (action < ChangeAction.Create || action > ChangeAction.Remove) {
    throw malformed("no such action");
  }
  const signer = publicKeyFromBytes(take(KEY_BYTES).slice());
  const subject = publicKeyFromBytes(take(KEY_BYTES).slice());
  const name = text(take(take(1)[0]), MAX_CHANGE_NAME, malformed);
  const signedLength = offset;
  const signature = take(SIGNATURE_LENGTH).slice();
  if (offset !== bytes.length) throw malformed("trailing bytes");
  return {
    room,
    version,
    previous,
    timestamp,
    action: action as ChangeActionCode,
    signer,
    subject,
    name,
    signed: bytes.slice(0, signedLength),
    signature,
  };
}

function text(bytes: Uint8Array, max: number, malformed: (why: string) => Error): string {
  let value: string;
  try {
    value = fromUtf8(bytes);
  } catch {
    throw malformed("a name is not UTF-8");
  }
  if (bytes.length === 0 || bytes.length > max || hasHiddenCharacters(value)) {
    throw malformed("a name is empty, too long, or holds hidden characters");
  }
  return value;
}

/**
 * `name` cut to {@linkcode MAX_CHANGE_NAME} UTF-8 bytes (whole characters),
 * with hidden (control or format) characters replaced: what a change can hold.
 */
export function changeName(name: string): string {
  let out = "";
  let bytes = 0;
  for (const char of name.toWellFormed()) {
    const piece = hasHiddenCharacters(char) ? "?" : char;
    bytes += utf8(piece).length;
    if (bytes > MAX_CHANGE_NAME) break;
    out += piece;
  }
  return out || "?";
}

/** The hash that the next change names as `previous`. */
export function changeHash(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}

/**
 * A room's log as verified so far: its current members and its head. Each
 * {@linkcode RoomLog.append} checks one change against the state before it
 * and changes nothing when it refuses.
 */
export class RoomLog {
  readonly room: string;
  /** X25519 key (hex) → current member. */
  readonly #members = new Map<string, LogMember>();
  #head: LogHead | undefined;

  constructor(room: string) {
    this.room = room;
  }

  /** The newest change, or undefined for an empty log. */
  get head(): LogHead | undefined {
    return this.#head;
  }

  /** How many changes the log holds. */
  get length(): number {
    return this.#head ? this.#head.version + 1 : 0;
  }

  /** The members now, in the order they were added. */
  get members(): LogMember[] {
    return [...this.#members.values()];
  }

  /** The current member with this key, if it is one. */
  memberOf(key: PublicKey): LogMember | undefined {
    const member = this.#members.get(toHex(key.x25519));
    return member && samePublicKey(member.key, key) ? member : undefined;
  }

  /**
   * Checks `bytes` as the next change and applies it. `verify: false` skips
   * the signature only, for changes this process verified before (the
   * relay's own log on disk).
   */
  async append(bytes: Uint8Array, verify = true): Promise<RoomChange> {
    const change = parseChange(bytes);
    if (change.room !== this.room) {
      throw new RoomLogError("malformed", `The change is for room "${change.room}"`);
    }
    const expected = this.#head ? this.#head.version + 1 : 0;
    if (
      change.version !== expected ||
      !constantTimeEqual(change.previous, this.#head?.hash ?? ZERO_HASH)
    ) {
      throw new RoomLogError(
        "order",
        `The change is version ${change.version}, but does not follow the log, whose next is version ${expected}`,
      );
    }
    this.#checkRules(change);
    if (
      verify &&
      !await ed25519Verify(
        change.signer.ed25519,
        change.signature,
        concat(SIGNATURE_CONTEXT, change.signed),
      )
    ) {
      throw new RoomLogError("signature", `The signature of change ${change.version} is not valid`);
    }
    const subjectHex = toHex(change.subject.x25519);
    if (change.action === ChangeAction.Remove) {
      this.#members.delete(subjectHex);
    } else {
      this.#members.set(subjectHex, {
        key: change.subject,
        fingerprint: await fingerprint(change.subject),
        name: change.name,
      });
    }
    this.#head = { version: change.version, hash: changeHash(bytes) };
    return change;
  }

  /** Who may sign what: throws (changing nothing) when `change` breaks a rule. */
  #checkRules(change: RoomChange): void {
    if (change.version + 1 > MAX_CHANGES) {
      throw new RoomLogError("rule", `The room's log is full (${MAX_CHANGES} changes)`);
    }
    if (change.version === 0) {
      if (change.action !== ChangeAction.Create || !samePublicKey(change.signer, change.subject)) {
        throw new RoomLogError("rule", "The first change must be its signer creating the room");
      }
      return;
    }
    if (change.action === ChangeAction.Create) {
      throw new RoomLogError("rule", "The room was created already");
    }
    if (!this.memberOf(change.signer)) {
      throw new RoomLogError("signer", `Change ${change.version} is signed by a non-member`);
    }
    const current = this.#members.get(toHex(change.subject.x25519));
    if (change.action === ChangeAction.Add) {
      // By X25519 key: two members sharing one would be sealed to twice.
      if (current) throw new RoomLogError("rule", "The key added is a member already");
      if (this.#members.size >= MAX_LOG_MEMBERS) {
        throw new RoomLogError("rule", `The room is full (${MAX_LOG_MEMBERS} members)`);
      }
    } else if (!current || !samePublicKey(current.key, change.subject)) {
      throw new RoomLogError("rule", "The key removed is not a member");
    }
  }
}
