/**
 * `ovtp listen`'s settings: its flags, and the same settings read from a
 * JSON config file (~/.ovtp/listen.json or --config), flags winning. A
 * config file with an error is refused with its line and the reason.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { IDENTITY_OPTION } from "./_cli.ts";

/** listen's flags (the parseArgs spec); none has a default here, see {@linkcode DEFAULTS}. */
export const LISTEN_OPTIONS = {
  home: { type: "string" },
  ...IDENTITY_OPTION,
  config: { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  exec: { type: "string", multiple: true },
  "exec-timeout": { type: "string" },
  "max-exec": { type: "string" },
  "max-exec-per-key": { type: "string" },
  json: { type: "boolean" },
  "add-keys": { type: "string", multiple: true },
  "handshake-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  inbox: { type: "string" },
  rooms: { type: "string" },
  cluster: { type: "string" },
  "cluster-creds": { type: "string" },
  serve: { type: "string" },
  "max-file-size": { type: "string" },
  "keep-partial": { type: "string" },
  "max-partial": { type: "string" },
  rate: { type: "string" },
  "max-connections": { type: "string" },
  "max-per-address": { type: "string" },
  "max-handshakes": { type: "string" },
  "max-message-size": { type: "string" },
  "max-queued": { type: "string" },
  grace: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
  "log-format": { type: "string" },
} as const;

/** The settings' values, as strings, booleans and string lists. */
export type ListenSettings = Partial<
  Record<keyof typeof LISTEN_OPTIONS, string | boolean | string[]>
>;

/** Defaults of the settings that have one. */
export const DEFAULTS: ListenSettings = {
  host: "0.0.0.0",
  "exec-timeout": "30",
  "max-exec": "16",
  "max-exec-per-key": "4",
  "handshake-timeout": "10",
  "idle-timeout": "300",
  "max-connections": "10000",
  "max-per-address": "64",
  "max-handshakes": "128",
  "max-message-size": "16M",
  "max-queued": "32M",
  grace: "10",
  "keep-partial": "604800",
  "max-partial": "16G",
  "log-format": "text",
};

/** Settings a config file may not hold (they say where the config is). */
const NOT_IN_FILE = new Set(["home", "config"]);

/**
 * Reads a config file. A missing file is fine unless `required`; anything
 * else wrong is an OvtpError naming the file, the line and the reason.
 */
export async function readConfig(path: string, required: boolean): Promise<ListenSettings> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !required) return {};
    throw new OvtpError("usage", `Cannot read config file "${path}": ${(error as Error).message}`);
  }
  const fail = (line: number, reason: string): never => {
    throw new OvtpError("usage", `Invalid config file "${path}", line ${line}: ${reason}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message)?.[1];
    const line = position !== undefined
      ? text.slice(0, Number(position)).split("\n").length
      : Number(/line (\d+)/.exec(message)?.[1] ?? 1);
    fail(line, message.replace(/ in JSON at position \d+.*$/, "").replace(/^JSON\.parse: /, ""));
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    fail(1, "expected a JSON object of settings");
  }
  const settings: ListenSettings = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const line = lineOf(text, key);
    // Own keys only: "constructor" or "toString" must be unknown settings,
    // not names found on Object.prototype.
    const spec = Object.hasOwn(LISTEN_OPTIONS, key)
      ? (LISTEN_OPTIONS as Record<string, { type: string; multiple?: boolean }>)[key]
      : undefined;
    if (!spec || NOT_IN_FILE.has(key)) {
      fail(line, `unknown setting "${key}"`);
    } else if (spec.type === "boolean") {
      if (typeof value !== "boolean") fail(line, `"${key}" must be true or false`);
      settings[key as keyof ListenSettings] = value as boolean;
    } else if (spec.multiple) {
      const list = typeof value === "string" ? [value] : value;
      if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) {
        fail(line, `"${key}" must be a string or a list of strings`);
      }
      settings[key as keyof ListenSettings] = list as string[];
    } else {
      if (typeof value !== "string" && typeof value !== "number") {
        fail(line, `"${key}" must be a string or a number`);
      }
      settings[key as keyof ListenSettings] = String(value);
    }
  }
  return settings;
}

/** Flags win over the config file, which wins over the defaults. */
export function mergeSettings(flags: ListenSettings, config: ListenSettings): ListenSettings {
  const merged: ListenSettings = { ...DEFAULTS };
  for (const source of [config, flags]) {
    for (const [key, value] of Object.entries(source)) {
      if (value !== undefined) merged[key as keyof ListenSettings] = value;
    }
  }
  return merged;
}

function lineOf(text: string, key: string): number {
  const index = text.indexOf(JSON.stringify(key));
  return index < 0 ? 1 : text.slice(0, index).split("\n").length;
}
