/**
 * The transfer engine: the steps every resumable transfer takes, in both
 * directions. Uploads (the client sends, the server's inbox receives) and
 * downloads (the server's served folder sends, the client receives) carry
 * them in their own messages (file_messages.ts, download_messages.ts;
 * docs/protocol.md sections 14 and 18), but the steps are these:
 *
 * 1. The receiver holds a partial file (partial_file.ts) and names its
 *    length and SHA-256.
 * 2. The sender starts after those bytes if its source's first bytes hash
 *    to the same value, else from the start: {@linkcode startAfter}.
 * 3. The data follows in bulk records, hashed as it goes:
 *    {@linkcode sendChunks}, and on the other side PartialFile.write.
 * 4. The end names the size and SHA-256 of the whole, which the receiver
 *    checks ({@linkcode endMismatch}) before the file takes its name.
 *
 * @module
 */

import { type Sha256Stream, sha256Stream } from "../../crypto/mod.ts";
import type { PartialFile } from "./partial_file.ts";

/** What the receiver holds: a length and the SHA-256 (hex) of those bytes. */
export interface HeldPrefix {
  offset: number;
  sha256: string | null;
}

/** Where a sender starts: the bytes skipped, their running hash, and the rest of the source. */
export interface SendStart {
  /** Bytes the receiver already holds (0: from the start). */
  offset: number;
  /** The SHA-256 of the source so far, to go on with. */
  hash: Sha256Stream;
  /** The source from `offset` on. */
  chunks: AsyncIterator<Uint8Array>;
  /** The part of the last chunk read that lies past `offset`, sent first. */
  pending?: Uint8Array;
}

/**
 * Reads the first `held.offset` bytes of the source that `read` opens and,
 * when they hash to `held.sha256`, starts after them; otherwise (another
 * source, a shorter one, nothing held) starts from the beginning, with
 * `read` called again for a fresh read.
 */
export async function startAfter(
  read: () => AsyncIterator<Uint8Array>,
  held: HeldPrefix | null,
): Promise<SendStart> {
  const chunks = read();
  const hash = sha256Stream();
  if (!held || held.offset === 0 || held.sha256 === null) return { offset: 0, hash, chunks };
  let seen = 0;
  let pending: Uint8Array | undefined;
  while (seen < held.offset) {
    const { value, done } = await chunks.next();
    if (done) return { offset: 0, hash: sha256Stream(), chunks: read() };
    const take = Math.min(value.length, held.offset - seen);
    hash.update(value.subarray(0, take));
    seen += take;
    if (take < value.length) pending = value.subarray(take);
  }
  if (hash.copy().digest("hex") !== held.sha256) {
    await chunks.return?.();
    return { offset: 0, hash: sha256Stream(), chunks: read() };
  }
  return { offset: seen, hash, chunks, pending };
}

/** Options of {@linkcode sendChunks}. */
export interface SendChunksOptions {
  /**
   * Wraps each wait for the source: the sender of an upload rejects it as
   * soon as the connection fails, so that a slow pipe does not keep a dead
   * connection waiting.
   */
  waitFor?: <T>(promise: Promise<T>) => Promise<T>;
  /** Checked before each chunk: true stops the transfer (the connection ended). */
  stopped?: () => boolean;
  /** Called after each chunk with the bytes sent so far, counting the offset. */
  onChunk?: (done: number) => void;
}

/**
 * Sends the rest of the source through `send` (one bulk record per chunk),
 * hashing each chunk while it is sealed; both settle before the source
 * reads into its buffer again. Returns the bytes sent after the offset.
 * On a failure the source is closed (not awaited: a read blocked on a
 * pipe ends only when the pipe says something).
 */
export async function sendChunks(
  start: SendStart,
  send: (chunk: Uint8Array) => Promise<void>,
  options: SendChunksOptions = {},
): Promise<number> {
  const waitFor = options.waitFor ?? ((promise) => promise);
  let sent = 0;
  const sendOne = async (chunk: Uint8Array) => {
    const [hashed, written] = await Promise.allSettled([
      start.hash.updateAsync(chunk),
      send(chunk),
    ]);
    if (written.status === "rejected") throw written.reason;
    if (hashed.status === "rejected") throw hashed.reason;
    sent += chunk.length;
    options.onChunk?.(start.offset + sent);
  };
  try {
    if (start.pending && start.pending.length > 0) await sendOne(start.pending);
    while (!options.stopped?.()) {
      const { value, done } = await waitFor(start.chunks.next());
      if (done) break;
      if (value.length > 0) await sendOne(value);
    }
    if (options.stopped?.()) await start.chunks.return?.();
  } catch (error) {
    start.chunks.return?.().catch(() => {});
    throw error;
  }
  return sent;
}

/**
 * What is wrong with the end a sender announced, against what the receiver
 * wrote: `size` or `hash`, or undefined when both match. Returns the
 * received SHA-256 too.
 */
export function endMismatch(
  partial: PartialFile,
  end: { size: number; sha256: string },
): { sha256: string; mismatch?: "size" | "hash" } {
  const sha256 = partial.hash.digest("hex");
  if (end.size !== partial.size) return { sha256, mismatch: "size" };
  if (end.sha256 !== sha256) return { sha256, mismatch: "hash" };
  return { sha256 };
}
