/**
 * `ovtp listen`'s settings: its flags, and the same settings read from a
 * JSON config file (~/.ovtp/listen.json or --config), flags winning. A
 * config file with an error is refused with its line and the reason.
 *
 * @module
 */

import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from "../lib/channel/channel.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "../lib/channel/connection.ts";
import { OvtpError } from "../lib/errors.ts";
import { DEFAULT_EXEC_TIMEOUT_MS } from "../lib/services/exec/exec_handler.ts";
import { DEFAULT_EXEC_SLOTS } from "../lib/services/exec/exec_slots.ts";
import { parseRate } from "../lib/trust/key_options.ts";
import { DEFAULT_PORT } from "../lib/server/defaults.ts";
import {
  DEFAULT_HOSTNAME,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HANDSHAKES,
  DEFAULT_MAX_PER_ADDRESS,
  DEFAULT_MAX_QUEUED_BYTES,
} from "../lib/server/defaults.ts";
import {
  DEFAULT_MAX_PARTIAL_BYTES,
  DEFAULT_PARTIAL_MAX_AGE_MS,
} from "../lib/services/transfer/inbox.ts";
import { parseClusterUrls } from "./_cluster.ts";
import {
  choice,
  flag,
  HOME,
  IDENTITY,
  integer,
  list,
  type OptionValues,
  parsed,
  seconds,
  size,
  text,
} from "./_options.ts";

/** listen's options: flags, config file keys, help lines and defaults. */
export const LISTEN_OPTIONS = {
  // Serving
  host: text({
    arg: "H",
    default: DEFAULT_HOSTNAME,
    help: "address to listen on (default: {default}, every interface)",
  }),
  port: integer({
    arg: "P",
    min: 0,
    max: 65535,
    default: DEFAULT_PORT,
    help: "port (default: {default}; 0 picks a free one)",
  }),
  json: flag({
    help: 'print each message and file as one JSON object per line, with an "event": ' +
      '"message", "file", or "error" when listen fails (--no-json overrides listen.json)',
  }),
  "add-keys": list({
    arg: "FILE...",
    help: "authorize the keys in these files before starting",
  }),
  config: text({
    arg: "FILE",
    help: "read settings from FILE (default: ~/.ovtp/listen.json)",
    inFile: false,
  }),
  home: HOME,
  identity: IDENTITY,
  // Commands and named functions
  exec: list({
    arg: "CMD",
    help: "run CMD (sh -c) for each message: the message on stdin, OVTP_SENDER_NAME, " +
      "OVTP_SENDER_FINGERPRINT and OVTP_REQUEST_ID in its environment; its stdout is the " +
      'response, exit code 0 means "ok", any other "error"',
    also: {
      arg: "NAME=CMD",
      help: "a named function (repeatable), for `ovtp send --call NAME`: stdin is " +
        '{"function","params","message"} as JSON, OVTP_FUNCTION names it',
    },
  }),
  "exec-timeout": seconds({
    arg: "SECONDS",
    default: DEFAULT_EXEC_TIMEOUT_MS,
    help: 'kill a command running longer, answer "timeout" (default {default}); a command ' +
      "that calls setsid itself is out of reach",
  }),
  "max-exec": integer({
    arg: "N",
    min: 1,
    default: DEFAULT_EXEC_SLOTS.total,
    help: "commands running at once, in total (default {default})",
  }),
  "max-exec-per-key": integer({
    arg: "N",
    min: 1,
    default: DEFAULT_EXEC_SLOTS.perKey,
    help: "commands running at once for one client key (default {default}); over a cap a " +
      `request waits its turn, and past ${DEFAULT_EXEC_SLOTS.waitingPerKey} waiting for one ` +
      'key it is answered "busy"',
  }),
  // Files and rooms
  inbox: text({
    arg: "DIR",
    help: "where received files go, in a folder per sender (default: ~/.ovtp/inbox)",
  }),
  "max-file-size": size({ arg: "SIZE", help: "refuse files larger than SIZE (e.g. 500M, 10G)" }),
  "keep-partial": seconds({
    arg: "SECONDS",
    zero: true,
    default: DEFAULT_PARTIAL_MAX_AGE_MS,
    help: "keep an interrupted upload this long for its sender to resume it " +
      "(default {default}); checked periodically",
  }),
  "max-partial": size({
    arg: "SIZE",
    default: DEFAULT_MAX_PARTIAL_BYTES,
    help: "keep at most SIZE of interrupted uploads per client key, the oldest deleted " +
      "first (default {default})",
  }),
  serve: text({
    arg: "DIR",
    help: "let clients download from DIR, read-only (ovtp getfile)",
  }),
  rooms: text({
    arg: "DIR",
    help: "where chat rooms keep their members and the messages held for offline members " +
      "(default: ~/.ovtp/rooms)",
  }),
  // Cluster
  cluster: parsed({
    arg: "nats://HOST:PORT[,...]",
    help: "keep chat rooms, presence, queued messages and rate limits in this NATS " +
      "JetStream cluster, shared with the other relays on it (each with the same server key)",
  }, parseClusterUrls),
  "cluster-creds": text({
    arg: "FILE",
    help: "a NATS credentials file; or set OVTP_NATS_CREDS, or OVTP_NATS_USER and " +
      "OVTP_NATS_PASSWORD, or OVTP_NATS_TOKEN (never credentials in the address); " +
      "OVTP_NATS_CA names a CA certificate for tls:// addresses",
  }),
  // Limits
  rate: parsed({
    arg: "COUNT/UNIT",
    help: "requests per key, e.g. 100/h (unit s, m, h or d; the count is also the burst); " +
      "a key's rate= option wins",
  }, parseRate),
  "max-connections": integer({
    arg: "N",
    min: 1,
    default: DEFAULT_MAX_CONNECTIONS,
    help: "open connections (default {default})",
  }),
  "max-per-address": integer({
    arg: "N",
    min: 1,
    default: DEFAULT_MAX_PER_ADDRESS,
    help: "open connections from one address (default {default})",
  }),
  "max-handshakes": integer({
    arg: "N",
    min: 1,
    default: DEFAULT_MAX_HANDSHAKES,
    help: "handshakes in progress (default {default})",
  }),
  "handshake-timeout": seconds({
    arg: "SECONDS",
    default: DEFAULT_HANDSHAKE_TIMEOUT_MS,
    help: "time allowed for a handshake (default {default})",
  }),
  "idle-timeout": seconds({
    arg: "SECONDS",
    default: DEFAULT_IDLE_TIMEOUT_MS,
    help: "close idle connections (default {default})",
  }),
  "max-message-size": size({
    arg: "SIZE",
    default: DEFAULT_MAX_MESSAGE_SIZE,
    help: "largest message (default {default})",
  }),
  "max-queued": size({
    arg: "SIZE",
    default: DEFAULT_MAX_QUEUED_BYTES,
    help: "data queued for a client that does not read before it is dropped " +
      "(default {default})",
  }),
  grace: seconds({
    arg: "SECONDS",
    zero: true,
    // listen's own: serve()'s close() waits for nothing unless told.
    default: 10_000,
    help: "time for work in flight at shutdown (default {default})",
  }),
  // Logs
  quiet: flag({ short: "q", help: "warnings only" }),
  verbose: flag({ short: "v", help: "debug detail too" }),
  "log-format": choice({
    arg: "text|json",
    words: ["text", "json"],
    default: "text",
    help: 'json: every line on stderr is one JSON object, the "listening on" line and a ' +
      "fatal error included",
  }),
};

/** listen's settings, parsed. */
export type ListenSettings = OptionValues<typeof LISTEN_OPTIONS>;

/**
 * Reads a config file, each setting checked and parsed by its option. A
 * missing file is fine unless `required`; anything else wrong is an
 * OvtpError naming the file, the line and the reason.
 */
export async function readConfig(
  path: string,
  required: boolean,
): Promise<Partial<ListenSettings>> {
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
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const line = lineOf(text, key);
    try {
      settings[key] = settingOf(key, value);
    } catch (error) {
      fail(line, (error as Error).message);
    }
  }
  return settings as Partial<ListenSettings>;
}

/** One setting of the file, checked and parsed by its option. */
function settingOf(key: string, value: unknown): unknown {
  // Own keys only: "constructor" or "toString" must be unknown settings,
  // not names found on Object.prototype.
  const option = Object.hasOwn(LISTEN_OPTIONS, key)
    ? LISTEN_OPTIONS[key as keyof typeof LISTEN_OPTIONS]
    : undefined;
  if (!option?.inFile) throw new Error(`unknown setting "${key}"`);
  if (option.type === "boolean") {
    if (typeof value !== "boolean") throw new Error(`"${key}" must be true or false`);
    return value;
  }
  if (option.multiple) {
    const list = typeof value === "string" ? [value] : value;
    if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) {
      throw new Error(`"${key}" must be a string or a list of strings`);
    }
    return list;
  }
  if (typeof value !== "string" && typeof value !== "number") {
    throw new Error(`"${key}" must be a string or a number`);
  }
  return option.parse(String(value), `"${key}"`);
}

function lineOf(text: string, key: string): number {
  const index = text.indexOf(JSON.stringify(key));
  return index < 0 ? 1 : text.slice(0, index).split("\n").length;
}
