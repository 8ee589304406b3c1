import type { Message } from "../messages.ts";

/**
 * The replies to one request id, awaited one at a time, for the transfer
 * conversations (upload and download): a connection failure fails the wait.
 */
export class ReplyQueue {
  #messages: Message[] = [];
  #waiting: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  #error: Error | undefined;
  #onFailure = new Set<(error: Error) => void>();

  /** Delivers a reply. */
  push(message: Message): void {
    if (this.#waiting) {
      this.#waiting.resolve(message);
      this.#waiting = undefined;
    } else this.#messages.push(message);
  }

  /** Fails every wait: the connection ended. */
  fail(error: Error): void {
    this.#error = error;
    for (const reject of this.#onFailure) reject(error);
    this.#onFailure.clear();
    this.#waiting?.reject(error);
    this.#waiting = undefined;
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
    if (message) return Promise.resolve(message);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => this.#waiting = { resolve, reject });
  }
}
