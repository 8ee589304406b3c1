/**
 * Options on an authorized_keys line, before the key, as OpenSSH has them:
 *
 * ```
 * allow="message,call:backup,upload,download,chat:ops",expires="2026-12-31T00:00:00Z",rate="100/h" ovtp1 AAAA... alice
 * ```
 *
 * - `allow`: the services the key may use. `message`, `call` (any named
 *   function) or `call:NAME`, `upload`, `download`, `chat` (any room) or
 *   `chat:ROOM`. Without `allow`, everything is allowed.
 * - `expires`: an ISO 8601 date or time after which the key is refused.
 * - `rate`: the key's own request limit, `COUNT/s|m|h|d`.
 *
 * @module
 */

/**
 * A rate: `count` requests per `perMs` milliseconds.
 *
 * @example Limit one key to 100 requests an hour
 * ```ts
 * import {
 *   formatAuthorizedKey,
 *   generateIdentity,
 *   parseAuthorizedKeys,
 *   type Rate,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const rate: Rate = { count: 100, perMs: 60 * 60 * 1000 };
 * const line = formatAuthorizedKey((await generateIdentity()).publicKey, "ci", { rate });
 * assert.match(line, /^rate="100\/h" ovtp1 /);
 * assert.deepEqual(parseAuthorizedKeys(line).entries[0].options.rate, rate);
 * ```
 */
export interface Rate {
  /** Requests per period (also the burst). */
  count: number;
  /** The period, in milliseconds. */
  perMs: number;
}

/**
 * The parsed options of one key.
 *
 * @example Grant a key a few services until a date
 * ```ts
 * import { generateIdentity, type KeyOptions, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const options: KeyOptions = {
 *   allow: ["message", "chat:ops"],
 *   expires: new Date("2030-01-01T00:00:00Z"),
 * };
 * await keystore.addAuthorizedKey((await generateIdentity()).publicKey, "dave", options);
 *
 * const { entries } = await keystore.readAuthorizedKeys();
 * assert.deepEqual(entries[0].options, options);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface KeyOptions {
  /** Allowed services; undefined means all. */
  allow?: string[];
  /** When the key stops being accepted. */
  expires?: Date;
  /** The key's own rate limit. */
  rate?: Rate;
}

/** The services a key can be allowed. */
export const SERVICES = ["message", "call", "upload", "download", "chat"] as const;

const PERIODS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SERVICE_PATTERN = /^(message|upload|download|call|chat)(:[A-Za-z0-9._-]{1,64})?$/;

/** Parses `COUNT/s|m|h|d`; throws SyntaxError. */
export function parseRate(text: string): Rate {
  const match = /^(\d{1,9})\/([smhd])$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) {
    throw new SyntaxError(`Invalid rate "${text}": expected COUNT/s, /m, /h or /d, e.g. 100/h`);
  }
  return { count: Number(match[1]), perMs: PERIODS[match[2]] };
}

/** Formats a rate back to `COUNT/unit`. */
export function formatRate(rate: Rate): string {
  const unit = Object.entries(PERIODS).find(([, ms]) => ms === rate.perMs)?.[0] ?? "s";
  return `${rate.count}/${unit}`;
}

/** Parses an `allow` list; throws SyntaxError naming a bad entry. */
export function parseAllow(text: string): string[] {
  const services = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const service of services) {
    if (!SERVICE_PATTERN.test(service) || /^(message|upload|download):/.test(service)) {
      throw new SyntaxError(
        `Unknown service "${service}": use message, call, call:NAME, upload, download, chat or chat:ROOM`,
      );
    }
  }
  if (services.length === 0) throw new SyntaxError("The allow list is empty");
  return services;
}

const ISO_EXPIRY =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,3})?)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?$/;

/** Parses an expiry date or time (ISO 8601); throws SyntaxError. */
export function parseExpiry(text: string): Date {
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  // The whole text must be one ISO form: Date would also read "2026-12-31
  // (note)" and roll T24:00 over into the next day.
  const day = ISO_EXPIRY.exec(text);
  // Date rolls a day that does not exist (2026-02-30) over into the next
  // month; check that the day is real.
  const calendar = new Date(0);
  if (day) calendar.setUTCFullYear(Number(day[1]), Number(day[2]) - 1, Number(day[3]));
  // formatOptions writes toISOString(), which leaves the 4-digit form
  // outside years 0 to 9999 (a time zone offset can get there): such a
  // line would not read back.
  const year = date.getUTCFullYear();
  if (
    !day || Number.isNaN(date.getTime()) || calendar.getUTCMonth() !== Number(day[2]) - 1 ||
    calendar.getUTCDate() !== Number(day[3]) || year < 0 || year > 9999
  ) {
    throw new SyntaxError(
      `Invalid expiry "${text}": expected a date like 2026-12-31 or 2026-12-31T18:00:00Z`,
    );
  }
  return date;
}

/**
 * Splits a line into its options and the rest (the key and name). Options
 * are `name=value` or `name="value"`, separated by commas, before the first
 * space outside quotes. Throws SyntaxError.
 */
export function splitOptions(line: string): { options: KeyOptions; rest: string } {
  // Without a leading `name=`, there are no options: the key parser then
  // says what is wrong with the line.
  if (!/^[a-z]+=/.test(line)) return { options: {}, rest: line };
  const options: KeyOptions = {};
  let i = 0;
  while (true) {
    const name = /^[a-z]+/.exec(line.slice(i))?.[0];
    if (!name || line[i + name.length] !== "=") {
      throw new SyntaxError(`Expected an option like allow="...", at "${line.slice(i, i + 20)}"`);
    }
    i += name.length + 1;
    let value: string;
    if (line[i] === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) throw new SyntaxError(`Unterminated quote in option ${name}`);
      value = line.slice(i + 1, end);
      i = end + 1;
    } else {
      value = /^[^,\s]*/.exec(line.slice(i))![0];
      i += value.length;
    }
    // A repeated option is refused: with "last one wins", a line meant to
    // restrict a key could be read as granting more than its author saw.
    if (Object.hasOwn(options, name)) throw new SyntaxError(`Option ${name} is given twice`);
    setOption(options, name, value);
    if (line[i] === ",") {
      i++;
      continue;
    }
    if (!/\s/.test(line[i] ?? "")) throw new SyntaxError("Expected a space after the options");
    return { options, rest: line.slice(i).trim() };
  }
}

function setOption(options: KeyOptions, name: string, value: string): void {
  switch (name) {
    case "allow":
      options.allow = parseAllow(value);
      return;
    case "expires":
      options.expires = parseExpiry(value);
      return;
    case "rate":
      options.rate = parseRate(value);
      return;
    default:
      throw new SyntaxError(`Unknown option "${name}": use allow, expires or rate`);
  }
}

/** Formats options for an authorized_keys line ("" when there are none). */
export function formatOptions(options: KeyOptions): string {
  const parts: string[] = [];
  if (options.allow) parts.push(`allow="${options.allow.join(",")}"`);
  if (options.expires) parts.push(`expires="${options.expires.toISOString()}"`);
  if (options.rate) parts.push(`rate="${formatRate(options.rate)}"`);
  return parts.join(",");
}

/**
 * Whether the options allow `service` (e.g. "upload"), or `service:detail`
 * for a named function or a room. Returns the refusal text, or undefined.
 */
export function refusal(options: KeyOptions, service: string, detail?: string): string | undefined {
  const allow = options.allow;
  if (!allow) return undefined;
  if (allow.includes(service)) return undefined;
  if (detail !== undefined && allow.includes(`${service}:${detail}`)) return undefined;
  const what = detail === undefined ? service : `${service}:${detail}`;
  return `Your key is not allowed to use ${what} (allowed: ${allow.join(", ")})`;
}

/**
 * A change to one key's options: a field given replaces that option, `null`
 * removes it (no limit), a field left out keeps what the key has.
 *
 * @example Narrow a key and lift its expiry
 * ```ts
 * import { generateIdentity, type KeyChange, Keystore } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const keystore = new Keystore(home);
 * const expires = new Date("2030-01-01T00:00:00Z");
 * await keystore.addAuthorizedKey((await generateIdentity()).publicKey, "ci", { expires });
 *
 * const change: KeyChange = { allow: ["upload"], expires: null };
 * const { after } = await keystore.updateAuthorizedKey("ci", change);
 * assert.deepEqual(after.options, { allow: ["upload"] });
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface KeyChange {
  /** New allowed services, or null for all. */
  allow?: string[] | null;
  /** New expiry, or null for none. */
  expires?: Date | null;
  /** New rate limit, or null for none (the server's limit only). */
  rate?: Rate | null;
  /** A new name for the key. */
  name?: string;
}

/** The options after `change`; see {@linkcode KeyChange}. */
export function applyKeyChange(options: KeyOptions, change: KeyChange): KeyOptions {
  const next: KeyOptions = { ...options };
  for (const field of ["allow", "expires", "rate"] as const) {
    if (!Object.hasOwn(change, field) || change[field] === undefined) continue;
    if (change[field] === null) delete next[field];
    else Object.assign(next, { [field]: change[field] });
  }
  return next;
}
