/**
 * The server's log on stderr: levels (`-q` warnings only, `-v` debug too)
 * and two formats, text lines or one JSON object per line.
 *
 * Messages and field values often hold what a client chose (its key's
 * name, a file name, a room, an error it provoked), so each event is
 * exactly one line whatever they contain: text lines show them in the
 * printable form of ./_printable.ts, and a field value with a space, `=`,
 * `"`, `(` or `)` in double quotes (`\"` and `\\` inside), so that a value
 * cannot pose as another field; JSON lines keep the exact values.
 *
 * @module
 */

import { writeAllSync } from "../lib/io/files.ts";
import type { LogFields, Logger } from "../lib/logger.ts";
import { jsonLine, printable } from "./_printable.ts";

/** How much to log. */
export type LogLevel = "quiet" | "normal" | "verbose";

/** A logger writing to stderr. */
export function stderrLogger(level: LogLevel, format: "text" | "json"): Logger {
  const line = (severity: "debug" | "info" | "warn", message: string, fields?: LogFields) => {
    const text = format === "json"
      ? jsonLogLine(severity, message, fields)
      : textLogLine(severity, message, fields);
    // Synchronously, so that the last lines before an exit ("stopped") are
    // not lost with the process.
    writeLine(encoder.encode(text + "\n"));
  };
  return {
    info: (message, fields) => level !== "quiet" && line("info", message, fields),
    warn: (message, fields) => line("warn", message, fields),
    debug: (message, fields) => level === "verbose" && line("debug", message, fields),
  };
}

const encoder = new TextEncoder();

function writeLine(bytes: Uint8Array): void {
  try {
    writeAllSync(Deno.stderr, bytes);
  } catch {
    // A log that cannot be written (stderr closed) must not stop the server.
  }
}

type Severity = "debug" | "info" | "warn";

function present(fields: LogFields | undefined) {
  return Object.entries(fields ?? {}).filter(([, value]) => value !== undefined);
}

/** `{"time","level","msg",...fields}` with the exact values. */
export function jsonLogLine(severity: Severity, message: string, fields?: LogFields): string {
  return jsonLine({
    time: new Date().toISOString(),
    level: severity,
    msg: message,
    ...Object.fromEntries(present(fields)),
  });
}

/** `ovtp: [warning: |debug: ]MESSAGE (key=value ...)`, always one line. */
export function textLogLine(severity: Severity, message: string, fields?: LogFields): string {
  const prefix = severity === "warn" ? "warning: " : severity === "debug" ? "debug: " : "";
  const extra = present(fields).map(([key, value]) => `${printable(key)}=${fieldValue(value)}`);
  return `ovtp: ${prefix}${printable(message)}${extra.length ? ` (${extra.join(" ")})` : ""}`;
}

function fieldValue(value: unknown): string {
  const text = String(value);
  if (text !== "" && !/[\s="()\\]/.test(text)) return printable(text);
  return `"${printable(text.replace(/["\\]/g, (c) => `\\${c}`))}"`;
}
