/**
 * Rooms shared by the relays of a cluster, in NATS JetStream: the
 * {@linkcode RoomBackend} and {@linkcode RoomBus} a clustered
 * {@linkcode ChatRelay} uses.
 *
 * - Members: one key-value entry per room (`hex(room)` in `ovtp_rooms`),
 *   the same list as a relay's members.json, changed by compare-and-set so
 *   that two relays adding members at once both count. An invite-only
 *   room's entry also holds its signed log (members.ts), so that a change
 *   appended on one relay and a join on another cannot both win; the relay
 *   that appends a change tells the others on `ovtp.presence.<hex(room)>`,
 *   and each hands the room's new changes to its own members.
 * - Kept envelopes: published to `ovtp.q.<hex(room)>.<key hash>` in a
 *   work-queue stream; the relay a member is connected to reads them through
 *   the durable consumer of that member and room, and acks each once it is
 *   handed to the member's sessions: it is then removed. An envelope handed
 *   over but not acked (the relay was killed) is offered again, to whichever
 *   relay the member is on, after the consumer's ack wait: the client drops
 *   the copy by envelope id.
 * - A member connected to several relays: the relay that delivers an
 *   envelope to the member's sessions (a post made there, or one read from
 *   the queue) also publishes it on `ovtp.live.<hex(room)>.<key hash>`,
 *   which every other relay where the member is attached hands to its
 *   sessions (core NATS, at most once: it is for sessions live now).
 * - Presence: `hex(room).hex(fingerprint).<relay id>` in `ovtp_presence`,
 *   renewed while the member is connected and expiring otherwise; joins and
 *   leaves are also published on `ovtp.presence.<hex(room)>` for relays to
 *   tell their members at once.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { ConsumerMessages } from "@nats-io/jetstream";
import type { Subscription } from "@nats-io/transport-node";
import { fromHex, fromUtf8, toHex, utf8 } from "../bytes.ts";
import { ROOM_PATTERN } from "../services/chat/chat_messages.ts";
import type { Member } from "../services/chat/chat_messages.ts";
import type { RoomBackend, RoomBus } from "../services/chat/room_bus.ts";
import {
  type AddMemberOptions,
  kindMismatch,
  type StoredMember,
} from "../services/chat/room_store.ts";
import { MAX_CHANGES } from "../services/chat/room_log.ts";
import { OvtpError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { admitMember, encodeRoom, parseMembers, parseRoom } from "./members.ts";
import {
  LIVE_SUBJECTS,
  type NatsCluster,
  PRESENCE_SUBJECTS,
  PRESENCE_TTL_MS,
  QUEUE_STREAM,
  QUEUE_SUBJECTS,
  queueConsumer,
} from "./nats_cluster.ts";

/** Bounds of shared rooms (the same defaults as {@linkcode RoomStoreOptions}). */
export interface NatsRoomsOptions {
  /** Members of one room. @default 256 */
  maxMembers?: number;
  /** A member who has not joined for this long, and is not here, is removed. @default 30 days */
  maxIdleMs?: number;
  /** Rooms in the cluster. @default 1024 */
  maxRooms?: number;
  /** Rooms one key may be a member of. @default 64 */
  maxRoomsPerKey?: number;
}

type PresenceListener = (room: string, event: "join" | "leave", member: Member) => void;
type ChangeListener = (room: string) => void;

/** How long a join waits for the list of a room's members on other relays. */
const ONLINE_LISTING_MS = 3_000;
/** Reads of a changed room's entry until a replica has the change, and the wait between them. */
const CAUGHT_UP_TRIES = 20;
const CAUGHT_UP_WAIT_MS = 100;

/** See the module. */
export class NatsRooms implements RoomBackend, RoomBus {
  readonly #cluster: NatsCluster;
  readonly #logger: Logger;
  readonly #maxMembers: number;
  readonly #maxIdleMs: number;
  readonly #maxRooms: number;
  readonly #maxRoomsPerKey: number;
  /** This relay, in presence entries and messages. */
  readonly #relayId = toHex(crypto.getRandomValues(new Uint8Array(8)));
  /** room + fingerprint → the consumer reading that member's envelopes here. */
  readonly #attached = new Map<string, ConsumerMessages>();
  /** room + fingerprint → the subscription to what other relays delivered to that member. */
  readonly #mirrored = new Map<string, Subscription>();
  /** presence key → its value, renewed while here. */
  readonly #present = new Map<string, string>();
  readonly #listeners: PresenceListener[] = [];
  readonly #changeListeners: ChangeListener[] = [];
  #subscribed = false;

  /** Shares rooms through `cluster`. */
  constructor(cluster: NatsCluster, logger: Logger, options: NatsRoomsOptions = {}) {
    this.#cluster = cluster;
    this.#logger = logger;
    this.#maxMembers = options.maxMembers ?? 256;
    this.#maxIdleMs = options.maxIdleMs ?? 30 * 24 * 3600_000;
    this.#maxRooms = options.maxRooms ?? 1024;
    this.#maxRoomsPerKey = options.maxRoomsPerKey ?? 64;
    cluster.onReady(() => this.#ready());
    if (cluster.connected) this.#ready();
    const renewing = setInterval(() => this.#renew(), PRESENCE_TTL_MS / 3);
    Deno.unrefTimer(renewing);
  }

  members(room: string): Promise<StoredMember[]> {
    return nats(async () => {
      const entry = await this.#cluster.state().rooms.get(roomKey(room));
      return parseMembers(entry).map(({ name, display, fingerprint, key }) => ({
        name,
        display,
        fingerprint,
        key,
      }));
    });
  }

  addMember(
    room: string,
    member: StoredMember,
    options: AddMemberOptions = {},
  ): Promise<string | undefined> {
    return nats(async () => {
      const { rooms, jsm } = this.#cluster.state();
      // Another relay may change the list between our read and our write:
      // the write then fails, and the change is made again on the new list.
      for (let attempt = 0; attempt < 20; attempt++) {
        const entry = await rooms.get(roomKey(room));
        const { members: current, changes } = parseRoom(entry);
        const exists = entry?.operation === "PUT";
        const mismatch = exists &&
          kindMismatch(room, changes !== undefined, options.inviteOnly ?? false);
        if (mismatch) return mismatch;
        const bound = current.some((m) => m.fingerprint === member.fingerprint)
          ? undefined
          : await this.#roomBound(entry === null, member.fingerprint);
        if (bound) return bound;
        const admitted = admitMember(current, member, {
          now: Date.now(),
          maxMembers: this.#maxMembers,
          maxIdleMs: this.#maxIdleMs,
          online: options.online ?? (() => false),
          revoked: options.revoked,
        });
        if (typeof admitted === "string") return admitted;
        // A new room is created of the kind asked, with an empty log if invite-only.
        const value = encodeRoom({
          members: admitted.members,
          changes: exists ? changes : options.inviteOnly ? [] : undefined,
        });
        try {
          if (entry) await rooms.update(roomKey(room), value, entry.revision);
          else await rooms.create(roomKey(room), value);
        } catch (error) {
          if (isConflict(error)) continue;
          throw error;
        }
        for (const gone of admitted.removed) {
          await jsm.streams.purge(QUEUE_STREAM, { filter: queueSubject(room, gone.key) });
        }
        return undefined;
      }
      throw new OvtpError("network", `Cannot update room "${room}": too many changes at once`);
    });
  }

  changes(room: string): Promise<Uint8Array[] | undefined> {
    return nats(async () =>
      parseRoom(await this.#cluster.state().rooms.get(roomKey(room))).changes
    );
  }

  /**
   * Appends `change` when the room's log still has `count` changes, by
   * compare-and-set on the room's entry (a join changing the list meanwhile
   * only makes it try again), then tells the other relays.
   */
  appendChange(room: string, change: Uint8Array, count: number): Promise<boolean> {
    return nats(async () => {
      const { rooms, nc } = this.#cluster.state();
      for (let attempt = 0; attempt < 20; attempt++) {
        const entry = await rooms.get(roomKey(room));
        const { members, changes } = parseRoom(entry);
        if (!entry || !changes || changes.length !== count || count >= MAX_CHANGES) return false;
        try {
          await rooms.update(
            roomKey(room),
            encodeRoom({ members, changes: [...changes, change] }),
            entry.revision,
          );
        } catch (error) {
          if (isConflict(error)) continue;
          throw error;
        }
        const body = JSON.stringify({ relay: this.#relayId, event: "change", length: count + 1 });
        nc.publish(`${PRESENCE_SUBJECTS}.${toHex(utf8(room))}`, body);
        return true;
      }
      throw new OvtpError("network", `Cannot update room "${room}": too many changes at once`);
    });
  }

  /**
   * Why a newcomer cannot join: the cluster's room count (for a new room)
   * or the rooms the key is already in, counted over every room's entry.
   * Joins of new members are rare next to posts, and with at most 1024
   * rooms one scan is cheap; relays racing may each admit one more than
   * the bound, never more.
   */
  async #roomBound(newRoom: boolean, fingerprint: string): Promise<string | undefined> {
    const { rooms } = this.#cluster.state();
    let count = 0;
    let mine = 0;
    for await (const key of await rooms.keys()) {
      const entry = await rooms.get(key);
      if (entry?.operation !== "PUT") continue; // Deleted, or gone meanwhile.
      count++;
      if (parseMembers(entry).some((m) => m.fingerprint === fingerprint)) mine++;
    }
    if (newRoom && count >= this.#maxRooms) {
      return `This server has too many chat rooms (${this.#maxRooms})`;
    }
    if (mine >= this.#maxRoomsPerKey) {
      return `Your key is a member of too many chat rooms (${this.#maxRoomsPerKey})`;
    }
    return undefined;
  }

  enqueue(room: string, key: string, envelope: Uint8Array): Promise<void> {
    // Resolves once JetStream has stored it: what a relay accepted survives the relay.
    return nats(async () => {
      await this.#cluster.state().js.publish(queueSubject(room, key), envelope);
    });
  }

  /** Nothing: {@linkcode NatsRooms.attach} delivers what was kept. */
  takeQueued(): Promise<Uint8Array[]> {
    return Promise.resolve([]);
  }

  attach(
    room: string,
    member: StoredMember,
    deliver: (envelope: Uint8Array) => Promise<void>,
  ): Promise<void> {
    return nats(async () => {
      const { js, jsm, presence } = this.#cluster.state();
      const name = `q_${toHex(utf8(room))}_${keyHash(member.key)}`;
      await jsm.consumers.add(QUEUE_STREAM, queueConsumer(name, queueSubject(room, member.key)));
      const messages = await (await js.consumers.get(QUEUE_STREAM, name)).consume({
        max_messages: 64,
      });
      const attached = attachKey(room, member);
      this.#attached.get(attached)?.stop();
      this.#attached.set(attached, messages);
      this.#pump(messages, deliver, room, member);
      this.#mirrored.get(attached)?.unsubscribe();
      this.#mirrored.set(
        attached,
        this.#cluster.state().nc.subscribe(liveSubject(room, member.key), {
          callback: (error, message) => {
            // Gone meanwhile from this relay, or a session failed: it was live-only.
            if (!error) deliver(message.data).catch(() => {});
          },
        }),
      );
      const key = this.#presenceKey(room, member.fingerprint);
      const value = JSON.stringify(member);
      this.#present.set(key, value);
      await presence.put(key, value);
    });
  }

  async detach(room: string, member: StoredMember): Promise<void> {
    const key = attachKey(room, member);
    this.#attached.get(key)?.stop();
    this.#attached.delete(key);
    this.#mirrored.get(key)?.unsubscribe();
    this.#mirrored.delete(key);
    const presenceKey = this.#presenceKey(room, member.fingerprint);
    this.#present.delete(presenceKey);
    // Unreachable now: the entry expires by itself.
    if (this.#cluster.connected) {
      await this.#cluster.state().presence.delete(presenceKey).catch(() => {});
    }
  }

  announce(room: string, event: "join" | "leave", member: Member): Promise<void> {
    return nats(() => {
      const body = JSON.stringify({ relay: this.#relayId, event, member });
      this.#cluster.state().nc.publish(`${PRESENCE_SUBJECTS}.${toHex(utf8(room))}`, body);
      return Promise.resolve();
    });
  }

  onPresence(listener: PresenceListener): void {
    this.#listeners.push(listener);
  }

  onChange(listener: ChangeListener): void {
    this.#changeListeners.push(listener);
  }

  online(room: string): Promise<Set<string>> {
    return nats(async () => {
      const online = new Set<string>();
      const keys = await this.#cluster.state().presence.keys(`${toHex(utf8(room))}.*.*`);
      // A listing that does not end is cut short, so that a join never hangs
      // on it: @nats-io/kv ends one on its consumer's idle heartbeat when the
      // keys it counted expire before they are read (suspected in a cluster
      // test's join that waited over 20 s once).
      let cut = false;
      const timer = setTimeout(() => {
        cut = true;
        keys.stop();
      }, ONLINE_LISTING_MS);
      try {
        for await (const key of keys) {
          const [, fingerprint, relay] = key.split(".");
          if (relay !== this.#relayId) online.add(fromUtf8(fromHex(fingerprint)));
        }
      } finally {
        clearTimeout(timer);
      }
      if (cut) {
        this.#logger.warn(
          `cluster: the members of room ${room} on other relays were not all listed within ${ONLINE_LISTING_MS} ms`,
        );
      }
      return online;
    });
  }

  /** Hands an envelope delivered here to the other relays `member` is connected to. */
  mirror(room: string, member: StoredMember, envelope: Uint8Array): void {
    if (!this.#cluster.connected) return; // Live-only: nothing to keep.
    try {
      this.#cluster.state().nc.publish(liveSubject(room, member.key), envelope);
    } catch {
      // The connection went away meanwhile.
    }
  }

  /** Stops every consumer (the relay is stopping). */
  close(): void {
    for (const messages of this.#attached.values()) messages.stop();
    this.#attached.clear();
    for (const subscription of this.#mirrored.values()) subscription.unsubscribe();
    this.#mirrored.clear();
  }

  /** Hands each envelope to the member's sessions, then acks it; offered again if that failed. */
  async #pump(
    messages: ConsumerMessages,
    deliver: (envelope: Uint8Array) => Promise<void>,
    room: string,
    member: StoredMember,
  ) {
    for await (const message of messages) {
      try {
        await deliver(message.data);
        message.ack();
      } catch {
        message.nak(1000);
        continue;
      }
      this.mirror(room, member, message.data);
    }
  }

  #presenceKey(room: string, fingerprint: string): string {
    return `${toHex(utf8(room))}.${toHex(utf8(fingerprint))}.${this.#relayId}`;
  }

  /** (Re)connected: listens to presence (once) and puts this relay's entries back. */
  #ready(): void {
    if (!this.#subscribed) {
      this.#subscribed = true;
      this.#cluster.state().nc.subscribe(`${PRESENCE_SUBJECTS}.>`, {
        callback: (_error, message) => this.#heard(message.subject, message.data),
      });
    }
    this.#renew();
  }

  #renew(): void {
    if (!this.#cluster.connected) return;
    const { presence } = this.#cluster.state();
    for (const [key, value] of this.#present) {
      presence.put(key, value).catch((error) =>
        this.#logger.warn(`cluster: cannot renew presence: ${(error as Error).message}`)
      );
    }
  }

  /**
   * Tells the listeners of a change that made `room`'s log `length` long,
   * once this relay reads it so: a NATS cluster may answer a read from a
   * replica that has not caught up yet (direct get), and a listener that
   * read the older log would send its members nothing, and never again.
   */
  async #changed(room: string, length: number): Promise<void> {
    // Only a room with members here is worth the reads: the relay ignores the others.
    const here = [...this.#attached.keys()].some((key) => key.startsWith(`${room}\n`));
    for (let attempt = 0; here && attempt < CAUGHT_UP_TRIES; attempt++) {
      const { changes } = parseRoom(await this.#cluster.state().rooms.get(roomKey(room)));
      if (!changes || changes.length >= length) break;
      await new Promise((resolve) => setTimeout(resolve, CAUGHT_UP_WAIT_MS));
    }
    for (const listener of this.#changeListeners) listener(room);
  }

  /**
   * A presence message from another relay (a join, a leave, or a change
   * appended to an invite-only room's log), checked before the relay sees it.
   */
  #heard(subject: string, data: Uint8Array): void {
    let room, body;
    try {
      room = fromUtf8(fromHex(subject.slice(PRESENCE_SUBJECTS.length + 1)));
      body = JSON.parse(fromUtf8(data));
    } catch {
      return;
    }
    if (!ROOM_PATTERN.test(room) || body?.relay === this.#relayId) return;
    const { event, member } = body;
    if (event === "change") {
      const { length } = body;
      if (Number.isInteger(length) && length > 0 && length <= MAX_CHANGES) {
        this.#changed(room, length).catch((error) =>
          this.#logger.warn(`cluster: cannot read room ${room}: ${(error as Error).message}`)
        );
      }
      return;
    }
    if ((event !== "join" && event !== "leave") || !isMember(member)) return;
    for (const listener of this.#listeners) listener(room, event, member);
  }
}

/** The subject of what is kept for the member with `key` (its public line) in `room`. */
export function queueSubject(room: string, key: string): string {
  return `${QUEUE_SUBJECTS}.${toHex(utf8(room))}.${keyHash(key)}`;
}

/** The subject of what one relay delivered to the member with `key` in `room`. */
function liveSubject(room: string, key: string): string {
  return `${LIVE_SUBJECTS}.${toHex(utf8(room))}.${keyHash(key)}`;
}

function keyHash(key: string): string {
  return createHash("sha256").update(utf8(key)).digest("hex").slice(0, 32);
}

function roomKey(room: string): string {
  return toHex(utf8(room));
}

function attachKey(room: string, member: StoredMember): string {
  return `${room}\n${member.fingerprint}`;
}

function isMember(value: unknown): value is Member {
  const m = value as Record<string, unknown>;
  return typeof m === "object" && m !== null && typeof m.name === "string" &&
    typeof m.display === "string" && typeof m.fingerprint === "string" &&
    typeof m.key === "string" && typeof m.online === "boolean";
}

/** A compare-and-set that lost to another relay's write. */
function isConflict(error: unknown): boolean {
  return /wrong last sequence|key exists/i.test((error as Error).message ?? "");
}

/** Runs NATS work; the client's own errors become an OvtpError "network". */
async function nats<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof OvtpError) throw error;
    throw new OvtpError("network", `The chat cluster (NATS) failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
