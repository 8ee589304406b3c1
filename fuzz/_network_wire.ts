/**
 * What every network fuzzer attack is made of: the context (server address,
 * identities), fragments and records, a genuine handshake, and a TCP
 * connection whose writes can be rewritten on their way out.
 */

import { writeAll } from "../lib/io/files.ts";
import { concat, utf8 } from "../lib/bytes.ts";
import { type ByteStream, SecureChannel } from "../lib/channel/channel.ts";
import type { Identity } from "../lib/identity/keys.ts";
import type { Message } from "../lib/channel/messages.ts";
import { isBulkNotice, MessageAssembler } from "../lib/channel/connection.ts";

export const encoder = new TextEncoder();
/** A value as JSON bytes, a control message body. */
export const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

/** What the attacks need to know about the server and the identities to use. */
export interface AttackContext {
  /** The server's address. */
  hostname: string;
  /** The server's port. */
  port: number;
  /** A client in the server's authorized_keys. */
  authorized: Identity;
  /** A client the server does not know. */
  stranger: Identity;
  /** A client whose authorized_keys entry has expired. */
  expired: Identity;
  /** The fingerprint of `authorized`. */
  authorizedFingerprint: string;
  /** An authorized client that joined the chat room "fuzz" before the first attack. */
  member: Identity;
  /** Authorized clients whose names are hostile paths (`.partial`, `..`, `a/b`, ...). */
  senders: readonly { name: string; identity: Identity }[];
  /** What the attacks learned that the checks between them need. */
  ledger: Ledger;
}

/** Facts that outlive one attack. */
export interface Ledger {
  /** The ids (hex) of the envelopes delivered to `member` so far: each at most once. */
  delivered: Set<string>;
  /** The ids (hex) of posts the relay must refuse: no queue may hold them. */
  refusedPosts: Set<string>;
}

/** Thrown when the server answered an attack wrongly (not merely refused it). */
export class AttackFailure extends Error {
  override name = "AttackFailure";
}

/** One fragment of a record's plaintext. */
export interface Fragment {
  type: number;
  id: number;
  body: Uint8Array;
}

export function f(type: number, id: number, body: Uint8Array | string): Fragment {
  return { type, id, body: typeof body === "string" ? utf8(body) : body };
}

/** Fragments back to back: type || id || length || body, each. */
export function render(fragments: readonly Fragment[]): Uint8Array {
  return concat(...fragments.map(({ type, id, body }) => {
    const out = new Uint8Array(7 + body.length);
    const view = new DataView(out.buffer);
    view.setUint8(0, type);
    view.setUint32(1, id);
    view.setUint16(5, body.length);
    out.set(body, 7);
    return out;
  }));
}

/** A bulk notice: the message of `type` and `id` is the next bulk record, of `size` bytes. */
export function bulkNotice(id: number, type: number, size: number): Fragment {
  const body = new Uint8Array(5);
  new DataView(body.buffer).setUint8(0, type);
  new DataView(body.buffer).setUint32(1, size);
  return f(0x7f, id, body);
}

/** A genuine handshake over `tap` as `identity`, which must succeed. */
export async function handshake(tap: TappedConn, identity: Identity): Promise<SecureChannel> {
  try {
    return await SecureChannel.initiate(tap, { identity, handshakeTimeoutMs: 5_000 });
  } catch (error) {
    throw new AttackFailure(`A genuine handshake failed: ${(error as Error).message}`);
  }
}

/** The next record, null at a clean close, "closed" on an error, or "timeout". */
export async function receiveWithin(
  channel: SecureChannel,
  ms: number,
): Promise<Uint8Array | null | "closed" | "timeout"> {
  const received = channel.receive().catch(() => "closed" as const);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => timer = setTimeout(resolve, ms, "timeout"));
  try {
    return await Promise.race([received, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function ignore(): void {}

/**
 * A TCP connection as a ByteStream whose writes can be rewritten (mutated,
 * cut short) on their way out, and are remembered for replays; raw bytes can
 * be written beside the channel's.
 */
export class TappedConn implements ByteStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /** Every chunk written so far, as it went out. */
  readonly written: Uint8Array[] = [];
  /** Rewrites each chunk the channel writes; `index` counts the channel's writes. */
  rewrite: ((chunk: Uint8Array, index: number) => Uint8Array) | undefined;
  #conn: Deno.TcpConn;
  #writes = 0;
  #closed = false;
  #silenced = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.readable = conn.readable;
    this.writable = new WritableStream({
      write: async (chunk) => {
        const out = this.rewrite ? this.rewrite(chunk, this.#writes) : chunk;
        this.#writes++;
        await this.writeRaw(out);
      },
    });
  }

  /** How many chunks the channel has written. */
  get writes(): number {
    return this.#writes;
  }

  /** Writes bytes as they are (nothing once writing has stopped). */
  async writeRaw(bytes: Uint8Array): Promise<void> {
    if (this.#silenced) return;
    this.written.push(bytes);
    await writeAll(this.#conn, bytes);
  }

  /** Drops every later write: the peer sees a stream that stops mid-frame. */
  stopWriting(): void {
    this.#silenced = true;
  }

  /** Shuts the write side down. */
  async closeWrite(): Promise<void> {
    this.#silenced = true;
    await this.#conn.closeWrite();
  }

  /**
   * Reads and discards what the server sends, until it closes, `enough`
   * bytes have come, or `ms` have passed. Needs the readable unlocked.
   */
  async drainRaw(ms: number, enough = Infinity): Promise<void> {
    const reader = this.readable.getReader();
    const deadline = Date.now() + ms;
    let received = 0;
    try {
      while (received < enough) {
        const left = deadline - Date.now();
        if (left <= 0) return;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const result = await Promise.race([
          reader.read(),
          new Promise<"timeout">((resolve) => timer = setTimeout(resolve, left, "timeout")),
        ]).catch(() => ({ done: true as const, value: undefined })).finally(() =>
          clearTimeout(timer)
        );
        if (result === "timeout" || result.done) return;
        received += result.value.length;
      }
    } finally {
      reader.cancel().catch(ignore);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * An authorized client's connection, spoken raw: fragments out, messages
 * in. A background reader collects every message the server sends, so an
 * attack can wait for the one it expects while it keeps writing.
 */
export class RawSession {
  /** Every message received so far, in order. */
  readonly received: Message[] = [];
  /** True once the server closed the connection (or it broke). */
  closed = false;
  readonly #tap: TappedConn;
  readonly #channel: SecureChannel;
  readonly #reading: Promise<void>;
  #wake: (() => void) | undefined;

  private constructor(tap: TappedConn, channel: SecureChannel) {
    this.#tap = tap;
    this.#channel = channel;
    this.#reading = this.#read();
  }

  /** Connects and runs a genuine handshake as `identity`. */
  static async open(context: AttackContext, identity: Identity): Promise<RawSession> {
    const conn = await Deno.connect({ hostname: context.hostname, port: context.port });
    conn.setNoDelay(true);
    const tap = new TappedConn(conn);
    try {
      return new RawSession(tap, await handshake(tap, identity));
    } catch (error) {
      tap.close();
      throw error;
    }
  }

  async #read(): Promise<void> {
    const assembler = new MessageAssembler(16 << 20);
    try {
      for (let record; (record = await this.#channel.receive()) !== null;) {
        for (const item of assembler.push(record)) {
          this.received.push(
            isBulkNotice(item)
              ? {
                type: item.type,
                id: item.id,
                body: await this.#channel.receiveBulk(item.bulkSize),
              }
              : item,
          );
        }
        this.#wake?.();
      }
    } catch {
      // A broken connection ends the reading like a close.
    }
    this.closed = true;
    this.#wake?.();
  }

  /**
   * Waits until `done()` holds, the connection closes, or `ms` pass (or,
   * with `quietMs`, nothing arrived for that long). Returns `done()`.
   */
  async until(done: () => boolean, ms: number, quietMs = Infinity): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done() && !this.closed) {
      const left = Math.min(deadline - Date.now(), quietMs);
      if (left <= 0) break;
      const before = this.received.length;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
      if (this.received.length === before && Date.now() < deadline && quietMs !== Infinity) {
        break;
      }
    }
    return done();
  }

  /** Sends fragments in one record; false once the server has closed. */
  async send(fragments: readonly Fragment[]): Promise<boolean> {
    return await this.sendRecord(render(fragments));
  }

  /** Sends one record's plaintext as it is; false once the server has closed. */
  async sendRecord(plaintext: Uint8Array): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.#channel.send(plaintext);
      return true;
    } catch {
      return false;
    }
  }

  /** The messages of type `type` received under `id`. */
  of(type: number, id?: number): Message[] {
    return this.received.filter((m) => m.type === type && (id === undefined || m.id === id));
  }

  /** Closes the connection and waits for the reader to stop. */
  async close(): Promise<void> {
    this.#channel.close();
    this.#tap.close();
    await this.#reading;
  }
}
