/**
 * The raw message link of a client connection: request ids, sending, and
 * the messages of one id delivered to whoever asked for them; and an
 * exchange over it ({@linkcode openExchange}: one id, its replies in order,
 * with back-pressure), which uploads and downloads run on. The client
 * provides the link; protocol extensions (transfers, chat) use it. A module
 * of its own so that neither side imports the other's internals for it.
 *
 * @module
 */

import type { Message } from "../channel/messages.ts";

/** The connection a transfer runs on (an OvtpClient provides one). */
export interface MessageLink {
  /** A fresh request id. */
  nextId(): number;
  /** Queues a message; resolves once written. */
  send(message: Message): Promise<void>;
  /**
   * Delivers the messages with `id` to `onMessage`, and a connection failure
   * to `onError`; returns a function that stops the delivery. A promise from
   * `onMessage` pauses reading from the connection until it settles (or the
   * delivery stops).
   */
  subscribe(
    id: number,
    onMessage: (message: Message) => void | Promise<void>,
    onError: (error: Error) => void,
  ): () => void;
}

/**
 * Replies held before {@linkcode ReplyQueue.push} asks the connection to
 * stop reading: four 1 MiB Data messages of a download.
 */
export const MAX_HELD_REPLIES = 4;

/**
 * The replies to one request id, awaited one at a time, for the transfer
 * conversations (upload and download): a connection failure fails the wait.
 * It holds at most {@linkcode MAX_HELD_REPLIES} before pushing back, so a
 * download to a slow disk, or a server that floods, slows the connection
 * down instead of filling memory.
 */
export class ReplyQueue {
  #messages: Message[] = [];
  #drained: (() => void)[] = [];
  #waiting: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  #error: Error | undefined;
  #onFailure = new Set<(error: Error) => void>();

  /**
   * Delivers a reply. Returns a promise, to be awaited before reading more,
   * when MAX_HELD_REPLIES are waiting to be taken; it settles once one is
   * taken or the queue fails.
   */
  push(message: Message): Promise<void> | undefined {
    if (this.#waiting) {
      this.#waiting.resolve(message);
      this.#waiting = undefined;
      return undefined;
    }
    this.#messages.push(message);
    if (this.#messages.length < MAX_HELD_REPLIES || this.#error) return undefined;
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Replies waiting to be taken. */
  get held(): number {
    return this.#messages.length;
  }

  /** Fails every wait: the connection ended. */
  fail(error: Error): void {
    this.#error = error;
    for (const reject of this.#onFailure) reject(error);
    this.#onFailure.clear();
    this.#waiting?.reject(error);
    this.#waiting = undefined;
    for (const resume of this.#drained.splice(0)) resume();
  }

  /**
   * Settles as `promise` does, or rejects as soon as the connection fails.
   * Nothing stays attached to the queue once `promise` settles: a
   * Promise.race against one long-lived promise per chunk kept every chunk
   * reachable from that promise, so sending a 1 GiB file held 1 GiB.
   */
  orFailure<T>(promise: Promise<T>): Promise<T> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise<T>((resolve, reject) => {
      this.#onFailure.add(reject);
      promise.then(resolve, reject).finally(() => this.#onFailure.delete(reject));
    });
  }

  /** A reply that arrived without being awaited (an early refusal). */
  peek(): Message | undefined {
    if (this.#error) throw this.#error;
    return this.#messages[0];
  }

  /** The next reply, in order. */
  next(): Promise<Message> {
    const message = this.#messages.shift();
    if (message) {
      if (this.#messages.length < MAX_HELD_REPLIES) {
        for (const resume of this.#drained.splice(0)) resume();
      }
      return Promise.resolve(message);
    }
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => this.#waiting = { resolve, reject });
  }
}

/**
 * A fresh id on `link` and the queue of the replies to it: what one
 * transfer, download or listing talks through. Disposing it (`using`)
 * stops the delivery.
 */
export function openExchange(link: MessageLink): { id: number; replies: ReplyQueue } & Disposable {
  const id = link.nextId();
  const replies = new ReplyQueue();
  const unsubscribe = link.subscribe(id, (m) => replies.push(m), (e) => replies.fail(e));
  return { id, replies, [Symbol.dispose]: unsubscribe };
}
