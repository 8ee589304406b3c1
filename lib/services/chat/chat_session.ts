/**
 * A client's membership of a chat room: joins through an {@linkcode OvtpClient},
 * seals each message for the other members with {@linkcode sealEnvelope},
 * and opens what the relay delivers, dropping (and reporting) anything
 * that fails verification.
 *
 * @module
 */

import { fromUtf8, utf8 } from "../../bytes.ts";
import type { OvtpClient } from "../../client/client.ts";
import {
  EnvelopeError,
  MAX_RECIPIENTS,
  openEnvelope,
  parseEnvelope,
  ReplayGuard,
  sealEnvelope,
} from "../../envelope/envelope.ts";
import { OvtpError } from "../../errors.ts";
import { fingerprint, type Identity, parsePublicKey, type PublicKey } from "../../identity/keys.ts";
import { decodeJson, encodeJson, type Message } from "../../channel/messages.ts";
import {
  ChatMessageType,
  checkJoined,
  checkPresence,
  type Member,
  roomContext,
} from "./chat_messages.ts";
import {
  type InviteOnlyOptions,
  Membership,
  type MembershipChange,
  type RoomMember,
} from "./membership.ts";
import { ChangeAction, RoomLogError } from "./room_log.ts";

/**
 * A message received in a room, verified, as
 * {@linkcode ChatEvents.onMessage} receives it.
 *
 * @example Formatting a message for display
 * ```ts
 * import type { ChatMessage } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function format(message: ChatMessage): string {
 *   const who = message.member?.display ?? message.fingerprint; // A member no longer listed.
 *   const time = new Date(message.timestamp).toISOString().slice(11, 16);
 *   return `[${time}] ${who}: ${message.text}`;
 * }
 *
 * const message: ChatMessage = {
 *   member: undefined,
 *   fingerprint: "SHA256:Ji9m4iVmfjZp5C2Ay1lqF3A4Ujd1Kc2R6u7Sg0fmN9c",
 *   text: "deploy done",
 *   timestamp: Date.UTC(2030, 0, 1, 9, 30),
 *   messageId: "00112233445566778899aabbccddeeff",
 * };
 * assert.equal(format(message), `[09:30] ${message.fingerprint}: deploy done`);
 * ```
 */
export interface ChatMessage {
  /** The sender, as the room knows it (undefined if it is no longer listed). */
  member: Member | undefined;
  /** The sender's fingerprint (from the verified envelope). */
  fingerprint: string;
  /** The text. */
  text: string;
  /** When the sender sent it (its clock), in ms since the epoch. */
  timestamp: number;
  /** The message id (hex). */
  messageId: string;
}

/**
 * What a chat session reports.
 *
 * @example Seeing a member come and go
 * ```ts
 * import {
 *   type ChatEvents,
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
 *
 * const seen: string[] = [];
 * const bobLeft = Promise.withResolvers<void>();
 * const events: ChatEvents = {
 *   onMessage: (message) => seen.push(`${message.member?.display}: ${message.text}`),
 *   onPresence: (event, member) => {
 *     seen.push(`${member.display} ${event}`);
 *     if (event === "leave") bobLeft.resolve();
 *   },
 *   onDropped: (fingerprint, reason) => seen.push(`dropped from ${fingerprint}: ${reason}`),
 * };
 * const aliceClient = await connect(alice);
 * await ChatSession.join(aliceClient, alice, { room: "ops", display: "Alice" }, events);
 *
 * const bobClient = await connect(bob);
 * const quiet: ChatEvents = { onMessage() {}, onPresence() {}, onDropped() {} };
 * const bobOptions = { room: "ops", display: "Bob" };
 * const bobSession = await ChatSession.join(bobClient, bob, bobOptions, quiet);
 * await bobSession.send("hi");
 * bobClient.close();
 * await bobLeft.promise;
 *
 * assert.deepEqual(seen, ["Bob join", "Bob: hi", "Bob leave"]);
 * aliceClient.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface ChatEvents {
  /** A verified message. */
  onMessage(message: ChatMessage): void;
  /**
   * A member came online or went offline (`member.fingerprint` computed
   * from its key by this client).
   */
  onPresence(event: "join" | "leave", member: Member): void;
  /** A delivered envelope failed verification and was not shown. */
  onDropped(claimedFingerprint: string, reason: string): void;
  /**
   * The relay said something this client refused or could not check: a
   * member whose listed fingerprint is not its key's (left out), a second
   * member list, a refused post. One line, from the relay's data: neutralize
   * it before printing.
   */
  onWarning?(message: string): void;
  /**
   * In an invite-only room: a change of its signed membership, verified
   * (fingerprints computed here). On joining, every change newer than
   * {@linkcode InviteOnlyOptions.seen} (all of them the first time).
   */
  onMembership?(change: MembershipChange): void;
}

/**
 * Options of {@linkcode ChatSession.join}. Room names are 1 to 64 letters,
 * digits, `.`, `_` or `-`.
 *
 * @example A key allowed in one room only
 * ```ts
 * import {
 *   type ChatEvents,
 *   ChatRelay,
 *   ChatSession,
 *   generateIdentity,
 *   type JoinOptions,
 *   OvtpClient,
 *   RoomStore,
 *   serve,
 *   SILENT_LOGGER,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice", options: { allow: ["chat:ops"] } }),
 *   handler: () => ({}),
 *   chat: new ChatRelay(new RoomStore(dir), SILENT_LOGGER),
 * });
 * const identity = await generateIdentity();
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity,
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * const events: ChatEvents = { onMessage() {}, onPresence() {}, onDropped() {} };
 *
 * const ops: JoinOptions = { room: "ops", display: "Alice (laptop)" };
 * const session = await ChatSession.join(client, identity, ops, events);
 * assert.equal(session.members[0].display, "Alice (laptop)");
 * await assert.rejects(
 *   ChatSession.join(client, identity, { room: "random", display: "Alice" }, events),
 *   /The server refused/,
 * );
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface JoinOptions {
  /** The room. */
  room: string;
  /** The display name to show others. */
  display: string;
  /**
   * Join (or create, when nobody did) an invite-only room: only the keys
   * its signed log names are sealed to (docs/protocol.md, "Invite-only rooms").
   * @default an ordinary room, whose members are whoever the relay lists
   */
  inviteOnly?: InviteOnlyOptions;
}

/**
 * A joined room. Messages are sealed on this side for the other members,
 * so the server relays them without being able to read them.
 *
 * @example Two members of a room
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
 * const bobClient = await connect(bob);
 * const received = Promise.withResolvers<ChatMessage>();
 * await ChatSession.join(bobClient, bob, { room: "ops", display: "Bob" }, {
 *   ...quiet,
 *   onMessage: (message) => received.resolve(message),
 * });
 * const aliceClient = await connect(alice);
 * const options = { room: "ops", display: "Alice" };
 * const session = await ChatSession.join(aliceClient, alice, options, quiet);
 * assert.deepEqual(session.members.map((m) => m.name).sort(), ["alice", "bob"]);
 *
 * assert.equal(await session.send("deploy done"), 1); // Sealed for one recipient: Bob.
 * const message = await received.promise;
 * assert.equal(message.text, "deploy done");
 * assert.equal(message.member?.display, "Alice");
 *
 * await session.leave();
 * aliceClient.close();
 * bobClient.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ChatSession {
  readonly #client: OvtpClient;
  readonly #identity: Identity;
  readonly #id: number;
  readonly #events: ChatEvents;
  readonly #replay = new ReplayGuard();
  /** computed fingerprint → member, in the order first listed */
  #members = new Map<string, Member>();
  /** computed fingerprint → the key it was computed from */
  #keys = new Map<string, PublicKey>();
  #joined = false;
  #fingerprint = "";
  #display = "";
  #pending: Promise<void> = Promise.resolve();
  /** Set in an invite-only room. */
  #membership: Membership | undefined;
  /** Keys the relay lists in an invite-only room without a signed addition: warned about once. */
  readonly #uninvited = new Set<string>();
  /** The room's name. */
  readonly room: string;

  private constructor(
    client: OvtpClient,
    identity: Identity,
    id: number,
    room: string,
    events: ChatEvents,
  ) {
    this.#client = client;
    this.#identity = identity;
    this.#id = id;
    this.room = room;
    this.#events = events;
  }

  /** Joins `room` and resolves with the session once the relay confirms. */
  static async join(
    client: OvtpClient,
    identity: Identity,
    options: JoinOptions,
    events: ChatEvents,
  ): Promise<ChatSession> {
    const link = client.link;
    const id = link.nextId();
    const session = new ChatSession(client, identity, id, options.room, events);
    session.#fingerprint = await fingerprint(identity.publicKey);
    session.#display = options.display;
    if (options.inviteOnly) {
      session.#membership = new Membership(options.room, identity, options.inviteOnly);
    }
    const joined = Promise.withResolvers<void>();
    link.subscribe(
      id,
      (message) => {
        // Deliveries are opened one after the other, so they show in order.
        session.#pending = session.#pending
          .then(() => session.#receive(message, joined))
          .catch((error) =>
            events.onDropped("the server", `Malformed chat message: ${(error as Error).message}`)
          );
      },
      (error) => joined.reject(error),
    );
    await link.send({
      type: ChatMessageType.Join,
      id,
      body: encodeJson({
        room: options.room,
        display: options.display,
        ...(options.inviteOnly ? { invite_only: true } : {}),
      }),
    });
    await joined.promise;
    // A member mostly waits for the others: the connection must outlive the
    // server's idle timeout, and a server gone quiet must show as lost.
    client.keepAlive();
    return session;
  }

  /**
   * The members, online or not, including this one. Each `fingerprint` is
   * computed from its `key` here; a member the relay listed with another
   * fingerprint is left out (and reported to {@linkcode ChatEvents.onWarning}).
   */
  get members(): Member[] {
    return [...this.#members.values()];
  }

  /**
   * Seals `text` for every other member (offline ones get it when they
   * return) and posts it. Resolves with the number of recipients.
   */
  async send(text: string): Promise<number> {
    // The keys this client checked, one per fingerprint: never a field the
    // relay chose, never the same key twice.
    const recipients = this.#membership?.recipients() ?? [...this.#keys]
      .filter(([fp]) => fp !== this.#fingerprint)
      .map(([, key]) => key);
    if (recipients.length === 0) return 0;
    const envelope = await sealEnvelope(this.#identity, recipients, utf8(text), {
      context: roomContext(this.room),
    });
    await this.#client.link.send({ type: ChatMessageType.Post, id: this.#id, body: envelope });
    return recipients.length;
  }

  /**
   * In an invite-only room, the members its signed log names (undefined in
   * an ordinary room): the keys messages are sealed to.
   */
  get roomMembers(): RoomMember[] | undefined {
    return this.#membership?.members;
  }

  /**
   * Signs the addition of `key` (named `name`) to this invite-only room
   * and posts it; it takes effect when the relay sends it back (to
   * {@linkcode ChatEvents.onMembership}). Throws OvtpError `usage` when
   * this client is not a member, or `key` is one already.
   */
  async invite(key: PublicKey, name: string): Promise<void> {
    await this.#postChange(ChangeAction.Add, key, name);
  }

  /** Signs the removal of `key` from this invite-only room and posts it, as {@linkcode invite}. */
  async remove(key: PublicKey): Promise<void> {
    const name = this.#membership?.memberOf(key)?.name ?? "the key";
    await this.#postChange(ChangeAction.Remove, key, name);
  }

  async #postChange(
    action: typeof ChangeAction.Add | typeof ChangeAction.Remove,
    key: PublicKey,
    name: string,
  ): Promise<void> {
    if (!this.#membership) {
      throw new OvtpError("usage", `The room "${this.room}" is not invite-only`);
    }
    const change = await this.#membership.sign(action, key, name);
    await this.#client.link.send({ type: ChatMessageType.Change, id: this.#id, body: change });
  }

  /** Leaves the room (the connection stays open). */
  async leave(): Promise<void> {
    await this.#client.link.send({
      type: ChatMessageType.Leave,
      id: this.#id,
      body: encodeJson({}),
    });
  }

  /**
   * A member as the relay described it, with the fingerprint computed from
   * its key; undefined (and a warning) when the key does not parse or the
   * relay's fingerprint is not the key's: the relay lied or is broken.
   */
  async #check(listed: Member): Promise<{ member: Member; key: PublicKey } | undefined> {
    const name = JSON.stringify(listed.display);
    let key: PublicKey;
    try {
      key = parsePublicKey(listed.key).key;
    } catch (error) {
      this.#warn(
        `The server listed member ${name} with a key that does not parse: ` +
          `${(error as Error).message}; left out`,
      );
      return undefined;
    }
    const computed = await fingerprint(key);
    if (listed.fingerprint !== computed) {
      this.#warn(
        `The server listed member ${name} as ${listed.fingerprint}, but its key is ${computed}; ` +
          "left out: the server may be impersonating this member",
      );
      return undefined;
    }
    return { member: { ...listed, fingerprint: computed }, key };
  }

  #add(checked: { member: Member; key: PublicKey }): void {
    const { member, key } = checked;
    this.#warnUninvited(member, key);
    this.#members.delete(member.fingerprint);
    this.#members.set(member.fingerprint, member);
    this.#keys.set(member.fingerprint, key);
  }

  /** Once per key: a member the relay lists in an invite-only room that no member added. */
  #warnUninvited(member: Member, key: PublicKey): void {
    const membership = this.#membership;
    if (!membership || membership.empty || membership.memberOf(key)) return;
    if (member.fingerprint === this.#fingerprint || this.#uninvited.has(member.fingerprint)) return;
    this.#uninvited.add(member.fingerprint);
    this.#warn(
      `The server lists ${JSON.stringify(member.display)} (${member.fingerprint}) in ` +
        `invite-only room "${this.room}", but its signed member list does not: nothing is sealed to it`,
    );
  }

  #warn(message: string): void {
    this.#events.onWarning?.(message);
  }

  async #receive(message: Message, joined: PromiseWithResolvers<void>): Promise<void> {
    switch (message.type) {
      case ChatMessageType.Joined: {
        const { members, changes } = checkJoined(decodeJson(message.body));
        // The member list comes once: afterwards, only Presence (each change
        // shown) may change it.
        if (this.#joined) return this.#warn("The server sent the member list again; ignored");
        if (members.length > MAX_RECIPIENTS + 1) {
          const error = new OvtpError(
            "protocol",
            `The server listed ${members.length} members, more than an envelope can hold (${MAX_RECIPIENTS} others)`,
          );
          joined.reject(error);
          return;
        }
        if (this.#membership) {
          // Before the members, so that those no member added are flagged.
          const created = await this.#loadLog(changes, joined);
          if (created === undefined) return;
          if (!created) {
            this.#joined = true;
            joined.resolve();
          }
        }
        for (const listed of members) {
          const checked = await this.#check(listed);
          if (checked) this.#add(checked);
        }
        if (!this.#membership) {
          this.#joined = true;
          joined.resolve();
        }
        return;
      }
      case ChatMessageType.Change:
        return await this.#receiveChange(message.body, joined);
      case ChatMessageType.Refused: {
        const info = decodeJson(message.body);
        const error = new OvtpError("remote", `The server refused: ${String(info.message)}`);
        if (!this.#joined) return joined.reject(error);
        this.#warn(`The server refused a message: ${String(info.message)}`);
        return;
      }
      case ChatMessageType.Presence: {
        const { event, member: listed } = checkPresence(decodeJson(message.body));
        if (!this.#joined) return;
        const checked = await this.#check(listed);
        if (!checked) return;
        const known = this.#members.get(checked.member.fingerprint);
        if (event === "leave" && !known) {
          return this.#warn(
            `The server said ${checked.member.fingerprint} left, ` +
              "but it was not a member; ignored",
          );
        }
        if (!known && this.#members.size > MAX_RECIPIENTS) {
          return this.#warn(
            `The room has more members than an envelope can hold; ` +
              `${checked.member.fingerprint} left out`,
          );
        }
        this.#add(checked);
        this.#events.onPresence(event, checked.member);
        return;
      }
      case ChatMessageType.Deliver:
        return await this.#deliver(message.body);
    }
  }

  /**
   * Checks the log sent with Joined; creates the room when it is empty.
   * Resolves with whether the join waits for the creation to come back,
   * or undefined when the join failed.
   */
  async #loadLog(
    changes: Uint8Array[] | undefined,
    joined: PromiseWithResolvers<void>,
  ): Promise<boolean | undefined> {
    const membership = this.#membership!;
    if (!changes) {
      joined.reject(
        new OvtpError("protocol", `The server sent no membership log for room "${this.room}"`),
      );
      return undefined;
    }
    try {
      for (const change of await membership.load(changes)) this.#events.onMembership?.(change);
    } catch (error) {
      joined.reject(error);
      return undefined;
    }
    if (!membership.empty) return false;
    const create = await membership.sign(
      ChangeAction.Create,
      this.#identity.publicKey,
      this.#display,
    );
    await this.#client.link.send({ type: ChatMessageType.Change, id: this.#id, body: create });
    return true;
  }

  async #receiveChange(bytes: Uint8Array, joined: PromiseWithResolvers<void>): Promise<void> {
    if (!this.#membership) {
      return this.#warn("The server sent a membership change for an ordinary room; ignored");
    }
    let change;
    try {
      change = await this.#membership.receive(bytes);
    } catch (error) {
      if (!(error instanceof RoomLogError)) throw error;
      const refused =
        `The server sent a membership change that does not verify: ${error.message}; refused`;
      if (!this.#joined) return joined.reject(new OvtpError("protocol", refused));
      return this.#warn(refused);
    }
    this.#events.onMembership?.(change);
    if (!this.#joined) {
      // The creation came back: the room exists, this client its one member.
      this.#joined = true;
      joined.resolve();
    }
  }

  async #deliver(envelope: Uint8Array): Promise<void> {
    // Opened first, parsed again only to name the sender of one that fails:
    // a second parse of every post cost about a tenth of the open.
    let opened;
    try {
      opened = await openEnvelope(envelope, this.#identity, {
        context: roomContext(this.room),
        replay: this.#replay,
      });
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error;
      let claimed = "unknown";
      try {
        claimed = await fingerprint(parseEnvelope(envelope).sender);
      } catch (parseError) {
        if (!(parseError instanceof EnvelopeError)) throw parseError;
      }
      this.#events.onDropped(claimed, error.message);
      return;
    }
    // The sender's key is verified: the member is looked up by it, never by
    // what the relay says.
    const claimed = await fingerprint(opened.sender);
    if (this.#membership && !this.#membership.memberOf(opened.sender)) {
      this.#events.onDropped(claimed, "The sender is not a member of this invite-only room");
      return;
    }
    let text: string;
    try {
      text = fromUtf8(opened.body);
    } catch {
      this.#events.onDropped(claimed, "The message is not UTF-8 text");
      return;
    }
    this.#events.onMessage({
      member: this.#members.get(claimed),
      fingerprint: claimed,
      text,
      timestamp: opened.timestamp,
      messageId: opened.messageId,
    });
  }
}
