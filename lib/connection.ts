/**
 * Messages over a secure channel, in both directions at once: a writer that
 * packs queued message fragments into as few records as possible (one
 * encryption and one write for many pipelined requests), and a reader loop
 * that reassembles messages and hands them to a callback.
 *
 * @module
 */

import { MAX_RECORD_PLAINTEXT, type SecureChannel } from "./channel.ts";
import { OvtpError } from "./errors.ts";
import { encodeFragments, type Message, MessageAssembler, MessageError } from "./messages.ts";

/** Default bound on one application message. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** Options of {@linkcode Connection}. */
export interface ConnectionOptions {
  /**
   * Called for each complete message received, in order. When it returns a
   * promise, reading pauses until it settles: that is how a slow consumer
   * (a disk) pushes back on the sender through TCP.
   */
  onMessage: (message: Message) => void | Promise<void>;
  /** The largest message accepted. @default 16 MiB */
  maxMessageSize?: number;
  /** Close after this long without receiving anything; 0 disables. @default 0 */
  idleTimeoutMs?: number;
}

interface Pending {
  fragments: Uint8Array[];
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A message connection over an established channel. */
export class Connection {
  #channel: SecureChannel;
  #options: ConnectionOptions;
  #queue: Pending[] = [];
  #flushing = false;
  #closed: Error | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /** Wraps `channel`; call {@linkcode run} to start receiving. */
  constructor(channel: SecureChannel, options: ConnectionOptions) {
    this.#channel = channel;
    this.#options = options;
  }

  /** The channel underneath. */
  get channel(): SecureChannel {
    return this.#channel;
  }

  /**
   * Queues a message; resolves once it has been written. Messages are
   * written in the order they were sent.
   */
  send(message: Message): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      this.#queue.push({ fragments: encodeFragments(message), resolve, reject });
      if (!this.#flushing) this.#flush();
    });
  }

  /**
   * Receives until the peer closes. Resolves on a clean close, rejects with
   * an OvtpError when the peer breaks the protocol or the network fails.
   */
  async run(): Promise<void> {
    const assembler = new MessageAssembler(
      this.#options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    );
    try {
      while (true) {
        this.#armIdleTimer();
        const record = await this.#channel.receive();
        if (record === null) break;
        for (const message of assembler.push(record)) {
          const pending = this.#options.onMessage(message);
          if (pending) await pending;
        }
      }
      this.close();
    } catch (error) {
      const failure = error instanceof MessageError
        ? new OvtpError("protocol", `Protocol error: ${error.message}`, { cause: error })
        : this.#closed ?? error as Error;
      this.close(failure);
      throw failure;
    } finally {
      clearTimeout(this.#idleTimer);
    }
  }

  /** Closes the connection; queued messages fail with `reason`. */
  close(reason?: Error): void {
    if (!this.#closed) {
      this.#closed = reason ?? new OvtpError("network", "The connection is closed");
    }
    clearTimeout(this.#idleTimer);
    for (const pending of this.#queue.splice(0)) pending.reject(this.#closed);
    this.#channel.close();
  }

  #armIdleTimer(): void {
    const ms = this.#options.idleTimeoutMs ?? 0;
    if (ms <= 0) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.close(new OvtpError("network", `Idle for ${ms} ms; closing`));
    }, ms);
  }

  // Writes queued fragments, packing as many as fit into each record. While
  // one record is being written, new messages queue up and go out together
  // in the next one.
  async #flush(): Promise<void> {
    this.#flushing = true;
    let finished: Pending[] = [];
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const parts: Uint8Array[] = [];
        finished = [];
        let size = 0;
        while (this.#queue.length > 0) {
          const head = this.#queue[0];
          const next = head.fragments[0];
          if (size + next.length > MAX_RECORD_PLAINTEXT) break;
          parts.push(next);
          size += next.length;
          head.fragments.shift();
          if (head.fragments.length === 0) finished.push(this.#queue.shift()!);
        }
        await this.#channel.send(pack(parts, size));
        for (const pending of finished) pending.resolve();
        finished = [];
      }
    } catch (error) {
      this.close(error as Error);
      for (const pending of finished) pending.reject(error as Error);
    } finally {
      this.#flushing = false;
    }
  }
}

function pack(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
