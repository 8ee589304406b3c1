/**
 * The sendfile/getfile progress bar (on a terminal only: a bar, percent,
 * sizes, rate and ETA) and the human-readable sizes and rates of the final
 * line, all in binary (IEC) units: KiB, MiB/s.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { FramingError } from "../lib/channel/framing.ts";
import type { TransferProgress } from "../lib/services/transfer/sender.ts";
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

/** Formats a rate in the same binary units as sizes: `11.0 MiB/s`. */
export function formatRate(bytes: number, seconds: number): string {
  return `${formatBytes(Math.round(bytes / Math.max(seconds, 1e-6)))}/s`;
}

const BAR_WIDTH = 24;

/** `[#########...............]`: `fraction` (0..1) of BAR_WIDTH filled. */
export function drawBar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}]`;
}

/** The terminal's width, or 80 when it cannot be known. */
function columns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * A progress bar on stderr: drawn at a file's first progress, as scp does,
 * then redrawn at most five times a second. (It used to wait 200 ms from the
 * process's start: a file sent faster than that never showed a bar.)
 */
export class ProgressBar {
  #enabled: boolean;
  #lastDraw = -Infinity;
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

  /**
   * Updates the bar; cheap when nothing needs drawing. A file's last bytes
   * are always drawn: the bar then stays as it is while the other side
   * verifies and stores the file, which can take a while (an fsync), and it
   * must not stay at 97% meanwhile.
   */
  update(progress: TransferProgress): void {
    if (!this.#enabled) return;
    const now = performance.now();
    const complete = progress.total !== null && progress.done >= progress.total;
    if (now - this.#lastDraw < REDRAW_MS && !complete) return;
    this.#lastDraw = now;
    const seconds = (now - this.#start) / 1000;
    const rate = (progress.done - this.#startBytes) / Math.max(seconds, 1e-6);
    const speed = formatRate(progress.done - this.#startBytes, seconds);
    let stats: string;
    if (progress.total !== null && progress.total > 0) {
      const fraction = progress.done / progress.total;
      const eta = (progress.total - progress.done) / rate;
      stats = `${drawBar(fraction)} ${Math.min(100, 100 * fraction).toFixed(0).padStart(3)}%  ${
        formatBytes(progress.done)
      } / ${formatBytes(progress.total)}  ${speed}  ETA ${formatDuration(eta)}`;
    } else {
      stats = `${formatBytes(progress.done)}  ${speed}`;
    }
    // One line that fits the terminal, or it wraps and each redraw leaves a
    // copy: the name is cut first, the figures kept.
    const width = columns() - 1;
    let name = printable(progress.name);
    const room = width - stats.length - 2;
    if (name.length > room) name = room > 3 ? `…${name.slice(name.length - room + 1)}` : "";
    const line = (name ? `${name}  ${stats}` : stats).slice(0, width);
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
    this.#drawn = true;
  }

  /** Erases the bar, so the final line starts clean. */
  clear(): void {
    if (this.#drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    this.#drawn = false;
    this.#lastDraw = -Infinity;
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
