/**
 * Helpers shared by the subcommands: usage errors, the home directory, the
 * passphrase prompt, and output. Only commands/ and main.ts import this file.
 *
 * @module
 */

import { join } from "node:path";
import { formatHostPort, writeAll } from "../lib/io/files.ts";
import { concat } from "../lib/bytes.ts";
import { OvtpError } from "../lib/errors.ts";
import { Keystore } from "../lib/identity/keystore.ts";
import { usageError } from "./_flags.ts";
import { parseSizeText } from "./_options.ts";
import { STDOUT } from "./_stdout.ts";

export { usageError } from "./_flags.ts";

/** A subcommand: its help and what it runs (its one-line summary is in main.ts's table). */
export interface Command {
  /** The full help text. */
  usage: string;
  /** Runs with the arguments after the subcommand name; returns the exit code. */
  run(args: string[]): Promise<number>;
  /**
   * Whether it takes `--json`: main.ts then also reports a failure as one
   * JSON object on stdout.
   */
  json?: boolean;
  /**
   * Whether it takes `--log-format text|json`: with json, main.ts prints a
   * failure on stderr as a JSON log line too.
   */
  logFormat?: boolean;
}

/** The keystore in `--home`, `$OVTP_HOME`, or `~/.ovtp`. */
export function openKeystore(home: string | undefined): Keystore {
  if (home) return new Keystore(home);
  const fromEnv = Deno.env.get("OVTP_HOME");
  if (fromEnv) return new Keystore(fromEnv);
  // Windows shells like Git Bash set HOME too; the profile folder is the
  // documented home there.
  const userHome = Deno.build.os === "windows"
    ? Deno.env.get("USERPROFILE") ?? Deno.env.get("HOME")
    : Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (!userHome) {
    throw new OvtpError("usage", "Cannot find the home directory", {
      hint: "set OVTP_HOME or pass --home DIR",
    });
  }
  return new Keystore(join(userHome, ".ovtp"));
}

/**
 * Returns the passphrase from `$OVTP_PASSPHRASE`, or asks on the terminal
 * without echo. Never from argv, where other users could see it.
 */
export async function askPassphrase(prompt = "Passphrase: "): Promise<string> {
  const fromEnv = Deno.env.get("OVTP_PASSPHRASE");
  if (fromEnv !== undefined) return fromEnv;
  if (!Deno.stdin.isTerminal()) {
    throw new OvtpError("key", "The key needs a passphrase, and there is no terminal to ask", {
      hint: "set OVTP_PASSPHRASE, or OVTP_AGENT to a running `ovtp agent`",
    });
  }
  return await readSecret(prompt);
}

/** Reads one line typed on the terminal (stdin must be one) without echo. */
export async function readSecret(prompt: string): Promise<string> {
  await writeErr(prompt);
  Deno.stdin.setRaw(true);
  const typed: number[] = [];
  const buffer = new Uint8Array(64);
  try {
    reading: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0d || byte === 0x0a) break reading;
        if (byte === 0x03) throw new OvtpError("interrupted", "Interrupted");
        if (byte === 0x7f || byte === 0x08) typed.pop();
        else typed.push(byte);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await writeErr("\n");
  }
  return new TextDecoder().decode(new Uint8Array(typed));
}

/**
 * A way to ask the person at the terminal for one line (echoed): stdin when
 * it is a terminal, else the controlling terminal (/dev/tty) when stderr is
 * one, as ssh does for `tar c dir | ovtp sendfile ...`. Undefined when there
 * is no terminal to ask. The answer is undefined at end of input.
 */
export function askLine(): ((prompt: string) => Promise<string | undefined>) | undefined {
  let source: { read(p: Uint8Array): Promise<number | null> } | undefined;
  if (Deno.stdin.isTerminal()) {
    source = Deno.stdin;
  } else if (Deno.build.os !== "windows" && Deno.stderr.isTerminal()) {
    try {
      source = Deno.openSync("/dev/tty", { read: true });
    } catch {
      source = undefined;
    }
  }
  if (!source) return undefined;
  const terminal = source;
  return async (prompt) => {
    await writeErr(prompt);
    const typed: number[] = [];
    const buffer = new Uint8Array(256);
    while (true) {
      const n = await terminal.read(buffer);
      if (n === null) {
        return typed.length ? new TextDecoder().decode(new Uint8Array(typed)) : undefined;
      }
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0a) return new TextDecoder().decode(new Uint8Array(typed));
        typed.push(byte);
      }
      if (typed.length > 4096) return new TextDecoder().decode(new Uint8Array(typed));
    }
  };
}

const encoder = new TextEncoder();

/** Writes all of `data` to stdout; fails with StdoutClosed once its reader is gone. */
export async function writeOut(data: string | Uint8Array): Promise<void> {
  await writeAll(STDOUT, typeof data === "string" ? encoder.encode(data) : data);
}

/** Writes all of `data` to stderr. */
export async function writeErr(data: string | Uint8Array): Promise<void> {
  await writeAll(Deno.stderr, typeof data === "string" ? encoder.encode(data) : data);
}

/** Reads stdin to the end, refusing more than `limit` bytes. */
export async function readStdin(limit: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    size += chunk.length;
    if (size > limit) {
      throw new OvtpError("too-large", `The input is larger than ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return concat(...parts);
}

/** Yields stdin's lines, without their line endings. */
export async function* readStdinLines(): AsyncGenerator<string> {
  let rest = "";
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    rest += text;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) yield line.endsWith("\r") ? line.slice(0, -1) : line;
  }
  if (rest) yield rest;
}

/** Parses `HOST[:PORT]` or `[IPv6]:PORT`. */
export function parseHostPort(
  target: string,
  defaultPort: number,
): { hostname: string; port: number; display: string } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+))(?::(\d{1,5}))?$/.exec(target);
  const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
  if (!match || port < 1 || port > 65535) {
    throw new OvtpError("usage", `Invalid host "${target}"`, {
      hint: "give HOST, HOST:PORT or [IPv6]:PORT",
    });
  }
  const hostname = match[1] ?? match[2];
  return { hostname, port, display: formatHostPort(hostname, port) };
}

/** Parses a size such as `1048576`, `100M`, `10G` or `1.5GiB` into bytes. */
export function parseSize(text: string, flag: string, command: string): number {
  try {
    return parseSizeText(text, flag);
  } catch (error) {
    usageError(command, (error as Error).message);
  }
}
