/**
 * The seam between {@linkcode ChatRelay} and where rooms live. A single
 * relay keeps them on its disk ({@linkcode RoomStore}, a
 * {@linkcode RoomBackend}) and needs nothing else; relays that share rooms
 * (a cluster) also give the relay a {@linkcode RoomBus}, which carries what
 * one relay must tell the others: envelopes kept for a member, and presence.
 *
 * @module
 */

import type { Member } from "./chat_messages.ts";
import type { AddMemberOptions, StoredMember } from "./room_store.ts";

/**
 * Where a relay keeps rooms' members and the envelopes held for members who
 * are not connected to it. {@linkcode RoomStore} is the one-server
 * implementation; a cluster's keeps them where every relay reads them.
 *
 * @example The disk store is a backend
 * ```ts
 * import { type RoomBackend, RoomStore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const backend: RoomBackend = new RoomStore(dir);
 * assert.deepEqual(await backend.members("ops"), []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface RoomBackend {
  /** The members of `room` (empty for a new room). */
  members(room: string): Promise<StoredMember[]>;
  /** Adds or updates a member; resolves with the reason when a bound refuses it. */
  addMember(room: string, member: StoredMember, options?: AddMemberOptions): Promise<
    string | undefined
  >;
  /** Keeps an envelope for a member this relay does not serve now. */
  enqueue(room: string, key: string, envelope: Uint8Array): Promise<void>;
  /** Takes what was kept for a member, oldest first (a bus may deliver it instead). */
  takeQueued(room: string, key: string): Promise<Uint8Array[]>;
  /**
   * An invite-only room's log, as appended (undefined for an ordinary room).
   * A backend without it keeps no invite-only rooms: the relay refuses them.
   */
  changes?(room: string): Promise<Uint8Array[] | undefined>;
  /** Appends a checked change when the log still has `count` changes; false otherwise. */
  appendChange?(room: string, change: Uint8Array, count: number): Promise<boolean>;
}

/**
 * What relays sharing rooms tell each other. The relay calls
 * {@linkcode RoomBus.attach} when a member's first session in a room joins
 * it, and {@linkcode RoomBus.detach} when the last one leaves: in between,
 * the bus hands it what others keep for that member (through
 * {@linkcode RoomBackend.enqueue}), once each.
 *
 * @example A bus that connects nothing (a relay alone)
 * ```ts
 * import { type RoomBus } from "@ovtp/ovtp";
 *
 * const alone: RoomBus = {
 *   attach: () => Promise.resolve(),
 *   detach: () => Promise.resolve(),
 *   announce: () => Promise.resolve(),
 *   onPresence: () => {},
 *   online: () => Promise.resolve(new Set<string>()),
 * };
 * await alone.attach("ops", {
 *   name: "bob",
 *   display: "Bob",
 *   fingerprint: "SHA256:bob",
 *   key: "ovtp1 AAAA-bob",
 * }, () => Promise.resolve());
 * ```
 */
export interface RoomBus {
  /**
   * Delivers to this relay, through `deliver`, what was kept and is kept
   * from now on for `member` in `room`. An envelope counts as delivered
   * once `deliver` resolves; when it rejects, the envelope is offered again.
   */
  attach(
    room: string,
    member: StoredMember,
    deliver: (envelope: Uint8Array) => Promise<void>,
  ): Promise<void>;
  /** Stops delivering for `member` in `room` to this relay. */
  detach(room: string, member: StoredMember): Promise<void>;
  /** Tells the other relays that `member` joined or left `room` here. */
  announce(room: string, event: "join" | "leave", member: Member): Promise<void>;
  /** Calls `listener` for presence other relays announce in rooms this relay has attached. */
  onPresence(listener: (room: string, event: "join" | "leave", member: Member) => void): void;
  /**
   * Calls `listener` when another relay appended a change to the log of the
   * invite-only `room` (read it again from the backend). Optional: a bus
   * without it shares no invite-only rooms.
   */
  onChange?(listener: (room: string) => void): void;
  /** The fingerprints of the members of `room` connected to other relays. */
  online(room: string): Promise<Set<string>>;
  /**
   * Hands `envelope`, just delivered on this relay to `member`'s sessions,
   * to the other relays where `member` is attached too, whose buses pass it
   * to the `deliver` given to {@linkcode RoomBus.attach}: a member
   * connected to two relays gets every post on both. Live only (nothing is
   * kept for a relay the member has left); optional for a bus of one.
   */
  mirror?(room: string, member: StoredMember, envelope: Uint8Array): void;
}
