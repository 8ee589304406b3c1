/**
 * Pending invites: the file `invites` in the home (mode 0600), written by
 * `ovtp invite` and read by `ovtp listen` when a pairing attempt arrives,
 * so that an invite made before listen started works once it runs.
 *
 * Each invite keeps its SPAKE2 secret w (not the code: w is all the server
 * needs), its expiry and its count of attempts. Every update is a
 * read-modify-write under the file's lock, so that two attempts at once
 * are both counted and only one of them redeems the invite.
 *
 * @module
 */

import { join } from "node:path";
import { atomicWrite } from "../io/files.ts";
import { withFileLock } from "../io/file_lock.ts";
import { fromHex, toHex } from "../bytes.ts";
import { OvtpError } from "../errors.ts";
import { formatOptions, type KeyOptions, splitOptions } from "../trust/key_options.ts";
import type { PublicKey } from "../identity/keys.ts";
import type { AddKeyResult, Keystore } from "../identity/keystore.ts";
import { codeScalar, MAX_NAMEPLATE, type PairCode, randomSecret } from "./code.ts";
import { bytesToBigInt, scalarBytes } from "./spake2_scalars.ts";

/** The file name of the pending invites in the home. */
export const INVITES_FILE = "invites";
/** Attempts one invite allows; the last failed one revokes it. */
export const MAX_TRIES = 3;
/** How long an invite lasts unless told otherwise. */
export const DEFAULT_VALID_MS = 10 * 60 * 1000;

/**
 * One pending invite, as the file keeps it.
 *
 * @example List the pending invites
 * ```ts
 * import { type Invite, InviteStore, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const invites = new InviteStore(new Keystore(await Deno.makeTempDir()));
 * await invites.create({ name: "alice", keyOptions: { allow: ["message"] } });
 * const [pending]: Invite[] = await invites.list();
 * assert.deepEqual([pending.nameplate, pending.name, pending.options, pending.tries], [
 *   1,
 *   "alice",
 *   'allow="message"',
 *   0,
 * ]);
 * ```
 */
export interface Invite {
  /** The number in its code. */
  nameplate: number;
  /** Random, so that a redeem finds this invite and not a later one with its number. */
  id: string;
  /** The SPAKE2 secret w, 32 bytes as hex. */
  w: string;
  /** When it stops being accepted (ISO 8601). */
  expires: string;
  /** Attempts made (each is one guess). */
  tries: number;
  /** The name the client's key gets; else the one the client asks for. */
  name?: string;
  /** The key's options in authorized_keys form ("" for none). */
  options: string;
}

/**
 * Why the server refuses an attempt before any guess is made.
 *
 * @example An unknown invite number
 * ```ts
 * import { InviteRefused, InviteStore, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const invites = new InviteStore(new Keystore(await Deno.makeTempDir()));
 * const refused = await invites.charge(7).catch((error) => error);
 * assert.ok(refused instanceof InviteRefused);
 * assert.equal(refused.code, "pair-unknown");
 * ```
 */
export class InviteRefused extends OvtpError {
  /** The code sent to the client: `pair-unknown` or `pair-expired`. */
  readonly code: string;

  /** Creates the error. */
  constructor(code: string, message: string) {
    super("trust", message);
    this.name = "InviteRefused";
    this.code = code;
  }
}

/**
 * The pending invites of one home, and the redeeming of one into
 * authorized_keys.
 *
 * @example Make an invite that expires in a minute
 * ```ts
 * import { formatCode, InviteStore, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const invites = new InviteStore(new Keystore(await Deno.makeTempDir()));
 * const { code, expires } = await invites.create({ validMs: 60_000 });
 * assert.match(formatCode(code), /^1-\d{4}-\d{4}$/);
 * assert.ok(expires.getTime() > Date.now());
 * ```
 */
export class InviteStore {
  readonly #keystore: Keystore;
  readonly #now: () => number;
  /** The file's path. */
  readonly path: string;

  /** The invites of `keystore`'s home; `now` is injectable for tests. */
  constructor(keystore: Keystore, now: () => number = Date.now) {
    this.#keystore = keystore;
    this.#now = now;
    this.path = join(keystore.home, INVITES_FILE);
  }

  /** Creates an invite and returns its code: the only time the code exists. */
  async create(
    options: { name?: string; keyOptions?: KeyOptions; validMs?: number } = {},
  ): Promise<{ code: PairCode; expires: Date }> {
    const validMs = options.validMs ?? DEFAULT_VALID_MS;
    await Deno.mkdir(this.#keystore.home, { recursive: true, mode: 0o700 });
    return await this.#update((invites) => {
      const used = new Set(invites.map((invite) => invite.nameplate));
      let nameplate = 1;
      while (used.has(nameplate)) nameplate++;
      if (nameplate > MAX_NAMEPLATE) {
        throw new OvtpError("usage", `There are already ${MAX_NAMEPLATE} pending invites`);
      }
      const code = { nameplate, secret: randomSecret() };
      const expires = new Date(this.#now() + validMs);
      invites.push({
        nameplate,
        id: toHex(crypto.getRandomValues(new Uint8Array(8))),
        w: toHex(scalarBytes(codeScalar(code))),
        expires: expires.toISOString(),
        tries: 0,
        ...(options.name === undefined ? {} : { name: options.name }),
        options: formatOptions(options.keyOptions ?? {}),
      });
      return { code, expires };
    });
  }

  /**
   * Counts one attempt at invite `nameplate` and returns the invite with
   * its w; throws {@linkcode InviteRefused} for an unknown, used, revoked
   * or expired one. The attempt counts before the guess is checked: a
   * client that learns the answer and hangs up has still used a try.
   */
  async charge(nameplate: number): Promise<{ invite: Invite; w: bigint }> {
    return await this.#update((invites) => {
      const invite = invites.find((entry) => entry.nameplate === nameplate);
      if (!invite || invite.tries >= MAX_TRIES) {
        throw new InviteRefused("pair-unknown", `No pending invite ${nameplate} on this server`);
      }
      if (Date.parse(invite.expires) <= this.#now()) {
        invites.splice(invites.indexOf(invite), 1);
        throw new InviteRefused("pair-expired", `Invite ${nameplate} has expired`);
      }
      invite.tries++;
      return { invite: { ...invite }, w: bytesToBigInt(fromHex(invite.w)) };
    });
  }

  /** Records a wrong guess: the invite is revoked once its tries are used. Returns tries left. */
  async fail(invite: Invite): Promise<number> {
    return await this.#update((invites) => {
      const current = invites.find((entry) => entry.id === invite.id);
      if (!current) return 0;
      const left = MAX_TRIES - current.tries;
      if (left <= 0) invites.splice(invites.indexOf(current), 1);
      return left;
    });
  }

  /**
   * Redeems the invite for `key`: adds it to authorized_keys with the
   * invite's name (else `requestedName`) and options, then removes the
   * invite. Throws if the invite is gone (used by another attempt).
   */
  async redeem(invite: Invite, key: PublicKey, requestedName: string): Promise<AddKeyResult> {
    return await this.#update(async (invites) => {
      const index = invites.findIndex((entry) => entry.id === invite.id);
      if (index < 0) {
        throw new InviteRefused("pair-unknown", `Invite ${invite.nameplate} was used meanwhile`);
      }
      const options = invite.options ? splitOptions(`${invite.options} key`).options : {};
      const result = await this.#keystore.addAuthorizedKey(
        key,
        invite.name ?? requestedName,
        options,
      );
      invites.splice(index, 1);
      return result;
    });
  }

  /** Revokes pending invite `nameplate`; false when there is none. */
  async revoke(nameplate: number): Promise<boolean> {
    return await this.#update((invites) => {
      const index = invites.findIndex((entry) =>
        entry.nameplate === nameplate && this.#pending(entry)
      );
      if (index < 0) return false;
      invites.splice(index, 1);
      return true;
    });
  }

  /** The invites still pending (not expired, not revoked). */
  async list(): Promise<Invite[]> {
    return (await this.#read()).filter((invite) => this.#pending(invite));
  }

  #pending(invite: Invite): boolean {
    return invite.tries < MAX_TRIES && Date.parse(invite.expires) > this.#now();
  }

  /** Runs `change` on the invites under the file's lock and writes them back. */
  async #update<T>(change: (invites: Invite[]) => T | Promise<T>): Promise<T> {
    return await withFileLock(this.path, async () => {
      // Ended invites go at every write, except that a failed attempt is
      // recorded before the entry is dropped.
      const invites = await this.#read();
      const before = JSON.stringify({ invites });
      let result: T;
      try {
        result = await change(invites);
      } finally {
        const kept = invites.filter((invite) =>
          Date.parse(invite.expires) > this.#now() && invite.tries <= MAX_TRIES
        );
        const after = JSON.stringify({ invites: kept });
        // An attempt at an unknown invite changes nothing: nothing is written.
        if (after !== before) await atomicWrite(this.path, after + "\n", 0o600);
      }
      return result;
    });
  }

  async #read(): Promise<Invite[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw new OvtpError("io", `Cannot read "${this.path}": ${(error as Error).message}`);
    }
    try {
      const invites = JSON.parse(text).invites;
      if (!Array.isArray(invites)) throw new SyntaxError("no invites list");
      return invites.filter(isInvite);
    } catch (error) {
      throw new OvtpError("io", `Cannot read "${this.path}": ${(error as Error).message}`, {
        hint: "delete the file: pending invites are then revoked",
      });
    }
  }
}

function isInvite(value: unknown): value is Invite {
  const invite = value as Invite;
  return typeof invite === "object" && invite !== null &&
    Number.isInteger(invite.nameplate) && typeof invite.id === "string" &&
    typeof invite.w === "string" && /^[0-9a-f]{64}$/.test(invite.w) &&
    typeof invite.expires === "string" && Number.isInteger(invite.tries) &&
    (invite.name === undefined || typeof invite.name === "string") &&
    typeof invite.options === "string";
}
