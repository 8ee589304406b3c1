/**
 * The raw message link of a client connection: request ids, sending, and
 * the messages of one id delivered to whoever asked for them. The client
 * provides it; protocol extensions (transfers, chat) use it. A module of
 * its own so that neither side imports the other's internals for it.
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
