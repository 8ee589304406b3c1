/**
 * The logging sink the server writes to. The library never prints: the CLI
 * (or any program) passes a logger, and decides the format and the level.
 *
 * @module
 */

/**
 * Extra structured fields of a log event, such as `remote`, `name` and
 * `fingerprint`.
 *
 * @example Find who was refused
 * ```ts
 * import { fingerprint, generateIdentity, type LogFields, OvtpClient, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const refused: LogFields[] = [];
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve(undefined), // Nobody may connect.
 *   handler: () => ({}),
 *   logger: { info() {}, warn: (_message, fields = {}) => refused.push(fields) },
 * });
 * const stranger = await generateIdentity();
 * await assert.rejects(OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: stranger,
 * }));
 * await server.close();
 * assert.equal(refused[0].fingerprint, await fingerprint(stranger.publicKey));
 * assert.match(String(refused[0].remote), /^127\.0\.0\.1:/);
 * ```
 */
export type LogFields = Record<string, string | number | boolean | undefined>;

/**
 * Receives the server's log events. Pass one as `logger` to
 * {@linkcode serve}; `debug` is optional, so call it as `logger.debug?.()`.
 *
 * @example Collect the events of a server
 * ```ts
 * import { generateIdentity, type Logger, OvtpClient, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const logger: Logger = {
 *   info: (message, fields) => lines.push(`info ${message} ${fields?.name}`),
 *   warn: (message) => lines.push(`warn ${message}`),
 * };
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   logger,
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 * });
 * await client.request("hi");
 * client.close();
 * await server.close();
 * assert.equal(lines[0], "info client connected alice");
 * ```
 */
export interface Logger {
  /** Something normal happened (a client connected, a file arrived). */
  info(message: string, fields?: LogFields): void;
  /** Something was refused or failed, and the server carries on. */
  warn(message: string, fields?: LogFields): void;
  /** Detail for debugging (shown with `listen -v`). */
  debug?(message: string, fields?: LogFields): void;
}

/**
 * A logger that discards everything: the default of {@linkcode serve}, and a
 * fallback for code that takes an optional logger.
 *
 * @example Fall back to silence
 * ```ts
 * import { type Logger, SILENT_LOGGER } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * function cleanUp(logger: Logger = SILENT_LOGGER): number {
 *   logger.info("removed old uploads", { count: 2 });
 *   logger.debug?.("details");
 *   return 2;
 * }
 * assert.equal(cleanUp(), 2);
 * assert.equal(SILENT_LOGGER.info("ignored"), undefined);
 * assert.equal(SILENT_LOGGER.debug, undefined); // Hence `debug?.()`.
 * ```
 */
export const SILENT_LOGGER: Logger = {
  info() {},
  warn() {},
};
