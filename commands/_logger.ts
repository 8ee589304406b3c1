/**
 * The server's log on stderr: levels (`-q` warnings only, `-v` debug too)
 * and two formats, text lines or one JSON object per line.
 *
 * @module
 */

import type { LogFields, Logger } from "../lib/logger.ts";

/** How much to log. */
export type LogLevel = "quiet" | "normal" | "verbose";

/** A logger writing to stderr. */
export function stderrLogger(level: LogLevel, format: "text" | "json"): Logger {
  const line = (severity: "debug" | "info" | "warn", message: string, fields?: LogFields) => {
    const extra = Object.entries(fields ?? {}).filter(([, value]) => value !== undefined);
    const text = format === "json"
      ? JSON.stringify({
        time: new Date().toISOString(),
        level: severity,
        msg: message,
        ...Object.fromEntries(extra),
      })
      : `ovtp: ${
        severity === "warn" ? "warning: " : severity === "debug" ? "debug: " : ""
      }${message}${extra.length ? ` (${extra.map(([k, v]) => `${k}=${v}`).join(" ")})` : ""}`;
    // Synchronously, so that the last lines before an exit ("stopped") are
    // not lost with the process.
    writeAllSync(Deno.stderr, encoder.encode(text + "\n"));
  };
  return {
    info: (message, fields) => level !== "quiet" && line("info", message, fields),
    warn: (message, fields) => line("warn", message, fields),
    debug: (message, fields) => level === "verbose" && line("debug", message, fields),
  };
}

const encoder = new TextEncoder();

function writeAllSync(target: { writeSync(p: Uint8Array): number }, data: Uint8Array): void {
  try {
    let offset = 0;
    while (offset < data.length) offset += target.writeSync(data.subarray(offset));
  } catch {
    // A log that cannot be written (stderr closed) must not stop the server.
  }
}
