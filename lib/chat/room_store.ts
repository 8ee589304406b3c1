/**
 * The relay's disk: for each room, its members and, for each member, the
 * envelopes kept while it is offline. Only envelopes (ciphertext), keys and
 * names are written; never a message's text.
 *
 * Layout: `<dir>/<room>/members.json` and `<dir>/<room>/<key hash>.queue`,
 * a queue being records of `stored-at (u64 BE ms) | length (u32 BE) |
 * envelope`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { atomicWrite } from "../_atomic_write.ts";
import { openForAppend } from "../_no_follow.ts";
import { utf8 } from "../bytes.ts";
import { OvtpError } from "../errors.ts";
import { parsePublicKey } from "../keys.ts";

/**
 * A member as stored by {@linkcode RoomStore}.
 *
 * @example Adding a member twice updates it
 * ```ts
 * import {
 *   fingerprint,
 *   formatPublicKey,
 *   generateIdentity,
 *   RoomStore,
 *   type StoredMember,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = new RoomStore(dir);
 * const { publicKey } = await generateIdentity();
 * const alice: StoredMember = {
 *   name: "alice",
 *   display: "Alice",
 *   fingerprint: await fingerprint(publicKey),
 *   key: formatPublicKey(publicKey),
 * };
 * await store.addMember("ops", alice);
 * await store.addMember("ops", { ...alice, display: "Alice (phone)" }); // Same fingerprint.
 * assert.deepEqual(await store.members("ops"), [{ ...alice, display: "Alice (phone)" }]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface StoredMember {
  /** Name from authorized_keys. */
  name: string;
  /** Chosen display name. */
  display: string;
  /** Fingerprint of its key. */
  fingerprint: string;
  /** Its public line. */
  key: string;
}

/**
 * Options of {@linkcode RoomStore}.
 *
 * @example Keeping only the newest envelopes
 * ```ts
 * import { RoomStore, type RoomStoreOptions } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const options: RoomStoreOptions = { maxQueued: 2, maxAgeMs: 24 * 3600_000 };
 * const store = new RoomStore(dir, options);
 * const bob = { name: "bob", display: "Bob", fingerprint: "SHA256:bob", key: "ovtp1 AAAA-bob" };
 * await store.addMember("ops", bob);
 * for (const n of [1, 2, 3]) await store.enqueue("ops", bob.key, new Uint8Array([n]));
 * assert.deepEqual(await store.takeQueued("ops", bob.key), [
 *   new Uint8Array([2]),
 *   new Uint8Array([3]),
 * ]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface RoomStoreOptions {
  /** Envelopes kept per offline member per room; the oldest go first. @default 1000 */
  maxQueued?: number;
  /** Age after which a kept envelope is dropped. @default 7 days */
  maxAgeMs?: number;
}

const RECORD_HEADER = 12;

/**
 * Rooms on disk, for a {@linkcode ChatRelay}. Calls for one room are
 * serialized.
 *
 * @example What the relay keeps for an offline member
 * ```ts
 * import {
 *   ChatRelay,
 *   fingerprint,
 *   formatPublicKey,
 *   generateIdentity,
 *   RoomStore,
 *   SILENT_LOGGER,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = new RoomStore(`${dir}/rooms`);
 * const relay = new ChatRelay(store, SILENT_LOGGER); // serve({ ..., chat: relay })
 * assert.deepEqual(await store.members("ops"), []); // A room nobody joined yet.
 *
 * // What the relay does when Bob joins, then when a message for him arrives while he is away.
 * const { publicKey } = await generateIdentity();
 * const bob = {
 *   name: "bob",
 *   display: "Bob",
 *   fingerprint: await fingerprint(publicKey),
 *   key: formatPublicKey(publicKey),
 * };
 * await store.addMember("ops", bob);
 * const envelope = new Uint8Array([1, 2, 3]); // Sealed by a ChatSession: ciphertext only.
 * await store.enqueue("ops", bob.key, envelope);
 *
 * assert.deepEqual(await store.members("ops"), [bob]);
 * assert.deepEqual(await store.takeQueued("ops", bob.key), [envelope]);
 * assert.deepEqual(await store.takeQueued("ops", bob.key), []); // Taken means removed.
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class RoomStore {
  readonly #dir: string;
  readonly #maxQueued: number;
  readonly #maxAgeMs: number;
  #locks = new Map<string, Promise<unknown>>();

  /** Stores rooms under `dir`. */
  constructor(dir: string, options: RoomStoreOptions = {}) {
    this.#dir = dir;
    this.#maxQueued = options.maxQueued ?? 1000;
    this.#maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600_000;
  }

  /** The members of `room` (empty for a new room). */
  members(room: string): Promise<StoredMember[]> {
    return this.#locked(room, () => this.#readMembers(room));
  }

  /** Adds or updates a member (by fingerprint). */
  addMember(room: string, member: StoredMember): Promise<void> {
    return this.#locked(room, async () => {
      const members = (await this.#readMembers(room)).filter((m) =>
        m.fingerprint !== member.fingerprint
      );
      members.push(member);
      await Deno.mkdir(join(this.#dir, room), { recursive: true, mode: 0o700 });
      await atomicWrite(
        join(this.#dir, room, "members.json"),
        JSON.stringify(members, null, 1) + "\n",
        0o600,
      );
    });
  }

  /** Keeps an envelope for an offline member. */
  enqueue(room: string, key: string, envelope: Uint8Array): Promise<void> {
    return this.#locked(room, async () => {
      const records = await this.#readQueue(room, key);
      records.push({ storedAt: Date.now(), envelope });
      const kept = records.slice(-this.#maxQueued);
      if (kept.length === records.length) {
        await appendRecord(this.#queuePath(room, key), records[records.length - 1]);
      } else {
        await this.#writeQueue(room, key, kept);
      }
    });
  }

  /** Takes (and removes) what was kept for a member, oldest first, dropping expired ones. */
  takeQueued(room: string, key: string): Promise<Uint8Array[]> {
    return this.#locked(room, async () => {
      const records = await this.#readQueue(room, key);
      await Deno.remove(this.#queuePath(room, key)).catch(() => {});
      const oldest = Date.now() - this.#maxAgeMs;
      return records.filter((r) => r.storedAt >= oldest).map((r) => r.envelope);
    });
  }

  #queuePath(room: string, key: string): string {
    const hash = createHash("sha256").update(utf8(key)).digest("hex").slice(0, 32);
    return join(this.#dir, room, `${hash}.queue`);
  }

  async #readMembers(room: string): Promise<StoredMember[]> {
    const path = join(this.#dir, room, "members.json");
    let parsed: unknown;
    try {
      parsed = JSON.parse(await Deno.readTextFile(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw new OvtpError("io", `Cannot read room members "${path}": ${(error as Error).message}`);
    }
    // The relay uses every field (and parses the key) at once: a damaged
    // file is refused here, naming it, not as a TypeError in the relay.
    if (!Array.isArray(parsed) || !parsed.every(isStoredMember)) {
      throw new OvtpError("io", `Cannot read room members "${path}": not a list of members`);
    }
    return parsed;
  }

  async #readQueue(room: string, key: string) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.#queuePath(room, key));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
    const records: { storedAt: number; envelope: Uint8Array }[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // A record cut short by a crash is dropped with everything after it.
    for (let offset = 0; offset + RECORD_HEADER <= bytes.length;) {
      const storedAt = Number(view.getBigUint64(offset));
      const length = view.getUint32(offset + 8);
      const start = offset + RECORD_HEADER;
      if (start + length > bytes.length) break;
      records.push({ storedAt, envelope: bytes.slice(start, start + length) });
      offset = start + length;
    }
    return records;
  }

  async #writeQueue(
    room: string,
    key: string,
    records: { storedAt: number; envelope: Uint8Array }[],
  ) {
    const parts = records.map(encodeRecord);
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    await atomicWrite(this.#queuePath(room, key), out, 0o600);
  }

  #locked<T>(room: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(room) ?? Promise.resolve();
    const next = previous.then(work, work);
    this.#locks.set(room, next.catch(() => {}));
    return next;
  }
}

function isStoredMember(value: unknown): value is StoredMember {
  const m = value as Record<string, unknown>;
  return typeof m === "object" && m !== null && typeof m.name === "string" &&
    typeof m.display === "string" && typeof m.fingerprint === "string" &&
    typeof m.key === "string" && parsesAsKey(m.key);
}

function parsesAsKey(line: string): boolean {
  try {
    parsePublicKey(line);
    return true;
  } catch {
    return false;
  }
}

function encodeRecord(record: { storedAt: number; envelope: Uint8Array }): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER + record.envelope.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(record.storedAt));
  view.setUint32(8, record.envelope.length);
  out.set(record.envelope, RECORD_HEADER);
  return out;
}

async function appendRecord(path: string, record: { storedAt: number; envelope: Uint8Array }) {
  const file = await openForAppend(path, 0o600);
  try {
    const bytes = encodeRecord(record);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
  } finally {
    file.close();
  }
}
