/**
 * Strict flag parsing: an unknown or malformed flag is a usage error that
 * points to the command's help. Option tables (./_options.ts) build on it.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { OvtpError } from "../lib/errors.ts";

type ParseSpec = NonNullable<ParseArgsConfig["options"]>;

/** Throws a usage error with a pointer to the command's help. */
export function usageError(command: string, message: string): never {
  throw new OvtpError("usage", message, { hint: `see \`ovtp ${command} --help\`` });
}

/**
 * Parses flags strictly; an unknown or malformed flag is a usage error. A
 * boolean flag also takes `--no-NAME`, `--NAME=true` and `--NAME=false`, so
 * that a flag can switch off what a config file (listen.json) switched on.
 */
export function parseFlags<T extends ParseSpec>(args: string[], options: T, command: string) {
  try {
    return parseArgs({
      args: booleanValues(args, options),
      options,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    });
  } catch (error) {
    usageError(command, (error as Error).message.split("\n")[0]);
  }
}

/** Rewrites `--NAME=true` and `--NAME=false` of boolean flags (up to `--`) as parseArgs takes them. */
function booleanValues(args: string[], options: ParseSpec): string[] {
  const end = args.indexOf("--");
  return args.map((arg, i) => {
    const match = /^--([^=]+)=(true|false)$/.exec(arg);
    if (!match || (end >= 0 && i > end) || options[match[1]]?.type !== "boolean") return arg;
    return match[2] === "true" ? `--${match[1]}` : `--no-${match[1]}`;
  });
}
