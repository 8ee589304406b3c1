/**
 * Options declared once. A command lists its options in one table (each
 * one's type, default, parser and help text); the table gives parseArgs its
 * spec, the help its option lines, a config file its validation, and run()
 * its values, already parsed and typed. Defaults that are the library's
 * come from lib/, so that the help prints what the library does.
 *
 * @module
 */

import type { ParseArgsConfig } from "node:util";
import { OvtpError } from "../lib/errors.ts";
import { parseFlags, usageError } from "./_flags.ts";

/** One option of a command's table; `T` is its value once parsed. */
export interface Option<T> {
  /** A string option takes a value; a boolean one is a switch. */
  readonly type: "string" | "boolean";
  /** The one-letter form, without its dash. */
  readonly short?: string;
  /** Whether it may be repeated (its value is then the list given). */
  readonly multiple?: boolean;
  /** The value's name in the help (`SECONDS`), none for a switch. */
  readonly arg?: string;
  /** Its help text; `{default}` stands for {@linkcode Option.shown}. */
  readonly help: string;
  /** A second help line for another form of the same option (`--exec NAME=CMD`). */
  readonly also?: { readonly arg: string; readonly help: string };
  /** The value when it is not given. */
  readonly default: T;
  /** The default as the help shows it. */
  readonly shown?: string;
  /** Whether a config file may hold it (not where the config itself is). */
  readonly inFile: boolean;
  /** Turns the text given into the value; throws an Error saying why not. */
  readonly parse: (text: string, flag: string) => T;
}

/** A command's options, by long name. */
export type OptionTable = Record<string, Option<unknown>>;

/** The parsed values of a table's options. */
export type OptionValues<T extends OptionTable> = {
  -readonly [K in keyof T]: T[K] extends Option<infer V> ? V : never;
};

/** What every option constructor takes. */
interface Declaration<D> {
  arg?: string;
  help: string;
  short?: string;
  default?: D;
  /** false: a config file may not hold it. @default true */
  inFile?: boolean;
  also?: Option<unknown>["also"];
}

/** The value type: with a default it is always set, without one it may be undefined. */
type Valued<T, D> = [D] extends [undefined] ? T | undefined : T;

function declare<T, D extends T | undefined>(
  declaration: Declaration<D>,
  parse: (text: string, flag: string) => T,
  shown?: (value: T) => string,
): Option<Valued<T, D>> {
  const { default: value, inFile = true, ...rest } = declaration;
  return {
    type: "string",
    ...rest,
    default: value as Valued<T, D>,
    shown: value === undefined ? undefined : shown ? shown(value as T) : String(value),
    inFile,
    parse,
  };
}

/** A string taken as given. */
export function text<D extends string | undefined = undefined>(
  declaration: Declaration<D>,
): Option<Valued<string, D>> {
  return declare(declaration, (value) => value);
}

/**
 * A string parsed by `parse`, which throws an Error saying what is wrong;
 * `shown` writes the default as the help shows it.
 */
export function parsed<T, D extends T | undefined = undefined>(
  declaration: Declaration<D>,
  parse: (text: string, flag: string) => T,
  shown?: (value: T) => string,
): Option<Valued<T, D>> {
  return declare(declaration, parse, shown);
}

/** One of a few words. */
export function choice<W extends string>(
  declaration: Declaration<W> & { default: W; words: readonly W[] },
): Option<W> {
  const { words, ...rest } = declaration;
  return declare<W, W>(rest, (value, flag) => {
    if (!(words as readonly string[]).includes(value)) {
      throw new Error(`Invalid ${flag} "${value}": use ${words.join(" or ")}`);
    }
    return value as W;
  }) as Option<W>;
}

/** A whole number from `min` to `max`. */
export function integer<D extends number | undefined = undefined>(
  declaration: Declaration<D> & { min: number; max?: number },
): Option<Valued<number, D>> {
  const { min, max = 1e9, ...rest } = declaration;
  return declare(rest, (value, flag) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) invalid(flag, value);
    return n;
  });
}

/** A time in seconds (fractions allowed), as whole milliseconds; 0 only when `zero`. */
export function seconds<D extends number | undefined = undefined>(
  declaration: Declaration<D> & { zero?: boolean },
): Option<Valued<number, D>> {
  const { zero = false, ...rest } = declaration;
  return declare(rest, (value, flag) => {
    // Whole milliseconds: 0.7 s is 700, not 700.0000000000001.
    const ms = Math.round(Number(value) * 1000);
    if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(ms) || (ms <= 0 && !zero)) {
      invalid(flag, value);
    }
    return ms;
  }, (ms) => String(ms / 1000));
}

/** A size such as `1048576`, `100M`, `10G` or `1.5GiB`, in bytes. */
export function size<D extends number | undefined = undefined>(
  declaration: Declaration<D>,
): Option<Valued<number, D>> {
  return declare(declaration, parseSizeText, formatSize);
}

/** A switch: `--NAME`, `--no-NAME`, `--NAME=true|false`, or true/false in a config file. */
export function flag(declaration: Omit<Declaration<boolean>, "arg" | "default">): Option<boolean> {
  const { inFile = true, ...rest } = declaration;
  return { type: "boolean", ...rest, default: false, inFile, parse: (value) => value === "true" };
}

/** A repeatable string: the list of the values given. */
export function list(declaration: Omit<Declaration<string[]>, "default">): Option<string[]> {
  return { ...declare({ ...declaration, default: [] }, (value) => [value]), multiple: true };
}

function invalid(flag: string, value: string): never {
  throw new Error(`Invalid ${flag} "${value}"`);
}

/** Parses a size such as `1048576`, `100M`, `10G` or `1.5GiB` into bytes. */
export function parseSizeText(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!match) invalid(flag, text);
  const power = " kmgt".indexOf(match[2].toLowerCase() || " ");
  const bytes = Math.floor(Number(match[1]) * 1024 ** power);
  if (!Number.isSafeInteger(bytes)) invalid(flag, text);
  return bytes;
}

/** A size in the largest unit that divides it exactly: 16 MiB is `16M`. */
export function formatSize(bytes: number): string {
  for (const [power, unit] of [[4, "T"], [3, "G"], [2, "M"], [1, "K"]] as const) {
    if (bytes > 0 && bytes % 1024 ** power === 0) return `${bytes / 1024 ** power}${unit}`;
  }
  return String(bytes);
}

type ParseSpec = NonNullable<ParseArgsConfig["options"]>;

/** The parseArgs spec of a table, typed so that parseArgs types the flags it returns. */
export type SpecOf<T extends OptionTable> = {
  [K in keyof T]: T[K] extends Option<boolean> ? { type: "boolean"; short?: string }
    : T[K] extends Option<string[]> ? { type: "string"; short?: string; multiple: true }
    : { type: "string"; short?: string };
};

/** The parseArgs spec of a table. */
export function specOf<T extends OptionTable>(table: T): SpecOf<T> {
  const spec: ParseSpec = {};
  for (const [name, { type, short, multiple }] of Object.entries(table)) {
    spec[name] = { type, ...(short && { short }), ...(multiple && { multiple }) };
  }
  return spec as SpecOf<T>;
}

/**
 * One option's value from a flag parsed by parseFlags: the default when it
 * is not given, else the text parsed; a bad value is a usage error of `command`.
 */
export function valueOf<T>(
  option: Option<T>,
  name: string,
  given: string | undefined,
  command: string,
): T {
  if (given === undefined) return option.default;
  try {
    return option.parse(given, `--${name}`);
  } catch (error) {
    if (error instanceof OvtpError) throw error;
    usageError(command, (error as Error).message);
  }
}

/** A command line read against a table, before a config file is merged in. */
export interface ParsedOptions<T extends OptionTable> {
  /** The arguments that are not options. */
  positionals: string[];
  /** The values: the flags given, then `config`'s, then the defaults. */
  values(config?: Partial<OptionValues<T>>): OptionValues<T>;
}

/** Reads `args` against `table`; a bad flag or value is a usage error of `command`. */
export function parseOptions<T extends OptionTable>(
  table: T,
  args: string[],
  command: string,
): ParsedOptions<T> {
  const parsed = parseFlags(args, specOf(table) as ParseSpec, command);
  const { positionals } = parsed;
  const flags: Record<string, unknown> = parsed.values;
  const given = new Map<string, unknown>();
  for (const [name, option] of Object.entries(table)) {
    const raw = flags[name];
    if (raw === undefined) continue;
    given.set(name, typeof raw === "string" ? valueOf(option, name, raw, command) : raw);
  }
  return {
    positionals,
    values(config = {}) {
      const values: Record<string, unknown> = {};
      for (const [name, option] of Object.entries(table)) {
        values[name] = given.has(name)
          ? given.get(name)
          : Object.hasOwn(config, name)
          ? config[name as keyof T]
          : option.default;
      }
      return values as OptionValues<T>;
    },
  };
}

/** `--home DIR`: every command takes it. */
export const HOME = text({
  arg: "DIR",
  help: "use DIR instead of $OVTP_HOME or ~/.ovtp",
  inFile: false,
});

/**
 * `-i FILE` / `--identity FILE`: the key file to use instead of id_ovtp, for
 * one command. Only the identity changes: known_hosts, authorized_keys and
 * contacts stay the home's. Every command that uses the identity takes it.
 */
export const IDENTITY = text({
  short: "i",
  arg: "FILE",
  help: "use this key file, not id_ovtp (trust files unchanged)",
});
