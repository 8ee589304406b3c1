/**
 * A secure channel: the Noise_XXhfs handshake over length-prefixed frames,
 * then encrypted records, over any byte stream (a TCP connection, a
 * WebSocket adapter, a pair of in-memory pipes).
 *
 * Each side proves in its handshake payload that it also holds the Ed25519
 * half of its identity, by signing the handshake hash so far; the peer's
 * full public key is known, and bound to this session, once the handshake
 * completes.
 *
 * @module
 */

import { concat, utf8 } from "../bytes.ts";
import { ed25519Sign, ed25519Verify, ed25519VerifyOnce } from "../crypto/mod.ts";
import { OvtpError } from "../errors.ts";
import {
  encodeFrame,
  encodeFrameInPlace,
  FRAME_HEADER_LENGTH,
  FrameReader,
  FramingError,
} from "./framing.ts";
import type { Identity, PublicKey } from "../identity/keys.ts";
import { BulkCipher, deriveBulkKey } from "./_bulk_cipher.ts";
import {
  MAX_BULK_PLAINTEXT as BULK_PLAINTEXT_LIMIT,
  releaseOpened,
  SEALED_POOL,
  takeOpened,
} from "./_bulk_buffers.ts";
import { CHACHA_POLY, DecryptError, TAG_LENGTH } from "./noise/aead.ts";
import type { CipherState } from "./noise/cipher_state.ts";
import { HandshakeError, HandshakeState, MAX_MESSAGE_LENGTH } from "./noise/handshake_state.ts";
import { XX_HFS } from "./noise/patterns.ts";
import { MLKEM768_PUBLIC_KEY_SIZE } from "../crypto/mod.ts";

/**
 * Any bidirectional byte stream, such as a `Deno.Conn`. Pass one as
 * {@linkcode ConnectOptions.stream} to run ovtp over something other than
 * a TCP connection the client opens itself.
 *
 * @example A connection wrapped to count the bytes received
 * ```ts
 * import { type ByteStream, generateIdentity, OvtpClient, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({ response: "x".repeat(1000) }),
 * });
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * let received = 0;
 * const counting: ByteStream = {
 *   readable: conn.readable.pipeThrough(
 *     new TransformStream({
 *       transform(chunk, controller) {
 *         received += chunk.length;
 *         controller.enqueue(chunk);
 *       },
 *     }),
 *   ),
 *   writable: conn.writable,
 *   close: () => conn.close(),
 * };
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 *   stream: counting,
 * });
 * const before = received;
 * await client.request("hi");
 * assert.ok(received - before > 1000); // The response, encrypted.
 * client.close();
 * await server.close();
 * ```
 */
export interface ByteStream {
  /** Bytes from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. */
  readonly writable: WritableStream<Uint8Array>;
  /** Closes both directions. */
  close(): void;
  /**
   * Reads into `p` as `Deno.Conn.read()` does. When present together with
   * {@linkcode write}, the channel uses these instead of `readable` and
   * `writable` (a `Deno.Conn` has both): a read waiting on a stream costs
   * an idle connection about 13 KiB more.
   */
  read?(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p` as `Deno.Conn.write()` does; see {@linkcode read}. */
  write?(p: Uint8Array): Promise<number>;
}

/** Writes whole chunks, in order. */
interface ChunkWriter {
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Whether a chunk's bytes have been copied out (to the kernel) once its
   * write settles, so that its buffer can be reused. A WritableStream may
   * hand the chunk itself on to its reader (an in-memory pipe): never.
   */
  readonly copies: boolean;
}

// The stream's own read() and write() when it has them (a Deno.Conn; its
// `readable` and `writable` are then never made), else its streams.
function endpoints(stream: ByteStream): { reader: FrameReader; writer: ChunkWriter } {
  const { read, write } = stream;
  if (typeof read === "function" && typeof write === "function") {
    let tail: Promise<unknown> = Promise.resolve();
    return {
      reader: new FrameReader({ read: (p) => read.call(stream, p) }),
      writer: {
        copies: true,
        // Chained, so that concurrent writes never interleave their pieces.
        write(chunk) {
          const done = tail.then(async () => {
            for (let at = 0; at < chunk.length;) at += await write.call(stream, chunk.subarray(at));
          });
          tail = done.catch(() => {});
          return done;
        },
      },
    };
  }
  const writer = stream.writable.getWriter();
  return {
    reader: new FrameReader(stream.readable),
    writer: { copies: false, write: (chunk) => writer.write(chunk) },
  };
}

/** The Noise prologue: both sides must use the same protocol version. */
export const PROLOGUE: Uint8Array = utf8("ovtp/1");
/** The full Noise protocol name of ovtp/1. */
export const PROTOCOL_NAME = "Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256";
/** The largest plaintext one record carries. */
export const MAX_RECORD_PLAINTEXT = MAX_MESSAGE_LENGTH - TAG_LENGTH;
/**
 * The largest plaintext of one bulk record (section 5.1): file data goes
 * in records this large, announced by ordinary records, because per-record
 * costs (a cipher set-up, a write, a read) dominate at 64 KiB.
 */
export const MAX_BULK_PLAINTEXT: number = BULK_PLAINTEXT_LIMIT;
/**
 * Bulk records sealed and queued for the socket before send() waits: the
 * next record is encrypted while the previous one is still being written.
 */
const SEALED_IN_FLIGHT = 2;
/** Default time allowed for the whole handshake. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

const PROOF_CONTEXT = utf8("ovtp/1 identity proof");
const PROOF_LENGTH = 32 + 64;
// Message 1 is e (32 bytes), e1 (1184) and the intent: empty, or a few bytes.
const FIRST_MESSAGE_LENGTH = 32 + MLKEM768_PUBLIC_KEY_SIZE;
/** The longest intent (the payload of Noise message 1) a responder accepts. */
export const MAX_INTENT_LENGTH = 64;

/** Options of {@linkcode SecureChannel.initiate} and {@linkcode SecureChannel.respond}. */
export interface ChannelOptions {
  /** This side's identity. */
  identity: Identity;
  /**
   * Called with the peer's verified public key before this side reveals
   * anything more; throwing aborts the handshake. The initiator uses it to
   * check known_hosts before sending its own identity.
   */
  verifyPeer?: (peer: PublicKey) => Promise<void> | void;
  /** Time allowed for the handshake. @default 10000 */
  handshakeTimeoutMs?: number;
  /**
   * The initiator's intent: the payload of Noise message 1, at most
   * {@linkcode MAX_INTENT_LENGTH} bytes, sent in clear but hashed into the
   * session (tampering fails the handshake). Empty for an ordinary
   * session; `pair` for a pairing connection. @default empty
   */
  intent?: Uint8Array;
}

/** An established channel: records in both directions. */
export class SecureChannel {
  #stream: ByteStream;
  #reader: FrameReader;
  #writer: ChunkWriter;
  #send: CipherState;
  #receive: CipherState;
  #bulkSend: BulkCipher;
  #bulkReceive: BulkCipher;
  #sealedInFlight = 0;
  #writeRoom: (() => void)[] = [];
  #writeError: unknown;
  /** The peer's public key, authenticated by the handshake. */
  readonly peer: PublicKey;
  /** The final handshake hash, unique to this session. */
  readonly handshakeHash: Uint8Array;
  /** The payload of Noise message 1: what the initiator opened the connection for. */
  readonly intent: Uint8Array;

  private constructor(
    stream: ByteStream,
    reader: FrameReader,
    writer: ChunkWriter,
    result: { send: CipherState; receive: CipherState; handshakeHash: Uint8Array },
    peer: PublicKey,
    intent: Uint8Array,
  ) {
    this.#stream = stream;
    this.#reader = reader;
    this.#writer = writer;
    this.#send = result.send;
    this.#receive = result.receive;
    // Spends nonce 0 of each direction (section 5.1), on both ends alike.
    this.#bulkSend = new BulkCipher(CHACHA_POLY, deriveBulkKey(result.send));
    this.#bulkReceive = new BulkCipher(CHACHA_POLY, deriveBulkKey(result.receive));
    this.handshakeHash = result.handshakeHash;
    this.peer = peer;
    this.intent = intent;
  }

  /** Runs the handshake as the initiator (the client). */
  static initiate(stream: ByteStream, options: ChannelOptions): Promise<SecureChannel> {
    return SecureChannel.#handshake(stream, options, true);
  }

  /** Runs the handshake as the responder (the server). */
  static respond(stream: ByteStream, options: ChannelOptions): Promise<SecureChannel> {
    return SecureChannel.#handshake(stream, options, false);
  }

  static async #handshake(
    stream: ByteStream,
    options: ChannelOptions,
    initiator: boolean,
  ): Promise<SecureChannel> {
    const { reader, writer } = endpoints(stream);
    const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(stream);
    }, timeoutMs);
    try {
      const state = await HandshakeState.create({
        pattern: XX_HFS,
        initiator,
        cipher: "ChaChaPoly",
        prologue: PROLOGUE,
        staticKey: {
          privateKey: options.identity.x25519Private,
          publicKey: options.identity.publicKey.x25519,
        },
      });
      let peer: PublicKey | undefined;
      const write = async (payload: Uint8Array) => {
        await writer.write(encodeFrame(await state.writeMessage(payload)));
      };
      const read = async (maxLength?: number, minLength?: number) => {
        const frame = await reader.read(maxLength, minLength);
        if (frame === null) {
          throw new OvtpError("network", "The peer closed the connection during the handshake");
        }
        return frame;
      };
      const proof = () => makeProof(options.identity, state.handshakeHash);
      const readPeer = async () => {
        const h = state.handshakeHash;
        const payload = await state.readMessage(await read());
        peer = await checkProof(payload, state.remoteStaticKey!, h, initiator);
        await options.verifyPeer?.(peer);
      };
      let intent = options.intent ?? new Uint8Array(0);
      if (intent.length > MAX_INTENT_LENGTH) throw new RangeError("The intent is too long");
      if (initiator) {
        await write(intent);
        await readPeer();
        await write(await proof());
      } else {
        // A copy: the payload is a view of message 1, whose 1.2 KB would
        // otherwise stay with the connection for its whole life.
        intent = (await state.readMessage(
          await read(FIRST_MESSAGE_LENGTH + MAX_INTENT_LENGTH, FIRST_MESSAGE_LENGTH),
        )).slice();
        await write(await proof());
        await readPeer();
      }
      const result = await state.split();
      return new SecureChannel(stream, reader, writer, result, peer!, intent);
    } catch (error) {
      closeQuietly(stream);
      if (timedOut) {
        throw new OvtpError("network", `The handshake timed out after ${timeoutMs} ms`);
      }
      throw toChannelError(error, "Handshake failed");
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Encrypts and writes one record of at most MAX_RECORD_PLAINTEXT bytes,
   * then one bulk record of at most MAX_BULK_PLAINTEXT bytes for each entry
   * of `bulk`; the record must announce them (section 6.1). Everything is
   * encrypted before this returns its promise, so the caller may reuse
   * every buffer once it settles. Without bulk records it settles once the
   * record is written; with them, once the last one is queued for writing
   * (at most SEALED_IN_FLIGHT of them are): a write that fails afterwards
   * closes the channel, and the next send() throws.
   */
  async send(plaintext: Uint8Array, bulk: readonly Uint8Array[] = []): Promise<void> {
    if (plaintext.length > MAX_RECORD_PLAINTEXT) {
      throw new RangeError(`A record holds at most ${MAX_RECORD_PLAINTEXT} bytes`);
    }
    if (bulk.some((body) => body.length > MAX_BULK_PLAINTEXT)) {
      throw new RangeError(`A bulk record holds at most ${MAX_BULK_PLAINTEXT} bytes`);
    }
    try {
      if (this.#writeError !== undefined) throw this.#writeError;
      if (bulk.length === 0) {
        // seal() leaves room for the length in front: no copy of the record.
        await this.#writer.write(encodeFrameInPlace(this.#send.encryptWithAd(EMPTY, plaintext)));
        return;
      }
      for (let i = 0; i < bulk.length; i++) {
        // One write per bulk record, the first behind the record that
        // announces it. A bulk record has no frame header: the record gave
        // its length.
        const head = i === 0 ? FRAME_HEADER_LENGTH + plaintext.length + TAG_LENGTH : 0;
        const out = this.#writer.copies
          ? SEALED_POOL.take()
          : new Uint8Array(head + bulk[i].length + TAG_LENGTH);
        const at = i === 0 ? this.#sealFrame(plaintext, out) : 0;
        const end = at + bulk[i].length + TAG_LENGTH;
        this.#bulkSend.sealInto(bulk[i], out.subarray(at, end));
        await this.#queueSealed(out, end);
      }
    } catch (error) {
      throw toChannelError(error, "Cannot send");
    }
  }

  // Encrypts the record into the front of `out`, framed; returns its length.
  #sealFrame(plaintext: Uint8Array, out: Uint8Array): number {
    const length = plaintext.length + TAG_LENGTH;
    this.#send.encryptWithAdInto(
      EMPTY,
      plaintext,
      out.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + length),
    );
    encodeFrameInPlace(out.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + length));
    return FRAME_HEADER_LENGTH + length;
  }

  // Queues the first `length` bytes of `out` for writing, after waiting for
  // room; `out` goes back to the pool once written.
  async #queueSealed(out: Uint8Array, length: number): Promise<void> {
    while (this.#sealedInFlight >= SEALED_IN_FLIGHT) {
      await new Promise<void>((resolve) => this.#writeRoom.push(resolve));
    }
    if (this.#writeError !== undefined) throw this.#writeError;
    this.#sealedInFlight++;
    this.#writer.write(out.subarray(0, length)).catch((error) => {
      this.#writeError ??= error;
      closeQuietly(this.#stream);
    }).finally(() => {
      if (this.#writer.copies) SEALED_POOL.give(out);
      this.#sealedInFlight--;
      this.#writeRoom.shift()?.();
    });
  }

  /**
   * Reads and decrypts one record; null when the peer closed the stream
   * cleanly between records. A forged, reordered or replayed record fails
   * authentication and throws: the connection must then be dropped.
   */
  async receive(): Promise<Uint8Array | null> {
    try {
      // A view into the reader's buffer: decryption copies it out at once.
      const frame = await this.#reader.readView(MAX_MESSAGE_LENGTH, TAG_LENGTH);
      if (frame === null) return null;
      return this.#receive.decryptWithAd(EMPTY, frame);
    } catch (error) {
      throw toChannelError(error, "Cannot receive");
    }
  }

  /**
   * Reads and decrypts the next bulk record, of `size` bytes of plaintext,
   * as the record just received announced. Throws like {@linkcode receive}.
   * The plaintext is the caller's: a later record never overwrites it
   * unless it is given back with releaseOpened() (lib/channel/_bulk_buffers.ts).
   */
  async receiveBulk(size: number): Promise<Uint8Array> {
    if (!(size >= 0 && size <= MAX_BULK_PLAINTEXT)) {
      throw new RangeError(`A bulk record holds at most ${MAX_BULK_PLAINTEXT} bytes`);
    }
    try {
      // readExact() returns a view into the reader's buffer; decryption
      // writes the plaintext to a pooled buffer, the one copy.
      const sealed = await this.#reader.readExact(size + TAG_LENGTH);
      const plaintext = takeOpened(size);
      try {
        this.#bulkReceive.openInto(sealed, plaintext);
      } catch (error) {
        releaseOpened(plaintext);
        throw error;
      }
      return plaintext;
    } catch (error) {
      throw toChannelError(error, "Cannot receive");
    }
  }

  /** See {@linkcode FrameReader.waitingSince}: when bytes last came while a read waits. */
  get waitingSince(): number | undefined {
    return this.#reader.waitingSince;
  }

  /** Closes the underlying stream. */
  close(): void {
    closeQuietly(this.#stream);
  }
}

const EMPTY = new Uint8Array(0);

async function makeProof(identity: Identity, h: Uint8Array): Promise<Uint8Array> {
  const signature = await ed25519Sign(identity.ed25519Private, concat(PROOF_CONTEXT, h));
  return concat(identity.publicKey.ed25519, signature);
}

// A client checks one server's proof per connection, and usually makes
// one: the check that is cheapest to start (see ed25519VerifyOnce). A
// server checks one per client, by the thousand: the fastest.
async function checkProof(
  payload: Uint8Array,
  x25519: Uint8Array,
  h: Uint8Array,
  initiator: boolean,
): Promise<PublicKey> {
  if (payload.length !== PROOF_LENGTH) {
    throw new HandshakeError(`Identity proof of ${payload.length} bytes, expected ${PROOF_LENGTH}`);
  }
  const ed25519 = payload.slice(0, 32);
  const verify = initiator ? ed25519VerifyOnce : ed25519Verify;
  if (!await verify(ed25519, payload.subarray(32), concat(PROOF_CONTEXT, h))) {
    throw new HandshakeError("The peer's identity proof has a bad signature");
  }
  return { x25519: x25519.slice(), ed25519 };
}

function closeQuietly(stream: ByteStream): void {
  try {
    stream.close();
  } catch {
    // Already closed.
  }
}

/** Maps low-level failures to an OvtpError that says what happened. */
function toChannelError(error: unknown, context: string): Error {
  if (error instanceof OvtpError) return error;
  if (error instanceof DecryptError) {
    return new OvtpError(
      "protocol",
      `${context}: a message failed authentication (corrupted or tampered with in transit)`,
      { cause: error },
    );
  }
  if (error instanceof FramingError || error instanceof HandshakeError) {
    return new OvtpError("protocol", `${context}: ${error.message}`, { cause: error });
  }
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.ConnectionAborted ||
    (error instanceof TypeError && /closed|locked|stream/i.test(error.message))
  ) {
    return new OvtpError("network", `${context}: the connection was closed`, { cause: error });
  }
  if (error instanceof Error && error.name === "OperationError") {
    return new OvtpError("protocol", `${context}: invalid key material from the peer`, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}
