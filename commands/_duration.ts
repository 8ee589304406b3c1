/** Parses a duration such as `90` (seconds), `30s`, `10m`, `8h` or `1d` into ms. */

import { usageError } from "./_cli.ts";

const UNIT_MS: Record<string, number> = {
  "": 1000,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The duration `text` in ms, at least 1 s and at most `maxMs`; else a usage error of `command`. */
export function parseDuration(text: string, flag: string, command: string, maxMs: number): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2]] : NaN;
  if (!(ms >= 1000 && ms <= maxMs)) {
    usageError(
      command,
      `Invalid ${flag} "${text}": give a number of seconds, or with s, m, h or d (e.g. 8h), ` +
        `at most ${maxMs / 86_400_000} days`,
    );
  }
  return ms;
}

/** `ms` in the largest unit that divides it exactly: 3,600,000 is `1h`. */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m"]) {
    if (ms > 0 && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms / 1000}s`;
}
