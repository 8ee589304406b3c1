/**
 * The logging sink the server writes to. The library never prints: the CLI
 * (or any program) passes a logger, and decides the format and the level.
 *
 * @module
 */

/** Extra structured fields of a log event. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Receives the server's log events. */
export interface Logger {
  /** Something normal happened (a client connected, a file arrived). */
  info(message: string, fields?: LogFields): void;
  /** Something was refused or failed, and the server carries on. */
  warn(message: string, fields?: LogFields): void;
  /** Detail for debugging (shown with `listen -v`). */
  debug?(message: string, fields?: LogFields): void;
}

/** A logger that discards everything. */
export const SILENT_LOGGER: Logger = {
  info() {},
  warn() {},
};
