/**
 * The ~/.ovtp directory: the identity, authorized_keys and known_hosts. All
 * writes are atomic; the directory is 0700 and the private key 0600.
 *
 * @module
 */

import { join } from "node:path";
import { atomicWrite } from "./_atomic_write.ts";
import { withFileLock } from "./_file_lock.ts";
import {
  type AuthorizedKey,
  type AuthorizedKeys,
  defaultKeyName,
  formatAuthorizedKey,
  parseAuthorizedKeys,
} from "./authorized_keys.ts";
import { OvtpError } from "./errors.ts";
import type { KeyOptions } from "./key_options.ts";
import { decodeKeyFile, encodeKeyFile, WrongPassphraseError } from "./key_file.ts";
import {
  fingerprint,
  formatPublicKey,
  generateIdentity,
  hasHiddenCharacters,
  type Identity,
  type PublicKey,
  samePublicKey,
} from "./keys.ts";
import { type HostBlock, parseHostConfig } from "./host_config.ts";
import { formatKnownHost, type KnownHost, parseKnownHosts } from "./known_hosts.ts";

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
 * const askUser: PassphraseSource = () => {
 *   asked++;
 *   return Promise.resolve(prompt("Passphrase:") ?? "");
 * };
 * await keystore.loadIdentity(askUser);
 * assert.equal(asked, 0);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export type PassphraseSource = () => Promise<string>;

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
   * Loads the identity, asking for the passphrase only if it is sealed:
   * id_ovtp, or the key file at `file` (`-i FILE`), which changes nothing
   * else (the trust files stay this keystore's).
   */
  async loadIdentity(passphrase: PassphraseSource, file?: string): Promise<Identity> {
    const path = file ?? this.path("identity");
    const text = await readTextOrUndefined(path);
    if (text === undefined) {
      throw new OvtpError(
        "key",
        file === undefined ? `No identity in "${this.home}"` : `No key file "${file}"`,
        { hint: "run `ovtp keygen` to create one" },
      );
    }
    try {
      return await decodeKeyFile(text, passphrase);
    } catch (error) {
      if (error instanceof WrongPassphraseError) {
        throw new OvtpError("key", `Wrong passphrase for "${path}"`);
      }
      if (error instanceof SyntaxError) {
        throw new OvtpError(
          "key",
          `Cannot read key file "${path}": ${error.message}`,
        );
      }
      throw error;
    }
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
    if (hasHiddenCharacters(finalName)) {
      throw new OvtpError(
        "usage",
        "A key name cannot contain control or invisible formatting characters (such as bidi overrides)",
      );
    }
    if (finalName === "self" || /^SHA256:/i.test(finalName)) {
      throw new OvtpError(
        "usage",
        `Cannot authorize the key as "${finalName}": that name means something else to ovtp`,
        { hint: "add it under another name: ovtp add-key --name OTHER" },
      );
    }
    const path = this.path("authorizedKeys");
    await this.#ensureHome();
    return await withFileLock(path, async () => {
      const text = (await readTextOrUndefined(path)) ?? "";
      const existing = parseAuthorizedKeys(text).entries.find((entry) =>
        samePublicKey(entry.key, key)
      );
      if (existing) return { added: false, name: existing.name };
      await refuseTakenName(finalName, parseAuthorizedKeys(text).entries);
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
    const { entries } = parseAuthorizedKeys(text);
    const matches: AuthorizedKey[] = [];
    for (const entry of entries) {
      if (entry.name === which || await fingerprint(entry.key) === which) {
        matches.push(entry);
      }
    }
    if (matches.length === 0) {
      throw new OvtpError("not-found", `No authorized key named "${which}"`, {
        hint: "`ovtp keys` lists names and fingerprints",
      });
    }
    if (matches.length > 1) {
      throw new OvtpError(
        "not-found",
        `The name "${which}" matches ${matches.length} keys`,
        { hint: "remove it by fingerprint instead" },
      );
    }
    const lines = text.split("\n");
    lines.splice(matches[0].line - 1, 1);
    await atomicWrite(path, lines.join("\n"));
    return matches[0];
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

/** Refuses `name` when another authorized key has it. */
async function refuseTakenName(name: string, entries: AuthorizedKey[]): Promise<void> {
  const taken = entries.find((entry) => entry.name === name);
  if (!taken) return;
  throw new OvtpError(
    "usage",
    `Cannot authorize the key as "${name}": another key (${await fingerprint(
      taken.key,
    )}, line ${taken.line}) already has that name`,
    { hint: "add it under another name: ovtp add-key --name OTHER" },
  );
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
