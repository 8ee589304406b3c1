/**
 * The options that limit an authorized key, as option tables: --allow,
 * --expires and --rate, for `add-key` and `invite`, and for `keys set`
 * with the words that lift a limit (`--allow all`, `--expires never`,
 * `--rate none`).
 *
 * @module
 */

import {
  type KeyChange,
  type KeyOptions,
  parseAllow,
  parseExpiry,
  parseRate,
} from "../lib/trust/key_options.ts";
import { parsed } from "./_options.ts";

const SERVICES_HELP = "only these services, comma-separated: message, call, call:NAME, " +
  "upload, download, chat, chat:ROOM";
const EXPIRES_HELP = "refuse the key after DATE (2026-12-31 or an ISO time)";
const RATE_HELP = "this key's request limit, e.g. 100/h (s, m, h, d)";

/** The options a new key gets (`add-key`, `invite`). */
export const KEY_OPTIONS = {
  allow: parsed({ arg: "LIST", help: `${SERVICES_HELP} (default: all)` }, parseAllow),
  expires: parsed({ arg: "DATE", help: EXPIRES_HELP }, parseExpiry),
  rate: parsed({ arg: "COUNT/UNIT", help: RATE_HELP }, parseRate),
};

/** The word that lifts each limit (`keys set` only). */
export const NO_LIMIT = { allow: "all", expires: "never", rate: "none" } as const;

/** A parser that reads `word` as `null`: the limit lifted. */
function liftable<T>(word: string, parse: (text: string) => T): (text: string) => T | null {
  return (text) => text === word ? null : parse(text);
}

/** The options `keys set` changes: each limit, or its word that lifts it. */
export const KEY_CHANGE_OPTIONS = {
  allow: parsed(
    { arg: "LIST", help: `(set) ${SERVICES_HELP}; "${NO_LIMIT.allow}" for every service` },
    liftable(NO_LIMIT.allow, parseAllow),
  ),
  expires: parsed(
    { arg: "DATE", help: `(set) ${EXPIRES_HELP}; "${NO_LIMIT.expires}" for no expiry` },
    liftable(NO_LIMIT.expires, parseExpiry),
  ),
  rate: parsed(
    {
      arg: "COUNT/UNIT",
      help: `(set) ${RATE_HELP}; "${NO_LIMIT.rate}" for the server's limit only`,
    },
    liftable(NO_LIMIT.rate, parseRate),
  ),
};

/** The key options given: a field for each one given, none for the others. */
export function keyOptionsOf(values: KeyOptions): KeyOptions;
export function keyOptionsOf(values: KeyChange): KeyChange;
export function keyOptionsOf(values: KeyChange): KeyChange {
  const change: KeyChange = {};
  for (const field of ["allow", "expires", "rate"] as const) {
    if (values[field] !== undefined) Object.assign(change, { [field]: values[field] });
  }
  return change;
}
