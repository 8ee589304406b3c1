/**
 * The server's limits when its options leave them out: one place, read by
 * serve() and by `ovtp listen`, whose help prints them from here.
 *
 * @module
 */

/**
 * The port `ovtp listen` uses when none is given, and the port
 * {@linkcode serve} listens on by default.
 *
 * @example The port to dial when the user names none
 * ```ts
 * import { DEFAULT_PORT } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const [hostname, port = String(DEFAULT_PORT)] = "example.org".split(":");
 * assert.equal(hostname, "example.org");
 * assert.equal(Number(port), 4747);
 * ```
 */
export const DEFAULT_PORT = 4747;

/** The address a server listens on by default: every interface. */
export const DEFAULT_HOSTNAME = "0.0.0.0";
/**
 * Open connections allowed at once. An idle connection costs the server
 * about 33 KiB (bench/idle_connections.ts): 10,000 fit in 400 MB.
 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** Open connections allowed from one address. */
export const DEFAULT_MAX_PER_ADDRESS = 64;
/** Handshakes allowed in progress at once. */
export const DEFAULT_MAX_HANDSHAKES = 128;
/** A connection idle this long is closed. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** Bytes queued for one client before it is dropped as not reading. */
export const DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024;
