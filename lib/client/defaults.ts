/**
 * The client's limits when its options leave them out: one place, read by
 * the client and by the commands that connect, whose help prints them.
 *
 * @module
 */

/** Time allowed to connect and for the handshake. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
