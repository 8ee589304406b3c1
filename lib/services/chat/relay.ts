/**
 * The chat relay: rooms created on first join, presence, and forwarding of
 * envelopes to the members they are addressed to, kept on disk for members
 * who are offline. The relay checks an envelope's routing data (its sender
 * is the connected client, its context is the room) but cannot read it.
 *
 * @module
 */

import { toBase64Url, toHex } from "../../bytes.ts";
import { EnvelopeError, parseEnvelope } from "../../envelope/envelope.ts";
import { OvtpError } from "../../errors.ts";
import {
  fingerprint,
  formatPublicKey,
  parsePublicKey,
  samePublicKey,
} from "../../identity/keys.ts";
import type { Logger } from "../../logger.ts";
import { decodeJson, encodeJson, type Message, MessageError } from "../../channel/messages.ts";
import type { Peer } from "../../identity/peer.ts";
import { ChatMessageType, checkJoin, type Member, roomContext } from "./chat_messages.ts";
import type { RoomBackend, RoomBus } from "./room_bus.ts";
import type { StoredMember } from "./room_store.ts";
import { type LogMember, RoomLog, RoomLogError } from "./room_log.ts";
import { type MemberAuthorizer, MemberGrants } from "./member_grants.ts";

/** The largest envelope the relay forwards. */
export const MAX_CHAT_ENVELOPE = 1024 * 1024;

interface LiveSession {
  id: number;
  peer: Peer;
  display: string;
  send: (message: Message) => Promise<void>;
  /** Its server's authorizer's word on the room's members; none: all stay. */
  grants?: MemberGrants;
}

/**
 * The rooms of one server, shared by all its connections: give one to
 * {@linkcode serve} as {@linkcode ServeOptions.chat} to relay chat. A
 * message for a member who is offline is kept in the {@linkcode RoomStore}
 * and delivered when it joins again.
 *
 * @example A message kept for a member who is offline
 * ```ts
 * import {
 *   type ChatEvents,
 *   type ChatMessage,
 *   ChatRelay,
 *   ChatSession,
 *   generateIdentity,
 *   type Identity,
 *   OvtpClient,
 *   RoomStore,
 *   samePublicKey,
 *   serve,
 *   SILENT_LOGGER,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const alice = await generateIdentity();
 * const bob = await generateIdentity();
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: (key) =>
 *     Promise.resolve({ name: samePublicKey(key, alice.publicKey) ? "alice" : "bob" }),
 *   handler: () => ({}),
 *   chat: new ChatRelay(new RoomStore(dir), SILENT_LOGGER),
 * });
 * const connect = (identity: Identity) =>
 *   OvtpClient.connect({
 *     hostname: "127.0.0.1",
 *     port: server.addr.port,
 *     identity,
 *     verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 *   });
 * const quiet: ChatEvents = { onMessage() {}, onPresence() {}, onDropped() {} };
 *
 * // Bob joins once, so the room knows him, and goes offline.
 * const bobLeft = Promise.withResolvers<void>();
 * const aliceClient = await connect(alice);
 * const room = await ChatSession.join(aliceClient, alice, { room: "ops", display: "Alice" }, {
 *   ...quiet,
 *   onPresence: (event) => event === "leave" && bobLeft.resolve(),
 * });
 * const first = await connect(bob);
 * await ChatSession.join(first, bob, { room: "ops", display: "Bob" }, quiet);
 * first.close();
 * await bobLeft.promise;
 *
 * assert.equal(await room.send("see you tomorrow"), 1);
 *
 * // Back online: the relay delivers what it kept.
 * const again = await connect(bob);
 * const received = Promise.withResolvers<ChatMessage>();
 * await ChatSession.join(again, bob, { room: "ops", display: "Bob" }, {
 *   ...quiet,
 *   onMessage: (message) => received.resolve(message),
 * });
 * assert.equal((await received.promise).text, "see you tomorrow");
 * aliceClient.close();
 * again.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ChatRelay {
  readonly #store: RoomBackend;
  readonly #logger: Logger;
  readonly #bus: RoomBus | undefined;
  /** room → fingerprint → live sessions */
  readonly #live = new Map<string, Map<string, Set<LiveSession>>>();
  /** room → X25519 key (hex) → member */
  readonly #members = new Map<string, Map<string, StoredMember>>();
  /** invite-only room with someone in it → its log, as checked */
  readonly #logs = new Map<string, RoomLog>();
  /**
   * room → the last of its changes and Joined logs, which run one at a
   * time per room (see #serialized): rooms never wait for each other.
   */
  readonly #changing = new Map<string, Promise<unknown>>();
  /** session in an invite-only room → how many changes of the room's log it was sent */
  readonly #logSent = new WeakMap<LiveSession, number>();
  /** One cache of answers per authorizer (one per server). */
  readonly #grants = new WeakMap<MemberAuthorizer, MemberGrants>();

  /**
   * Relays through `store`, logging to `logger` (sizes and fingerprints
   * only); with `bus`, shares the rooms with the other relays on it.
   */
  constructor(store: RoomBackend, logger: Logger, bus?: RoomBus) {
    this.#store = store;
    this.#logger = logger;
    this.#bus = bus;
    bus?.onPresence((room, event, member) => this.#remotePresence(room, event, member));
    bus?.onChange?.((room) => this.#remoteChange(room));
  }

  /**
   * @internal The chat side of one connection (the server calls it). With
   * `authorize`, the server's authorizer, members it no longer allows in a
   * room leave it when someone joins, and nothing is kept for them.
   */
  connect(
    peer: Peer,
    send: (message: Message) => Promise<void>,
    authorize?: MemberAuthorizer,
  ): ChatConnection {
    let grants: MemberGrants | undefined;
    if (authorize) {
      grants = this.#grants.get(authorize);
      if (!grants) this.#grants.set(authorize, grants = new MemberGrants(authorize));
    }
    return new ChatConnection(this, peer, send, grants);
  }

  /**
   * @internal Joins a live session to a room and tells everyone; resolves
   * with the reason when a bound of the {@linkcode RoomStore} refuses it.
   */
  async join(room: string, session: LiveSession, inviteOnly = false): Promise<string | undefined> {
    const { peer } = session;
    if (inviteOnly && (!this.#store.changes || (this.#bus && !this.#bus.onChange))) {
      return "This server's relays share rooms (a cluster), where invite-only rooms are not kept yet";
    }
    const key = formatPublicKey(peer.key);
    const member = {
      name: peer.name,
      display: session.display,
      fingerprint: peer.fingerprint,
      key,
    };
    // A member removed as idle or revoked while the room is in use stays in
    // #members (routable) until the room empties: clients that listed it can
    // still post. Nothing is kept for a revoked one (see post()).
    const revoked = session.grants
      ? await session.grants.revoked(
        room,
        (await this.#store.members(room)).filter((m) => m.fingerprint !== peer.fingerprint),
      )
      : new Set<string>();
    const refusal = await this.#store.addMember(room, member, {
      inUse: (r) => this.#live.has(r),
      online: (fp) => (this.#live.get(room)?.get(fp)?.size ?? 0) > 0,
      inviteOnly,
      revoked: (fp) => revoked.has(fp),
    });
    if (revoked.size > 0) {
      this.#logger.info(`chat: ${revoked.size} member(s) no longer allowed left room ${room}`);
    }
    if (refusal) {
      this.#logger.info(`chat: ${peer.name} refused in room ${room}: ${refusal}`, {
        fingerprint: peer.fingerprint,
      });
      return refusal;
    }
    const online = this.#room(room);
    (await this.#membersByKey(room)).set(toHex(peer.key.x25519), member);
    const wasOnline = (online.get(peer.fingerprint)?.size ?? 0) > 0;
    if (!online.has(peer.fingerprint)) online.set(peer.fingerprint, new Set());
    online.get(peer.fingerprint)!.add(session);
    const elsewhere = await this.#bus?.online(room) ?? new Set<string>();
    const members = (await this.#store.members(room)).map((m) =>
      this.#describe(room, m, elsewhere)
    );
    const joined = (changes?: Uint8Array[]) =>
      session.send({
        type: ChatMessageType.Joined,
        id: session.id,
        body: encodeJson(
          changes ? { room, members, changes: changes.map(toBase64Url) } : { room, members },
        ),
      });
    if (inviteOnly) {
      // The log goes as stored (each client checks it), in turn with the
      // changes being sent: from here on the session gets every later one once.
      await this.#serialized(room, async () => {
        const changes = await this.#store.changes!(room) ?? [];
        await joined(changes);
        this.#logSent.set(session, changes.length);
      });
    } else {
      await joined();
    }
    const queued = await this.#store.takeQueued(room, key);
    for (const envelope of queued) {
      await session.send({ type: ChatMessageType.Deliver, id: session.id, body: envelope });
    }
    if (!wasOnline) {
      await this.#bus?.attach(room, member, (envelope) => this.#deliver(room, member, envelope));
    }
    this.#logger.info(`chat: ${peer.name} joined room ${room}`, {
      fingerprint: peer.fingerprint,
      delivered: queued.length,
    });
    if (!wasOnline) await this.#announce(room, "join", session);
  }

  /** @internal Removes a live session and tells the others if it was the member's last. */
  async leave(room: string, session: LiveSession): Promise<void> {
    const online = this.#room(room);
    const sessions = online.get(session.peer.fingerprint);
    if (!sessions?.delete(session)) return;
    if (sessions.size > 0) return;
    online.delete(session.peer.fingerprint);
    if (online.size === 0) {
      // Nobody left in the room: its maps go, and are rebuilt on the next join.
      this.#live.delete(room);
      this.#members.delete(room);
      this.#logs.delete(room);
    }
    this.#logger.info(`chat: ${session.peer.name} left room ${room}`, {
      fingerprint: session.peer.fingerprint,
    });
    await this.#bus?.detach(room, this.#stored(session));
    await this.#announce(room, "leave", session);
  }

  /** @internal Routes an envelope posted by `session` in `room`. */
  async post(room: string, session: LiveSession, envelope: Uint8Array): Promise<string | void> {
    if (envelope.length > MAX_CHAT_ENVELOPE) {
      return `The message is larger than ${MAX_CHAT_ENVELOPE} bytes`;
    }
    let header;
    try {
      header = parseEnvelope(envelope);
    } catch (error) {
      if (error instanceof EnvelopeError) return error.message;
      throw error;
    }
    if (!samePublicKey(header.sender, session.peer.key)) {
      return "The envelope's sender is not the connected client";
    }
    if (header.context !== roomContext(room)) return `The envelope is not for room "${room}"`;
    let members = await this.#membersByKey(room);
    if (this.#bus && header.recipients.some((r) => !members.has(toHex(r)))) {
      // A member who joined through another relay a moment ago, or one
      // added there to an invite-only room's log: read both again.
      this.#members.delete(room);
      this.#logs.delete(room);
      members = await this.#membersByKey(room);
    }
    // Every stanza names a distinct member, checked before anything is sent:
    // a post reaches each member at most once, and costs at most one
    // delivery or one append per member.
    const recipients: StoredMember[] = [];
    const named = new Set<string>();
    for (const recipient of header.recipients) {
      const hex = toHex(recipient);
      const member = members.get(hex);
      if (!member) {
        return `The envelope names a key that is not a member of room "${room}" (X25519 ${hex})`;
      }
      if (named.has(hex)) {
        return `The envelope names the member ${member.fingerprint} more than once`;
      }
      named.add(hex);
      if (member.fingerprint !== session.peer.fingerprint) recipients.push(member);
    }
    const online = this.#room(room);
    let delivered = 0;
    let kept = 0;
    const sending: Promise<void>[] = [];
    const keeping: Promise<void>[] = [];
    for (const member of recipients) {
      const sessions = online.get(member.fingerprint);
      if (sessions && sessions.size > 0) {
        // Sent to all at once: one slow member does not delay the others.
        for (const live of sessions) {
          sending.push(
            live.send({ type: ChatMessageType.Deliver, id: live.id, body: envelope }).catch(
              () => {},
            ),
          );
        }
        this.#bus?.mirror?.(room, member, envelope);
        delivered++;
      } else {
        // Started together: a cluster's store waits one round trip for all.
        // A member the server no longer allows in the room gets nothing kept.
        keeping.push(
          this.#keep(room, member, envelope, session.grants).then((ok) => {
            if (ok) kept++;
          }),
        );
      }
    }
    // One await for both: a rejected append is never left without a handler.
    await Promise.all([...sending, ...keeping]);
    this.#logger.info(`chat: ${envelope.length} bytes in room ${room}`, {
      from: session.peer.fingerprint,
      delivered,
      kept,
    });
  }

  async #keep(
    room: string,
    member: StoredMember,
    envelope: Uint8Array,
    grants: MemberGrants | undefined,
  ): Promise<boolean> {
    if (grants && !(await grants.allowed(room, member))) return false;
    await this.#store.enqueue(room, member.key, envelope);
    return true;
  }

  /**
   * @internal Checks a membership change posted by `session` against the
   * room's log, appends it and sends it to everyone in the room (the poster
   * too: that is its acknowledgement); resolves with the reason when refused.
   * The relay checks only to keep its log valid: clients check again.
   */
  change(room: string, session: LiveSession, bytes: Uint8Array): Promise<string | void> {
    return this.#serialized(room, async () => {
      const log = await this.#log(room);
      if (!log) return `The room "${room}" is not invite-only`;
      const count = log.length;
      let change;
      try {
        change = await log.append(bytes);
      } catch (error) {
        if (error instanceof RoomLogError) return error.message;
        throw error;
      }
      if (!await this.#store.appendChange?.(room, bytes, count)) {
        this.#logs.delete(room); // Read again from disk on next use.
        return "The room's log changed meanwhile";
      }
      // A member added is routable at once, before it ever joins.
      const members = this.#members.get(room);
      const added = log.memberOf(change.subject);
      if (members && added) members.set(toHex(change.subject.x25519), logMember(added));
      this.#logger.info(`chat: change ${change.version} of room ${room}`, {
        from: session.peer.fingerprint,
      });
      await this.#sendChanges(room);
    });
  }

  /**
   * Runs `work` after every change and Joined log of `room` before it: a
   * change is checked against the log it extends, and every session gets
   * each change once, after its Joined.
   */
  #serialized<T>(room: string, work: () => Promise<T>): Promise<T> {
    const next = (this.#changing.get(room) ?? Promise.resolve()).then(work);
    const settled = next.then(() => {}, () => {});
    this.#changing.set(room, settled);
    // Forgotten once nothing more waits in it: a map of idle rooms would only grow.
    settled.then(() => {
      if (this.#changing.get(room) === settled) this.#changing.delete(room);
    });
    return next;
  }

  /**
   * Sends every session in the invite-only `room` the changes of its log
   * that it was not sent yet, in order: the one just appended here, and
   * those appended through other relays of a cluster (the poster too: that
   * is its acknowledgement). A session not joined yet gets the log with Joined.
   */
  async #sendChanges(room: string): Promise<void> {
    const changes = await this.#store.changes?.(room) ?? [];
    for (const sessions of this.#live.get(room)?.values() ?? []) {
      for (const live of sessions) {
        const sent = this.#logSent.get(live);
        if (sent === undefined) continue;
        for (const body of changes.slice(sent)) {
          await live.send({ type: ChatMessageType.Change, id: live.id, body }).catch(() => {});
        }
        this.#logSent.set(live, Math.max(sent, changes.length));
      }
    }
  }

  /**
   * Another relay appended a change to `room`'s log: the log and members
   * kept here are read again on next use, and the members here get the change.
   */
  #remoteChange(room: string): void {
    if (!this.#live.has(room)) return;
    this.#serialized(room, async () => {
      this.#logs.delete(room);
      this.#members.delete(room);
      await this.#sendChanges(room);
    }).catch((error) =>
      this.#logger.warn(`chat: cannot read the log of room ${room}: ${(error as Error).message}`)
    );
  }

  /**
   * The log of an invite-only room (undefined for an ordinary one), read
   * from disk once while the room is in use. The changes on disk were
   * checked when appended, so only their order and rules are replayed.
   */
  async #log(room: string): Promise<RoomLog | undefined> {
    const cached = this.#logs.get(room);
    if (cached) return cached;
    const changes = await this.#store.changes?.(room);
    if (!changes) return undefined;
    const log = new RoomLog(room);
    try {
      for (const change of changes) await log.append(change, false);
    } catch (error) {
      if (!(error instanceof RoomLogError)) throw error;
      throw new OvtpError("io", `Cannot read the log of room "${room}": ${error.message}`);
    }
    if (this.#live.has(room)) this.#logs.set(room, log);
    return log;
  }

  /**
   * The members of a room by the hex of their X25519 key, kept in memory
   * (refreshed on each join) so that routing a post costs one lookup per
   * recipient rather than a disk read and a key parse per member.
   */
  async #membersByKey(room: string): Promise<Map<string, StoredMember>> {
    let members = this.#members.get(room);
    if (!members) {
      members = new Map();
      for (const member of await this.#store.members(room)) {
        // Routing goes by the fingerprint of the stored key, not by the
        // stored fingerprint field, which only a damaged file could make differ.
        const { key } = parsePublicKey(member.key);
        members.set(toHex(key.x25519), { ...member, fingerprint: await fingerprint(key) });
      }
      // In an invite-only room, every member of the log can be sealed to,
      // joined or not: the relay keeps what is sent to it until it joins.
      for (const member of (await this.#log(room))?.members ?? []) {
        const hex = toHex(member.key.x25519);
        if (!members.has(hex)) members.set(hex, logMember(member));
      }
      // Joins that arrive together each read the store; the first map kept
      // wins. A later read must not replace it: a member who joined while
      // this one read has already added itself there, and would be lost.
      const kept = this.#members.get(room);
      if (kept) return kept;
      this.#members.set(room, members);
    }
    return members;
  }

  #room(room: string): Map<string, Set<LiveSession>> {
    let online = this.#live.get(room);
    if (!online) {
      online = new Map();
      this.#live.set(room, online);
    }
    return online;
  }

  #describe(room: string, member: StoredMember, elsewhere: Set<string>): Member {
    const online = (this.#live.get(room)?.get(member.fingerprint)?.size ?? 0) > 0 ||
      elsewhere.has(member.fingerprint);
    return { ...member, online };
  }

  #stored(session: LiveSession): StoredMember {
    const { name, fingerprint } = session.peer;
    return { name, display: session.display, fingerprint, key: formatPublicKey(session.peer.key) };
  }

  /** Hands an envelope the bus carried to `member`'s sessions here; rejects when there are none. */
  async #deliver(room: string, member: StoredMember, envelope: Uint8Array): Promise<void> {
    const sessions = [...this.#live.get(room)?.get(member.fingerprint) ?? []];
    if (sessions.length === 0) throw new Error(`${member.fingerprint} is not in room ${room} here`);
    await Promise.all(
      sessions.map((live) =>
        live.send({ type: ChatMessageType.Deliver, id: live.id, body: envelope })
      ),
    );
  }

  /** Presence another relay announced: known at once as a member here, and told to the room. */
  #remotePresence(room: string, event: "join" | "leave", member: Member): void {
    const online = this.#live.get(room);
    if (!online) return;
    let key;
    try {
      key = parsePublicKey(member.key).key;
    } catch {
      return; // Not from a relay of ours.
    }
    this.#members.get(room)?.set(toHex(key.x25519), {
      name: member.name,
      display: member.display,
      fingerprint: member.fingerprint,
      key: member.key,
    });
    this.#sendPresence(room, event, member);
  }

  async #announce(room: string, event: "join" | "leave", session: LiveSession) {
    const member: Member = { ...this.#stored(session), online: event === "join" };
    await this.#sendPresence(room, event, member);
    await this.#bus?.announce(room, event, member).catch((error) =>
      this.#logger.warn(`chat: cannot announce presence to the cluster: ${error.message}`)
    );
  }

  async #sendPresence(room: string, event: "join" | "leave", member: Member) {
    for (const [fingerprint, sessions] of this.#live.get(room) ?? []) {
      if (fingerprint === member.fingerprint) continue;
      for (const other of sessions) {
        await other.send({
          type: ChatMessageType.Presence,
          id: other.id,
          body: encodeJson({ event, member }),
        }).catch(() => {});
      }
    }
  }
}

/** A member of a room's log, as the relay routes to it. */
function logMember(member: LogMember): StoredMember {
  return {
    name: "",
    display: member.name,
    fingerprint: member.fingerprint,
    key: formatPublicKey(member.key),
  };
}

/** The chat sessions of one connection (a client may join several rooms). */
export class ChatConnection {
  readonly #relay: ChatRelay;
  readonly #peer: Peer;
  readonly #send: (message: Message) => Promise<void>;
  readonly #sessions = new Map<number, { room: string; session: LiveSession }>();
  readonly #grants: MemberGrants | undefined;

  /** Use {@linkcode ChatRelay.connect}. */
  constructor(
    relay: ChatRelay,
    peer: Peer,
    send: (message: Message) => Promise<void>,
    grants?: MemberGrants,
  ) {
    this.#relay = relay;
    this.#peer = peer;
    this.#send = send;
    this.#grants = grants;
  }

  /** Handles one chat message; throws MessageError for a protocol violation. */
  async handle(message: Message): Promise<void> {
    const entry = this.#sessions.get(message.id);
    switch (message.type) {
      case ChatMessageType.Join: {
        if (entry) throw new MessageError(`Chat session ${message.id} already joined`);
        if (this.#sessions.size >= 16) throw new MessageError("Too many chat sessions");
        const { room, display, inviteOnly } = checkJoin(decodeJson(message.body));
        const session: LiveSession = {
          id: message.id,
          peer: this.#peer,
          display,
          send: this.#send,
          grants: this.#grants,
        };
        this.#sessions.set(message.id, { room, session });
        const refusal = await unreachable(() => this.#relay.join(room, session, inviteOnly));
        if (refusal) {
          this.#sessions.delete(message.id);
          await this.#relay.leave(room, session);
          await this.#refuse(message.id, refusal.message, refusal.code);
        }
        return;
      }
      case ChatMessageType.Post: {
        if (!entry) throw new MessageError(`No chat session ${message.id}`);
        const refusal = await unreachable(() =>
          this.#relay.post(entry.room, entry.session, message.body)
        );
        if (refusal) await this.#refuse(message.id, refusal.message, refusal.code);
        return;
      }
      case ChatMessageType.Change: {
        if (!entry) throw new MessageError(`No chat session ${message.id}`);
        const refusal = await unreachable(() =>
          this.#relay.change(entry.room, entry.session, message.body)
        );
        if (refusal) await this.#refuse(message.id, refusal.message, refusal.code);
        return;
      }
      case ChatMessageType.Leave: {
        if (!entry) throw new MessageError(`No chat session ${message.id}`);
        this.#sessions.delete(message.id);
        return await this.#relay.leave(entry.room, entry.session);
      }
      default:
        throw new MessageError(`Unexpected chat message type ${message.type}`);
    }
  }

  async #refuse(id: number, reason: string, code = "refused"): Promise<void> {
    await this.#send({
      type: ChatMessageType.Refused,
      id,
      body: encodeJson({ code, message: reason }),
    });
  }

  /** Leaves every room, when the connection ends. */
  async close(): Promise<void> {
    for (const { room, session } of this.#sessions.values()) {
      await this.#relay.leave(room, session);
    }
    this.#sessions.clear();
  }
}

/**
 * Runs a join or a post; a backend that cannot be reached (a cluster's
 * NATS, kind "network") refuses it as "unavailable" instead of ending the
 * connection, so that the client hears why and may try again.
 */
async function unreachable(
  work: () => Promise<string | void | undefined>,
): Promise<{ code: string; message: string } | undefined> {
  try {
    const refusal = await work();
    return refusal ? { code: "refused", message: refusal } : undefined;
  } catch (error) {
    if (error instanceof OvtpError && error.kind === "network") {
      return { code: "unavailable", message: error.message };
    }
    throw error;
  }
}
