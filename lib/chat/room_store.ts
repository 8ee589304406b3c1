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
import { utf8 } from "../bytes.ts";

/** A member as stored. */
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

/** Options of {@linkcode RoomStore}. */
export interface RoomStoreOptions {
  /** Envelopes kept per offline member per room; the oldest go first. @default 1000 */
  maxQueued?: number;
  /** Age after which a kept envelope is dropped. @default 7 days */
  maxAgeMs?: number;
}

const RECORD_HEADER = 12;

/** Rooms on disk. Calls for one room are serialized. */
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
    try {
      const parsed = JSON.parse(await Deno.readTextFile(join(this.#dir, room, "members.json")));
      return Array.isArray(parsed) ? parsed : [];
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
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

function encodeRecord(record: { storedAt: number; envelope: Uint8Array }): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER + record.envelope.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(record.storedAt));
  view.setUint32(8, record.envelope.length);
  out.set(record.envelope, RECORD_HEADER);
  return out;
}

async function appendRecord(path: string, record: { storedAt: number; envelope: Uint8Array }) {
  const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  try {
    const bytes = encodeRecord(record);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
  } finally {
    file.close();
  }
}
