/**
 * The chat client's memory of which key each display name belongs to:
 * contacts first, then ~/.ovtp/chat_names, with a warning and a flag for
 * each message when a name comes back with another key.
 *
 * @module
 */

import type { Member } from "../lib/services/chat/chat_messages.ts";
import { fingerprint } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { printable as clean } from "./_printable.ts";

/**
 * Remembers which key each display name had, and warns when it changes.
 * Checks and the messages shown after them go through one queue, so a
 * message from a member is never shown before the check of its name.
 *
 * The user's own key is never warned about (a new key of one's own is no
 * news), and is pinned first, so a member taking the user's name is the one
 * flagged. A name held by two keys in the list given on joining is
 * reported as that, not as a change from a "before" the user never saw.
 */
export class NamePins {
  #keystore: Keystore;
  #warn: (line: string) => void;
  readonly own: string;
  #queue: Promise<void> = Promise.resolve();
  /** Your contacts' fingerprints by name: these pins come before chat_names'. */
  #contacts = new Map<string, string>();
  /** The key each name was seen with in this session, first come first kept. */
  #seen = new Map<string, string>();
  /** Fingerprints whose display name belongs to another key, with the flag shown. */
  readonly suspicious = new Map<string, string>();

  constructor(keystore: Keystore, ownFingerprint: string, warn: (line: string) => void) {
    this.#keystore = keystore;
    this.own = ownFingerprint;
    this.#warn = warn;
  }

  /** Checks the members of the room as joined, the user's own entry first. */
  checkAll(members: Member[]): void {
    const own = members.filter((m) => m.fingerprint === this.own);
    for (const member of [...own, ...members.filter((m) => m.fingerprint !== this.own)]) {
      this.check(member, true);
    }
  }

  /**
   * Your contacts' names are pinned to their keys before anything else (a
   * bad line in contacts just pins nothing).
   */
  async trustContacts(): Promise<void> {
    for (const contact of (await this.#keystore.readContacts()).entries) {
      this.#contacts.set(contact.name, await fingerprint(contact.key));
    }
  }

  /** `listed`: the member comes from the list given on joining. */
  check(member: Member, listed = false): void {
    this.after(async () => {
      const contact = this.#contacts.get(member.display);
      if (contact !== undefined && member.fingerprint !== this.own) {
        if (contact === member.fingerprint) return;
        this.suspicious.set(member.fingerprint, "[not your contact!]");
        this.#warn(
          `WARNING: "${clean(member.display)}" is your contact with the key ${contact}, ` +
            `not ${clean(member.fingerprint)}: its messages are flagged [not your contact!]`,
        );
        return;
      }
      const pinned = await this.#keystore.pinChatName(member.display, member.fingerprint);
      if (!this.#seen.has(member.display)) this.#seen.set(member.display, member.fingerprint);
      if (!pinned || member.fingerprint === this.own) return;
      const name = clean(member.display);
      const where = `line ${pinned.line} of ${this.#keystore.path("chatNames")}`;
      if (pinned.fingerprint === this.own) {
        this.suspicious.set(member.fingerprint, "[name taken!]");
        this.#warn(
          `WARNING: another key, ${clean(member.fingerprint)}, uses your name "${name}": ` +
            `its messages are flagged [name taken!]`,
        );
        return;
      }
      if (listed && this.#seen.get(member.display) === pinned.fingerprint) {
        this.suspicious.set(member.fingerprint, "[name taken!]");
        this.#warn(
          `WARNING: two keys in this room use the name "${name}": ${clean(pinned.fingerprint)} ` +
            `(${where}) and ${clean(member.fingerprint)}, whose messages are flagged [name taken!]`,
        );
        return;
      }
      this.suspicious.set(member.fingerprint, "[key changed!]");
      this.#warn(
        `WARNING: "${name}" now has the key ${clean(member.fingerprint)}, not ${
          clean(pinned.fingerprint)
        } as before: it may be someone else (${where})`,
      );
    });
  }

  /** Resolves once the checks asked for so far are done. */
  settled(): Promise<void> {
    return this.#queue;
  }

  /** Runs `work` once the checks asked for so far are done. */
  after(work: () => void | Promise<void>): void {
    this.#queue = this.#queue.then(work).catch((error) =>
      this.#warn(`warning: cannot check chat names: ${clean((error as Error).message)}`)
    );
  }
}
