/**
 * The client's side of a file transfer: offer, verify what the server
 * already holds and resume after it, stream the data while hashing it, and
 * wait for the server's verified result.
 *
 * @module
 */

import {
  checkAccept,
  checkResult,
  FileMessageType,
  type FileResult,
  sendChunks,
  type SendStart,
  startAfter,
} from "./engine.ts";
import { OvtpError } from "../../errors.ts";
import { decodeJson, encodeJson } from "../../channel/messages.ts";
import { type MessageLink, openExchange, type ReplyQueue } from "../../client/message_link.ts";
import type { FileSource } from "./sources.ts";

// Kept in lib/client/message_link.ts, which the client shares without importing
// transfer internals; re-exported for the transfer modules that use it here.
export type { MessageLink } from "../../client/message_link.ts";

/**
 * Progress of one transfer, as {@linkcode SendFileOptions.onProgress} and
 * {@linkcode FetchOptions.onProgress} report it.
 *
 * @example Formatting progress for a status line
 * ```ts
 * import type { TransferProgress } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function describe({ name, done, total }: TransferProgress): string {
 *   return total ? `${name}: ${Math.floor((done / total) * 100)}%` : `${name}: ${done} bytes`;
 * }
 * // client.sendFile(source, { onProgress: (p) => status.textContent = describe(p) })
 *
 * assert.equal(describe({ name: "a.iso", done: 512, total: 2048 }), "a.iso: 25%");
 * assert.equal(describe({ name: "stdin", done: 4096, total: null }), "stdin: 4096 bytes");
 * ```
 */
export interface TransferProgress {
  /** The file's name. */
  name: string;
  /** Bytes the server holds so far (including a resumed prefix). */
  done: number;
  /** The total, when known. */
  total: number | null;
}

/**
 * Options of {@linkcode OvtpClient.sendFile}.
 *
 * @example Following an upload's progress
 * ```ts
 * import {
 *   generateIdentity,
 *   Inbox,
 *   OvtpClient,
 *   pathSource,
 *   type SendFileOptions,
 *   serve,
 *   type TransferProgress,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(3 * 1024 * 1024));
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   inbox: new Inbox(`${dir}/inbox`),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 *
 * const seen: TransferProgress[] = [];
 * let resumedAt = 0;
 * const options: SendFileOptions = {
 *   onProgress: (progress) => seen.push({ ...progress }),
 *   onResume: (offset) => resumedAt = offset, // Only after an interrupted upload.
 * };
 * const sent = await client.sendFile(await pathSource(`${dir}/big.bin`), options);
 * assert.equal(resumedAt, 0);
 * assert.ok(seen.length > 1);
 * assert.deepEqual(seen.at(-1), { name: "big.bin", done: sent.size, total: sent.size });
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface SendFileOptions {
  /** Called as data is written (often: throttle any drawing). */
  onProgress?: (progress: TransferProgress) => void;
  /** Called when the server already holds a verified prefix. */
  onResume?: (offset: number) => void;
  /**
   * Called when the server held `held` bytes of an earlier transfer of this
   * name that do not match the source (it changed): the file starts over.
   */
  onRestart?: (held: number) => void;
}

/**
 * The outcome of a transfer the server verified and stored, as
 * {@linkcode OvtpClient.sendFile} resolves.
 *
 * @example The same name twice: the server keeps both
 * ```ts
 * import { generateIdentity, Inbox, OvtpClient, serve, streamSource } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 * import { createHash } from "node:crypto";
 *
 * const dir = await Deno.makeTempDir();
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   inbox: new Inbox(dir),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * const send = (text: string) =>
 *   client.sendFile(streamSource(ReadableStream.from([new TextEncoder().encode(text)]), "a.txt"));
 *
 * const first = await send("first");
 * assert.equal(first.path, "alice/a.txt");
 * assert.equal(first.size, 5);
 * assert.equal(first.sha256, createHash("sha256").update("first").digest("hex"));
 * assert.equal(first.renamed, false);
 * const second = await send("second");
 * assert.equal(second.path, "alice/a (1).txt");
 * assert.equal(second.renamed, true);
 * assert.equal(await Deno.readTextFile(`${dir}/alice/a.txt`), "first");
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface SentFile {
  /** The name sent. */
  name: string;
  /** Where the server stored it, relative to its inbox. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** SHA-256 (hex) of the content, computed here and confirmed by the server. */
  sha256: string;
  /** Bytes skipped because the server held them already. */
  resumedFrom: number;
  /** Whether the server renamed it to avoid overwriting a file. */
  renamed: boolean;
}

/** Sends one file and resolves once the server has verified and stored it. */
export async function sendFile(
  link: MessageLink,
  source: FileSource,
  options: SendFileOptions = {},
): Promise<SentFile> {
  using exchange = openExchange(link);
  const { id, replies } = exchange;
  try {
    await link.send({
      type: FileMessageType.Offer,
      id,
      body: encodeJson({
        name: source.name,
        size: source.size,
        mode: source.mode,
        resumable: source.resumable,
        // Absent for a lone file: an older server ignores the field.
        ...(source.folder === undefined ? {} : { folder: source.folder }),
        ...(source.mtime === undefined ? {} : { mtime: source.mtime }),
      }),
    });
    const first = await replies.next();
    if (first.type === FileMessageType.Result) throw refusal(checkResult(decodeJson(first.body)));
    if (first.type !== FileMessageType.Accept) throw protocolError(first.type);
    const accept = checkAccept(decodeJson(first.body));

    // Each chunk is hashed and sealed before the next is asked for (the
    // channel keeps its own copy, the ciphertext, for the socket), so the
    // source may reuse its buffers.
    const read = () => source.read({ reuse: true })[Symbol.asyncIterator]();
    const held = { offset: accept.offset, sha256: accept.prefix_sha256 };
    const start = await startAfter(read, source.resumable ? held : null);
    if (start.offset > 0) options.onResume?.(start.offset);
    await link.send({
      type: FileMessageType.Start,
      id,
      body: encodeJson({ offset: start.offset }),
    });
    if (start.offset === 0 && accept.offset > 0 && source.resumable) {
      options.onRestart?.(accept.offset);
    }
    const size = start.offset + await streamData(link, id, start, replies, source, options);
    const offset = start.offset;
    const sha256 = start.hash.digest("hex");
    await link.send({ type: FileMessageType.End, id, body: encodeJson({ size, sha256 }) });
    const last = await replies.next();
    if (last.type !== FileMessageType.Result) throw protocolError(last.type);
    const result = checkResult(decodeJson(last.body));
    if (result.status !== "ok") throw refusal(result);
    if (result.sha256 !== sha256 || result.size !== size) {
      throw new OvtpError("protocol", "The server confirmed a different size or SHA-256");
    }
    return {
      name: source.name,
      path: result.path ?? source.name,
      size,
      sha256,
      resumedFrom: offset,
      renamed: result.renamed ?? false,
    };
  } catch (error) {
    if (error instanceof OvtpError && error.kind === "network" && !source.resumable) {
      throw new OvtpError(
        "network",
        `${error.message}; "${source.name}" came from a stream, which cannot resume: send it again`,
        { cause: error },
      );
    }
    throw error;
  }
}

async function streamData(
  link: MessageLink,
  id: number,
  start: SendStart,
  replies: ReplyQueue,
  source: FileSource,
  options: SendFileOptions,
): Promise<number> {
  const abort = () =>
    link.send({ type: FileMessageType.Abort, id, body: encodeJson({}) }).catch(() => {});
  let sent: number;
  try {
    sent = await sendChunks(start, async (chunk) => {
      // The server refused midway (disk full, too large): stop at once.
      const early = replies.peek();
      if (early) {
        await abort();
        const result = checkResult(decodeJson(early.body));
        throw result.status === "ok" ? protocolError(early.type) : refusal(result);
      }
      await link.send({ type: FileMessageType.Data, id, body: chunk });
    }, {
      // A slow source (a pipe) must not keep a dead connection waiting.
      waitFor: (promise) => replies.orFailure(promise),
      onChunk: (done) => options.onProgress?.({ name: source.name, done, total: source.size }),
    });
  } catch (error) {
    if (error instanceof OvtpError && error.kind === "io") await abort();
    throw error;
  }
  if (source.size !== null && start.offset + sent !== source.size) {
    await abort();
    throw new OvtpError("io", `"${source.name}" changed size while it was being sent`);
  }
  return sent;
}

function refusal(result: FileResult): OvtpError {
  return new OvtpError("remote", `The server refused the file: ${result.message ?? result.code}`);
}

function protocolError(type: number): OvtpError {
  return new OvtpError("protocol", `Unexpected file transfer message type ${type}`);
}
