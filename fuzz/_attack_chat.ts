/**
 * Network fuzzer shape g: chat posts whose recipient lists repeat a member,
 * name keys that are not members, or name the sender, in the room the
 * member is in or another one, with the member online (a second
 * connection) or offline (its queue on disk). A post reaches each member
 * at most once; a post with a duplicate or non-member recipient is refused
 * and reaches no one. The online half is checked here, the queues between
 * attacks (fuzz/_network.ts, {@linkcode queuedEnvelopeIds}).
 */

import fc from "fast-check";
import { toHex, utf8 } from "../lib/bytes.ts";
import { parseEnvelope, sealEnvelope } from "../lib/envelope/envelope.ts";
import type { Identity, PublicKey } from "../lib/identity/keys.ts";
import { type AttackContext, AttackFailure, f, json, RawSession } from "./_network_wire.ts";

/** The room every shape's chat seeds use, which the member joins before the first attack. */
export const ROOM = "fuzz";
const JOIN = 0x30;
const JOINED = 0x31;
const POST = 0x33;
const DELIVER = 0x34;
const REFUSED = 0x35;
const SESSION_ID = 7;
const WAIT_MS = 2_000;
const QUIET_MS = 150;

/** Who a recipient entry names. */
export type Recipient = "member" | "self" | "stranger" | "expired";

/** Shape g, as data. */
export interface ChatAttack {
  shape: "g";
  /** The room the attacker joins and posts to. */
  room: string;
  /** Whether the member is connected (and joined) while the posts arrive. */
  online: boolean;
  /** Each post's recipients, and whether its context names another room. */
  posts: { recipients: Recipient[]; wrongContext: boolean }[];
}

export const chatAttack: fc.Arbitrary<ChatAttack> = fc.record({
  shape: fc.constant("g" as const),
  room: fc.constantFrom(ROOM, ROOM, ROOM, "fuzz-other"),
  online: fc.boolean(),
  posts: fc.array(
    fc.record({
      recipients: fc.oneof(
        // Mostly the member several times, alone or with others.
        fc.array(fc.constantFrom<Recipient>("member", "member", "member", "stranger", "self"), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.array(fc.constantFrom<Recipient>("member", "stranger", "expired", "self"), {
          minLength: 1,
          maxLength: 4,
        }),
      ),
      // One time in four: a relay must refuse an envelope for another room.
      wrongContext: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

/**
 * Joins `room` as `identity` on a new connection; resolves once Joined
 * came, or with undefined when the server refused the Join (a bound on rooms
 * per key, say, that other attacks filled: a refusal, not a failure).
 */
export async function joinRoom(
  context: AttackContext,
  identity: Identity,
  room: string,
  display: string,
): Promise<RawSession | undefined> {
  const session = await RawSession.open(context, identity);
  await session.send([f(JOIN, SESSION_ID, json({ room, display }))]);
  const answered = () =>
    session.of(JOINED, SESSION_ID).length > 0 || session.of(REFUSED, SESSION_ID).length > 0;
  if (!await session.until(answered, WAIT_MS)) {
    await session.close();
    throw new AttackFailure(`${display} got no answer to its Join of room ${room}`);
  }
  if (session.of(JOINED, SESSION_ID).length === 0) {
    await session.close();
    return undefined;
  }
  return session;
}

/** Performs the posts and checks what the member received. */
export async function performChat(context: AttackContext, value: ChatAttack): Promise<void> {
  const { ledger } = context;
  const member = value.online ? await joinRoom(context, context.member, ROOM, "member") : undefined;
  try {
    const attacker = await joinRoom(context, context.authorized, value.room, "fuzzer");
    if (!attacker) return;
    const mustRefuse = new Set<string>();
    let refused = 0;
    let serverClosed = false;
    try {
      const keyOf: Record<Recipient, PublicKey> = {
        member: context.member.publicKey,
        self: context.authorized.publicKey,
        stranger: context.stranger.publicKey,
        expired: context.expired.publicKey,
      };
      for (const post of value.posts) {
        const envelope = await sealEnvelope(
          context.authorized,
          post.recipients.map((r) => keyOf[r]),
          utf8("fuzz"),
          { context: `room:${post.wrongContext ? "elsewhere" : value.room}` },
        );
        const id = parseEnvelope(envelope).messageId;
        const members = value.room === ROOM ? ["member", "self"] : ["self"];
        const listed = post.recipients.filter((r) => r !== "self");
        if (
          post.wrongContext || new Set(listed).size !== listed.length ||
          post.recipients.some((r) => !members.includes(r))
        ) {
          mustRefuse.add(id);
          ledger.refusedPosts.add(id);
        }
        if (!await attacker.send([f(POST, SESSION_ID, envelope)])) break;
      }
      // Every post is answered by a Refused or by nothing: wait for the
      // refusals due (a slow server is not a broken one), then for the quiet.
      await attacker.until(
        () => attacker.of(REFUSED, SESSION_ID).length >= mustRefuse.size,
        WAIT_MS,
      );
      await attacker.until(() => false, WAIT_MS, QUIET_MS);
      refused = attacker.of(REFUSED, SESSION_ID).length;
      serverClosed = attacker.closed;
    } finally {
      await attacker.close();
    }
    if (member) {
      await member.until(() => false, WAIT_MS, QUIET_MS);
      const ids = member.of(DELIVER, SESSION_ID).map((m) => parseEnvelope(m.body).messageId);
      for (const id of ids) {
        const times = ids.filter((other) => other === id).length;
        if (times > 1 || ledger.delivered.has(id)) {
          throw new AttackFailure(
            `The relay delivered post ${id} to the member ${
              times > 1 ? `${times} times` : "again"
            }`,
          );
        }
        if (mustRefuse.has(id)) {
          throw new AttackFailure(`The relay delivered post ${id}, which it had to refuse`);
        }
      }
      for (const id of ids) ledger.delivered.add(id);
    }
    if (refused < mustRefuse.size && !serverClosed) {
      throw new AttackFailure(
        `${mustRefuse.size} post(s) for another room or with duplicate or non-member ` +
          `recipients, ${refused} refused`,
      );
    }
  } finally {
    await member?.close();
  }
}

const MAGIC = utf8("OVE1");
/** Where an envelope's message id starts: magic 4, sender 64, timestamp 8. */
const ID_OFFSET = 76;

/**
 * The message ids (hex) of the envelopes in a queue file, found by their
 * magic, whatever the framing around them: an id listed twice is a post
 * kept twice for one member.
 */
export function queuedEnvelopeIds(bytes: Uint8Array): string[] {
  const ids: string[] = [];
  for (let i = 0; i + ID_OFFSET + 16 <= bytes.length; i++) {
    if (
      bytes[i] === MAGIC[0] && bytes[i + 1] === MAGIC[1] && bytes[i + 2] === MAGIC[2] &&
      bytes[i + 3] === MAGIC[3]
    ) {
      ids.push(toHex(bytes.subarray(i + ID_OFFSET, i + ID_OFFSET + 16)));
    }
  }
  return ids;
}
