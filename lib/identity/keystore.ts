/**
 * The ~/.ovtp directory: the identity, authorized_keys and known_hosts. All
 * writes are atomic; the directory is 0700 and the private key 0600.
 *
 * @module
 */

import { join } from "node:path";
import { atomicWrite } from "../io/files.ts";
import { withFileLock } from "../io/file_lock.ts";
import {
  type AuthorizedKey,
  type AuthorizedKeys,
  defaultKeyName,
  formatAuthorizedKey,
  parseAuthorizedKeys,
} from "../trust/authorized_keys.ts";
import {
  type Contact,
  contactNameProblem,
  type Contacts,
  parseContacts,
} from "../trust/contacts.ts";
import { OvtpError } from "../errors.ts";
import { applyKeyChange, type KeyChange, type KeyOptions } from "../trust/key_options.ts";
import {
  decodeKeyFile,
  encodeKeyFile,
  isSealedKeyFile,
  keyFileDigest,
  WrongPassphraseError,
} from "./key_file.ts";
import {
  fingerprint,
  formatPublicKey,
  generateIdentity,
  hasHiddenCharacters,
  type Identity,
  identityFromPrivateKeys,
  KEY_LENGTH,
  type PublicKey,
  samePublicKey,
} from "./keys.ts";
import { type HostBlock, parseHostConfig } from "../client/host_config.ts";
import { formatKnownHost, type KnownHost, parseKnownHosts } from "../trust/known_hosts.ts";

/**
 * File names inside the home directory.
 *
 * @example Write authorized_keys by hand
 * ```ts
 * import { formatPublicKey, generateIdentity, Keystore, KEYSTORE_FILES } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const { publicKey } = await generateIdentity();
 * const line = formatPublicKey(publicKey, "alice");
 * await Deno.writeTextFile(`${home}/${KEYSTORE_FILES.authorizedKeys}`, line + "\n");
 *
 * const keystore = new Keystore(home);
 * assert.ok(keystore.path("authorizedKeys").endsWith("authorized_keys"));
 * const { entries } = await keystore.readAuthorizedKeys();
 * assert.equal(entries[0].name, "alice");
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export const KEYSTORE_FILES = {
  identity: "id_ovtp",
  publicKey: "id_ovtp.pub",
  authorizedKeys: "authorized_keys",
  knownHosts: "known_hosts",
  contacts: "contacts",
  chatNames: "chat_names",
  roomHeads: "room_heads",
  rooms: "rooms",
  listenConfig: "listen.json",
  hostConfig: "config",
  inbox: "inbox",
} as const;

/**
 * Options of {@linkcode Keystore.createIdentity}.
 *
 * @example Replace an identity on purpose
 * ```ts
 * import { type CreateIdentityOptions, Keystore, OvtpError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const first = await keystore.createIdentity({ comment: "alice@laptop" });
 * assert.match(first.line, / alice@laptop$/);
 *
 * await assert.rejects(keystore.createIdentity(), OvtpError); // Not without force.
 * const options: CreateIdentityOptions = { force: true, comment: "alice@desktop" };
 * const second = await keystore.createIdentity(options);
 * assert.equal(await keystore.readPublicLine(), second.line);
 * assert.notEqual(second.line.split(" ")[1], first.line.split(" ")[1]);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface CreateIdentityOptions {
  /** Replace an existing identity. @default false */
  force?: boolean;
  /** Seal the private key with this passphrase. */
  passphrase?: string;
  /** The comment on the public line. @default "" */
  comment?: string;
}

/**
 * Asks for the passphrase of a sealed key file, only when one is needed.
 * `attempt` counts from 1; a later one follows a wrong passphrase.
 *
 * @example Ask only for a sealed key
 * ```ts
 * import { Keystore, type PassphraseSource } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * await keystore.createIdentity(); // No passphrase: the key file is not sealed.
 *
 * let asked = 0;
 * const askUser: PassphraseSource = (attempt) => {
 *   asked++;
 *   return Promise.resolve(prompt(attempt > 1 ? "Wrong; passphrase:" : "Passphrase:") ?? "");
 * };
 * await keystore.loadIdentity(askUser);
 * assert.equal(asked, 0);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export type PassphraseSource = (attempt: number) => Promise<string>;

/**
 * Options of {@linkcode Keystore.loadIdentity}.
 *
 * @example Three tries, as ssh gives a person at a terminal
 * ```ts
 * import { Keystore, type LoadIdentityOptions, OvtpError } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * await keystore.createIdentity({ passphrase: "right" });
 *
 * const typed = ["wrong", "wronger", "right"];
 * const options: LoadIdentityOptions = { tries: 3 };
 * await keystore.loadIdentity((attempt) => Promise.resolve(typed[attempt - 1]), options);
 * await assert.rejects(
 *   keystore.loadIdentity(() => Promise.resolve("wrong"), { tries: 2 }),
 *   (error) => error instanceof OvtpError && /Wrong passphrase .* \(2 tries\)/.test(error.message),
 * );
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface LoadIdentityOptions {
  /** A key file to load instead of id_ovtp (`-i FILE`); the trust files stay this keystore's. */
  file?: string;
  /** How many passphrases to try before giving up. @default 1 */
  tries?: number;
  /**
   * Asked first for a sealed file, with its digest (see
   * {@linkcode UnlockedIdentity}): the 64 private bytes an agent holds for
   * that file, or undefined to ask for the passphrase instead.
   */
  agent?: (digest: string) => Promise<Uint8Array | undefined>;
}

/**
 * An identity and the key file it came from.
 *
 * @example What `ovtp agent` keeps
 * ```ts
 * import { Keystore, type UnlockedIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * await keystore.createIdentity({ passphrase: "secret" });
 * const unlocked: UnlockedIdentity = await keystore.unlockIdentity(() => Promise.resolve("secret"));
 * assert.equal(unlocked.sealed, true);
 * assert.equal(unlocked.digest.length, 43);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface UnlockedIdentity {
  /** The identity. */
  identity: Identity;
  /** The key file's path. */
  path: string;
  /** Whether the file is sealed with a passphrase. */
  sealed: boolean;
  /** SHA-256 of the file's trimmed text, base64url: what an agent knows it by. */
  digest: string;
}

/**
 * The result of adding a key to authorized_keys.
 *
 * @example Adding the same key twice
 * ```ts
 * import { type AddKeyResult, generateIdentity, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const { publicKey } = await generateIdentity();
 * const first: AddKeyResult = await keystore.addAuthorizedKey(publicKey, "alice");
 * assert.deepEqual(first, { added: true, name: "alice" });
 *
 * // Already there: nothing changes, and the existing name is returned.
 * const again = await keystore.addAuthorizedKey(publicKey, "alice-2");
 * assert.deepEqual(again, { added: false, name: "alice" });
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface AddKeyResult {
  /** Whether the key was added, or was already there. */
  added: boolean;
  /** The entry's name (the existing one for a duplicate). */
  name: string;
}

/**
 * The ~/.ovtp directory of one user. Give it a temporary directory in tests,
 * or `OVTP_HOME`, as the CLI does.
 *
 * @example Create an identity and load it back
 * ```ts
 * import { Keystore, parsePublicKey, samePublicKey } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * assert.equal(await keystore.hasIdentity(), false);
 * const { line } = await keystore.createIdentity({ comment: "bob@server" });
 *
 * const identity = await keystore.loadIdentity(() => Promise.resolve(""));
 * assert.ok(samePublicKey(identity.publicKey, parsePublicKey(line).key));
 * assert.equal(await keystore.readPublicLine(), line);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export class Keystore {
  /** The directory. */
  readonly home: string;

  /** Opens the store at `home`; nothing is read until asked. */
  constructor(home: string) {
    this.home = home;
  }

  /** The path of one of the files in {@linkcode KEYSTORE_FILES}. */
  path(file: keyof typeof KEYSTORE_FILES): string {
    return join(this.home, KEYSTORE_FILES[file]);
  }

  /** Whether an identity exists. */
  async hasIdentity(): Promise<boolean> {
    return await exists(this.path("identity"));
  }

  /**
   * Creates a new identity and writes id_ovtp and id_ovtp.pub. Refuses to
   * replace an existing one unless `force` is set.
   */
  async createIdentity(
    options: CreateIdentityOptions = {},
  ): Promise<{ identity: Identity; line: string }> {
    if (!options.force && await this.hasIdentity()) {
      throw new OvtpError(
        "key",
        `An identity already exists in "${this.path("identity")}"`,
        { hint: "use --force to replace it (the old key is lost)" },
      );
    }
    await this.#ensureHome();
    const identity = await generateIdentity();
    const line = formatPublicKey(identity.publicKey, options.comment ?? "");
    await atomicWrite(
      this.path("identity"),
      await encodeKeyFile(identity, options.passphrase),
      0o600,
    );
    await atomicWrite(this.path("publicKey"), line + "\n", 0o644);
    return { identity, line };
  }

  /**
   * Loads the identity, asking for the passphrase only if it is sealed (an
   * agent first, when `options.agent` is given): id_ovtp, or the key file
   * at `file` (`-i FILE`), which changes nothing else (the trust files stay
   * this keystore's). `file` may be given as a string or in `options`.
   */
  async loadIdentity(
    passphrase: PassphraseSource,
    file?: string | LoadIdentityOptions,
  ): Promise<Identity> {
    const options = typeof file === "string" ? { file } : file ?? {};
    return (await this.unlockIdentity(passphrase, options)).identity;
  }

  /** {@linkcode Keystore.loadIdentity}, also telling which file it read. */
  async unlockIdentity(
    passphrase: PassphraseSource,
    options: LoadIdentityOptions = {},
  ): Promise<UnlockedIdentity> {
    const path = options.file ?? this.path("identity");
    const text = await readTextOrUndefined(path);
    if (text === undefined) {
      throw new OvtpError(
        "key",
        options.file === undefined ? `No identity in "${this.home}"` : `No key file "${path}"`,
        { hint: "run `ovtp keygen` to create one" },
      );
    }
    const sealed = isSealedKeyFile(text);
    const digest = keyFileDigest(text);
    const held = sealed ? await options.agent?.(digest) : undefined;
    if (held?.length === 2 * KEY_LENGTH) {
      const identity = await identityFromPrivateKeys(
        held.slice(0, KEY_LENGTH),
        held.slice(KEY_LENGTH),
      );
      return { identity, path, sealed, digest };
    }
    const tries = Math.max(1, options.tries ?? 1);
    for (let attempt = 1;; attempt++) {
      try {
        const identity = await decodeKeyFile(text, () => passphrase(attempt));
        return { identity, path, sealed, digest };
      } catch (error) {
        if (error instanceof WrongPassphraseError) {
          if (attempt < tries) continue;
          throw new OvtpError(
            "key",
            `Wrong passphrase for "${path}"${tries > 1 ? ` (${tries} tries)` : ""}`,
          );
        }
        if (error instanceof SyntaxError) {
          throw new OvtpError("key", `Cannot read key file "${path}": ${error.message}`);
        }
        throw error;
      }
    }
  }

  /**
   * Seals the identity in `path` (id_ovtp by default) with a new passphrase,
   * or stores it plain when `next` is undefined: the file is rewritten
   * atomically, under a lock; the keys, and so the public line and
   * fingerprint, stay the same. `identity` must be the one the file holds,
   * as {@linkcode Keystore.unlockIdentity} read it, whose `digest` is
   * checked again under the lock so that a file replaced meanwhile is not
   * overwritten.
   */
  async changePassphrase(
    unlocked: UnlockedIdentity,
    next: string | undefined,
  ): Promise<void> {
    const path = unlocked.path;
    await withFileLock(path, async () => {
      const text = await readTextOrUndefined(path);
      if (text === undefined || keyFileDigest(text) !== unlocked.digest) {
        throw new OvtpError("key", `"${path}" changed while its passphrase was being changed`, {
          hint: "run the command again",
        });
      }
      await atomicWrite(path, await encodeKeyFile(unlocked.identity, next), 0o600);
    });
  }

  /** The public line in id_ovtp.pub. */
  async readPublicLine(): Promise<string> {
    const text = await readTextOrUndefined(this.path("publicKey"));
    if (text === undefined) {
      if (await this.hasIdentity()) {
        throw new OvtpError(
          "key",
          `Cannot read your public line: "${this.path("publicKey")}" is missing`,
          {
            hint: "run `ovtp id` to derive it again from id_ovtp",
          },
        );
      }
      throw new OvtpError("key", `No identity in "${this.home}"`, {
        hint: "run `ovtp keygen` to create one",
      });
    }
    return text.trim();
  }

  /**
   * Writes id_ovtp.pub again from the identity, when it was lost: the public
   * keys follow from the private ones, only the comment is gone.
   */
  async restorePublicLine(identity: Identity, comment = ""): Promise<string> {
    const line = formatPublicKey(identity.publicKey, comment);
    await atomicWrite(this.path("publicKey"), line + "\n", 0o644);
    return line;
  }

  /** Reads authorized_keys (empty when the file does not exist). */
  async readAuthorizedKeys(): Promise<AuthorizedKeys> {
    const text = await readTextOrUndefined(this.path("authorizedKeys"));
    return parseAuthorizedKeys(text ?? "");
  }

  /**
   * Adds a key to authorized_keys, ignoring one that is already there.
   * Refuses a name another key already has (a name must pick one key: for
   * `open --from`, `seal -r`, `keys remove`, and the inbox folder), and a
   * name that could be read as something else: a fingerprint or `self`.
   */
  async addAuthorizedKey(
    key: PublicKey,
    name?: string,
    options: KeyOptions = {},
  ): Promise<AddKeyResult> {
    const finalName = name?.trim() || await defaultKeyName(key);
    checkKeyName(finalName, ADD_NAME);
    const path = this.path("authorizedKeys");
    await this.#ensureHome();
    return await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const existing = parseAuthorizedKeys(text).entries.find((entry) =>
        samePublicKey(entry.key, key)
      );
      if (existing) return { added: false, name: existing.name };
      await refuseTakenName(finalName, parseAuthorizedKeys(text).entries, ADD_NAME);
      const prefix = text && !text.endsWith("\n") ? text + "\n" : text;
      await atomicWrite(path, prefix + formatAuthorizedKey(key, finalName, options) + "\n");
      return { added: true, name: finalName };
    });
  }

  /**
   * Removes the authorized key whose name or fingerprint is `which`. Refuses
   * a name that matches several keys.
   */
  async removeAuthorizedKey(which: string): Promise<AuthorizedKey> {
    const path = this.path("authorizedKeys");
    await this.#ensureHome();
    return await withFileLock(path, () => this.#removeAuthorizedKey(path, which));
  }

  async #removeAuthorizedKey(path: string, which: string): Promise<AuthorizedKey> {
    const text = (await readTextOrUndefined(path)) ?? "";
    const entry = await findOneKey(parseAuthorizedKeys(text).entries, which);
    const lines = text.split("\n");
    lines.splice(entry.line - 1, 1);
    await atomicWrite(path, lines.join("\n"));
    return entry;
  }

  /**
   * Changes the options (and maybe the name) of the authorized key whose
   * name or fingerprint is `which`, in place: the other lines, and the
   * options the change leaves out, stay as they are. Servers reading the
   * file apply it to open connections too (see live_grant.ts).
   */
  async updateAuthorizedKey(
    which: string,
    change: KeyChange,
  ): Promise<{ before: AuthorizedKey; after: AuthorizedKey }> {
    const path = this.path("authorizedKeys");
    await this.#ensureHome();
    return await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const entries = parseAuthorizedKeys(text).entries;
      const before = await findOneKey(entries, which);
      const name = change.name?.trim() || before.name;
      if (name !== before.name) {
        checkKeyName(name, NEW_NAME);
        await refuseTakenName(name, entries.filter((e) => e !== before), NEW_NAME);
      }
      const after = { ...before, name, options: applyKeyChange(before.options, change) };
      const lines = text.split("\n");
      lines[before.line - 1] = formatAuthorizedKey(after.key, after.name, after.options);
      await atomicWrite(path, lines.join("\n"));
      return { before, after };
    });
  }

  /** Reads contacts (empty when the file does not exist). */
  async readContacts(): Promise<Contacts> {
    return parseContacts((await readTextOrUndefined(this.path("contacts"))) ?? "");
  }

  /**
   * Adds a contact; a key already there is left alone (its name is
   * returned). Refuses a name another key has: a name must pick one key.
   */
  async addContact(key: PublicKey, name: string): Promise<AddKeyResult> {
    const problem = contactNameProblem(name);
    if (problem) throw new OvtpError("usage", problem, { hint: "choose another name" });
    const path = this.path("contacts");
    await this.#ensureHome();
    return await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const { entries } = parseContacts(text);
      const existing = entries.find((entry) => samePublicKey(entry.key, key));
      if (existing) return { added: false, name: existing.name };
      const taken = entries.find((entry) => entry.name === name);
      if (taken) {
        throw new OvtpError(
          "usage",
          `Cannot add the contact "${name}": another key (${await fingerprint(
            taken.key,
          )}, line ${taken.line} of "${path}") already has that name`,
          { hint: "choose another name, or remove that contact first" },
        );
      }
      const prefix = text && !text.endsWith("\n") ? text + "\n" : text;
      await atomicWrite(path, prefix + formatPublicKey(key, name) + "\n");
      return { added: true, name };
    });
  }

  /**
   * Removes the contact whose name or fingerprint is `which` (every line of
   * that key, for a fingerprint), and returns what was removed.
   */
  async removeContact(which: string): Promise<Contact[]> {
    const path = this.path("contacts");
    await this.#ensureHome();
    return await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const removed: Contact[] = [];
      for (const entry of parseContacts(text).entries) {
        if (entry.name === which || await fingerprint(entry.key) === which) removed.push(entry);
      }
      if (removed.length === 0) {
        throw new OvtpError("not-found", `No contact "${which}"`, {
          hint: "`ovtp contacts list` shows names and fingerprints",
        });
      }
      const lines = new Set(removed.map((entry) => entry.line));
      await atomicWrite(path, text.split("\n").filter((_, i) => !lines.has(i + 1)).join("\n"));
      return removed;
    });
  }

  /** Reads the per-host settings (`config`; none when it does not exist). */
  async readHostConfig(): Promise<HostBlock[]> {
    const path = this.path("hostConfig");
    try {
      return parseHostConfig((await readTextOrUndefined(path)) ?? "");
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new OvtpError("usage", `Cannot read "${path}": ${error.message}`, {
        hint: 'the format is in README.md, "Hosts and identities"',
      });
    }
  }

  /** Looks up a host in known_hosts. */
  async findKnownHost(host: string): Promise<KnownHost | undefined> {
    return (await this.readKnownHosts()).find((e) => e.host === host);
  }

  /**
   * Reads every entry of known_hosts, refusing a file with a damaged line:
   * that line might be the one for the host at hand, and trusting anew would
   * hide a changed key.
   */
  async readKnownHosts(): Promise<KnownHost[]> {
    const path = this.path("knownHosts");
    const { entries, errors } = parseKnownHosts((await readTextOrUndefined(path)) ?? "");
    if (errors.length > 0) {
      throw new OvtpError(
        "key",
        `Cannot use "${path}": line ${errors[0].line}: ${errors[0].message}`,
        { hint: "fix or delete that line" },
      );
    }
    return entries;
  }

  /**
   * Records a host's key (or only its fingerprint) in known_hosts. A host
   * already recorded with another key or fingerprint is refused: replacing
   * it is a decision, made by removing the old entry first.
   */
  async addKnownHost(host: string, key: PublicKey | string): Promise<void> {
    const path = this.path("knownHosts");
    await this.#ensureHome();
    await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const given = typeof key === "string" ? key : await fingerprint(key);
      for (const entry of parseKnownHosts(text).entries) {
        if (entry.host !== host) continue;
        const recorded = entry.fingerprint ?? await fingerprint(entry.key!);
        // Another process connecting to the same host may have just added it.
        if (recorded === given && (entry.key || typeof key === "string")) return;
        if (recorded !== given) {
          throw new OvtpError(
            "trust",
            `Host ${host} is already known with another key (${recorded}, line ${entry.line})`,
            { hint: `if it changed on purpose, run: ovtp known-hosts remove ${host}` },
          );
        }
      }
      const prefix = text && !text.endsWith("\n") ? text + "\n" : text;
      await atomicWrite(path, prefix + formatKnownHost(host, key) + "\n");
    });
  }

  /** Removes every known_hosts entry of `host`, and returns how many there were. */
  async removeKnownHost(host: string): Promise<number> {
    const path = this.path("knownHosts");
    await this.#ensureHome();
    return await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const lines = new Set(
        parseKnownHosts(text).entries.filter((e) => e.host === host).map((e) => e.line),
      );
      if (lines.size === 0) return 0;
      const kept = text.split("\n").filter((_, index) => !lines.has(index + 1));
      await atomicWrite(path, kept.join("\n"));
      return lines.size;
    });
  }

  /**
   * Remembers which key a chat display name belongs to, as known_hosts does
   * for servers. The first key seen for a name is pinned; a different key
   * later returns the pinned entry (and changes nothing), so that the
   * caller can warn.
   */
  async pinChatName(
    display: string,
    fingerprint: string,
  ): Promise<{ fingerprint: string; line: number } | undefined> {
    const path = this.path("chatNames");
    // A display name from another member can hold half a surrogate pair,
    // which encodeURIComponent refuses (URIError): the name would never be
    // pinned. U+FFFD in its place can only make two names share a pin.
    const name = encodeURIComponent(display.toWellFormed());
    await this.#ensureHome();
    return await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const lines = text.split("\n");
      for (let i = 0; i < lines.length; i++) {
        const space = lines[i].lastIndexOf(" ");
        if (space <= 0 || lines[i].slice(0, space) !== name) continue;
        const pinned = lines[i].slice(space + 1);
        return pinned === fingerprint ? undefined : { fingerprint: pinned, line: i + 1 };
      }
      const prefix = text && !text.endsWith("\n") ? text + "\n" : text;
      await atomicWrite(path, `${prefix}${name} ${fingerprint}\n`, 0o600);
      return undefined;
    });
  }

  async #ensureHome(): Promise<void> {
    await Deno.mkdir(this.home, { recursive: true, mode: 0o700 });
    if (Deno.build.os !== "windows") await Deno.chmod(this.home, 0o700);
  }
}

/** How a refused name is reported, when adding a key and when renaming one. */
const ADD_NAME = {
  refusal: "Cannot authorize the key as",
  hint: "add it under another name: ovtp add-key --name OTHER",
};
const NEW_NAME = { refusal: "Cannot rename the key to", hint: "choose another name" };

/**
 * Refuses a name that could be read as something else (a fingerprint or
 * `self`) or that holds control characters.
 */
function checkKeyName(name: string, report: typeof ADD_NAME): void {
  if (hasHiddenCharacters(name)) {
    throw new OvtpError(
      "usage",
      "A key name cannot contain control or invisible formatting characters (such as bidi overrides)",
    );
  }
  if (name === "self" || /^SHA256:/i.test(name)) {
    throw new OvtpError(
      "usage",
      `${report.refusal} "${name}": that name means something else to ovtp`,
      { hint: report.hint },
    );
  }
}

/** Refuses `name` when another authorized key has it. */
async function refuseTakenName(
  name: string,
  entries: AuthorizedKey[],
  report: typeof ADD_NAME,
): Promise<void> {
  const taken = entries.find((entry) => entry.name === name);
  if (!taken) return;
  throw new OvtpError(
    "usage",
    `${report.refusal} "${name}": another key (${await fingerprint(
      taken.key,
    )}, line ${taken.line}) already has that name`,
    { hint: report.hint },
  );
}

/**
 * The one entry whose name or fingerprint is `which`: none, or a name that
 * several keys share (a damaged file), is refused.
 */
async function findOneKey(entries: AuthorizedKey[], which: string): Promise<AuthorizedKey> {
  const matches: AuthorizedKey[] = [];
  for (const entry of entries) {
    if (entry.name === which || await fingerprint(entry.key) === which) matches.push(entry);
  }
  if (matches.length === 0) {
    throw new OvtpError("not-found", `No authorized key named "${which}"`, {
      hint: "`ovtp keys` lists names and fingerprints",
    });
  }
  if (matches.length > 1) {
    throw new OvtpError("not-found", `The name "${which}" matches ${matches.length} keys`, {
      hint: "give its fingerprint instead (`ovtp keys` lists them)",
    });
  }
  return matches[0];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function readTextOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new OvtpError("io", `Cannot read "${path}": ${(error as Error).message}`);
  }
}
