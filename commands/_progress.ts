/**
 * The sendfile progress bar (on a terminal only) and the human-readable
 * sizes and rates of its final line.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { FramingError } from "../lib/framing.ts";
import type { TransferProgress } from "../lib/transfer/sender.ts";
import { printable } from "./_printable.ts";

const REDRAW_MS = 200;
const encoder = new TextEncoder();

/** Formats bytes with binary units: `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Formats a rate in bytes per second as `MB/s` (10^6 bytes). */
export function formatRate(bytes: number, seconds: number): string {
  return `${(bytes / Math.max(seconds, 1e-6) / 1e6).toFixed(1)} MB/s`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** A progress bar on stderr, redrawn at most five times a second. */
export class ProgressBar {
  #enabled: boolean;
  #lastDraw = 0;
  #start = performance.now();
  #startBytes = 0;
  #drawn = false;

  /** Draws only when `enabled` (stderr is a terminal and not --quiet). */
  constructor(enabled: boolean) {
    this.#enabled = enabled;
  }

  /** Restarts the clock for a new file, after `resumedBytes` already held. */
  reset(resumedBytes = 0): void {
    this.#start = performance.now();
    this.#startBytes = resumedBytes;
  }

  /** Updates the bar; cheap when nothing needs drawing. */
  update(progress: TransferProgress): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    const seconds = (now - this.#start) / 1000;
    const rate = (progress.done - this.#startBytes) / Math.max(seconds, 1e-6);
    let line = `${printable(progress.name)}  ${formatBytes(progress.done)}`;
    if (progress.total !== null && progress.total > 0) {
      const percent = Math.min(100, (100 * progress.done) / progress.total);
      const eta = (progress.total - progress.done) / rate;
      line += ` / ${formatBytes(progress.total)}  ${percent.toFixed(0)}%  ${
        (rate / 1e6).toFixed(1)
      } MB/s  ETA ${formatDuration(eta)}`;
    } else {
      line += `  ${(rate / 1e6).toFixed(1)} MB/s`;
    }
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line.slice(0, 200)}`));
    this.#drawn = true;
  }

  /** Erases the bar, so the final line starts clean. */
  clear(): void {
    if (this.#drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    this.#drawn = false;
    this.#lastDraw = 0;
  }
}

/**
 * A cut connection (closed, or ended in the middle of a record): the same
 * command resumes, since both sides keep what arrived.
 */
export function resumeHint(error: unknown): unknown {
  if (!(error instanceof OvtpError) || error.hint) return error;
  const truncated = error.kind === "protocol" && error.cause instanceof FramingError &&
    error.cause.message.startsWith("The stream ended");
  if (error.kind !== "network" && !truncated) return error;
  return new OvtpError(error.kind, error.message, {
    hint: "run the same command again to resume",
    cause: error,
  });
}
