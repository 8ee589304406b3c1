/**
 * The flags that set an authorized key's options, shared by `add-key` and
 * `keys set`: --allow, --expires and --rate, and for `keys set` the words
 * that lift a limit (`--allow all`, `--expires never`, `--rate none`).
 *
 * @module
 */

import {
  type KeyChange,
  type KeyOptions,
  parseAllow,
  parseExpiry,
  parseRate,
} from "../lib/key_options.ts";
import { usageError } from "./_cli.ts";

/** The flags, for parseFlags. */
export const KEY_OPTION_FLAGS = {
  allow: { type: "string" },
  expires: { type: "string" },
  rate: { type: "string" },
} as const;

/** The word that lifts each limit (`keys set` only). */
export const NO_LIMIT = { allow: "all", expires: "never", rate: "none" } as const;

type OptionValues = { allow?: string; expires?: string; rate?: string };

const PARSERS = { allow: parseAllow, expires: parseExpiry, rate: parseRate };

/**
 * The options given on the command line: a field for each flag given,
 * `null` for a lifted limit when `liftable`; a malformed value is a usage
 * error of `command`.
 */
export function keyOptionFlags(values: OptionValues, command: string, liftable: false): KeyOptions;
export function keyOptionFlags(values: OptionValues, command: string, liftable: true): KeyChange;
export function keyOptionFlags(
  values: OptionValues,
  command: string,
  liftable: boolean,
): KeyChange {
  const change: KeyChange = {};
  for (const field of ["allow", "expires", "rate"] as const) {
    const text = values[field];
    if (text === undefined) continue;
    if (liftable && text === NO_LIMIT[field]) {
      change[field] = null;
      continue;
    }
    try {
      Object.assign(change, { [field]: PARSERS[field](text) });
    } catch (error) {
      usageError(command, (error as Error).message);
    }
  }
  return change;
}
