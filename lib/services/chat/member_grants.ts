/**
 * Whether a room's stored members are still allowed in it, as the server's
 * authorizer says now. A key removed from authorized_keys, past its expiry,
 * or whose `allow` no longer names the room stays in the room's member list
 * on disk until someone checks: without this, the others' clients kept
 * sealing every post to it and the relay kept those posts for it, to be
 * delivered if the key were ever authorized again.
 *
 * The relay asks here when someone joins (members no longer allowed leave
 * the list, with what was kept for them) and before it keeps a post for an
 * offline member. Online members need no check: their connection's grant is
 * checked every second and ends the connection (lib/server/live_grant.ts).
 *
 * @module
 */

import { parsePublicKey, type PublicKey } from "../../identity/keys.ts";
import { type KeyOptions, refusal } from "../../trust/key_options.ts";
import type { StoredMember } from "./room_store.ts";

/**
 * What the relay needs of the server's Authorizer (lib/server/types.ts,
 * which imports the relay: named here, not imported, to keep lib/ free of
 * import cycles).
 */
export type MemberAuthorizer = (
  key: PublicKey,
  options?: { maxAgeMs?: number },
) => Promise<{ options?: KeyOptions } | undefined>;

/** How old an answer may be: the same second a connection's grant allows. */
const MAX_AGE_MS = 1000;
/** Where the cache of answers starts over. */
const MAX_CACHED = 4096;

/** One authorizer's answers about room members, each kept for a second. */
export class MemberGrants {
  readonly #authorize: MemberAuthorizer;
  readonly #answers = new Map<string, { at: number; allowed: boolean }>();

  constructor(authorize: MemberAuthorizer) {
    this.#authorize = authorize;
  }

  /** Whether `member`'s key may still chat in `room`. */
  async allowed(room: string, member: StoredMember): Promise<boolean> {
    const cacheKey = `${room}\n${member.key}`;
    const now = Date.now();
    const cached = this.#answers.get(cacheKey);
    if (cached && now - cached.at < MAX_AGE_MS) return cached.allowed;
    const grant = await this.#authorize(parsePublicKey(member.key).key, { maxAgeMs: MAX_AGE_MS });
    const expires = grant?.options?.expires;
    const allowed = grant !== undefined && !(expires && expires.getTime() <= now) &&
      refusal(grant.options ?? {}, "chat", room) === undefined;
    if (this.#answers.size >= MAX_CACHED) this.#answers.clear();
    this.#answers.set(cacheKey, { at: now, allowed });
    return allowed;
  }

  /** The fingerprints of `members` no longer allowed in `room`. */
  async revoked(room: string, members: readonly StoredMember[]): Promise<Set<string>> {
    const answers = await Promise.all(members.map((m) => this.allowed(room, m)));
    return new Set(members.filter((_, i) => !answers[i]).map((m) => m.fingerprint));
  }
}
