/**
 * Strict flag parsing: an unknown or malformed flag is a usage error that
 * points to the command's help. Option tables (./_options.ts) build on it.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { OvtpError } from "../lib/errors.ts";
import { closest } from "./_suggest.ts";

type ParseSpec = NonNullable<ParseArgsConfig["options"]>;

/** Throws a usage error with a pointer to the command's help (or `hint`). */
export function usageError(command: string, message: string, hint?: string): never {
  throw new OvtpError("usage", message, { hint: hint ?? `see \`ovtp ${command} --help\`` });
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
    const unknown = (error as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" &&
      /^Unknown option '([^']+)'/.exec((error as Error).message)?.[1];
    if (!unknown) usageError(command, (error as Error).message.split("\n")[0]);
    // parseArgs says how to pass a positional starting with "-": not what a typo needs.
    const known = Object.entries(options).flatMap(([name, option]) => [
      `--${name}`,
      ...(option.short ? [`-${option.short}`] : []),
    ]);
    const near = closest(unknown.split("=")[0], known);
    usageError(
      command,
      `Unknown option ${unknown}`,
      near ? `did you mean ${near}? (see \`ovtp ${command} --help\`)` : undefined,
    );
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
