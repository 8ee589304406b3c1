/**
 * The ovtp command line: one table of subcommands, and the one place that
 * prints errors and chooses the exit code.
 *
 * @module
 */

import { OvtpError, VERSION } from "./mod.ts";
import type { Command } from "./commands/_cli.ts";
import { addKey } from "./commands/add_key.ts";
import { chat } from "./commands/chat.ts";
import { completionsCommand } from "./commands/completions.ts";
import { getfile } from "./commands/getfile.ts";
import { id } from "./commands/id.ts";
import { keygen } from "./commands/keygen.ts";
import { keys } from "./commands/keys.ts";
import { listen } from "./commands/listen.ts";
import { open } from "./commands/open.ts";
import { seal } from "./commands/seal.ts";
import { send } from "./commands/send.ts";
import { sendfile } from "./commands/sendfile.ts";

const COMMANDS: Record<string, Command> = {
  keygen,
  id,
  "add-key": addKey,
  keys,
  listen,
  send,
  sendfile,
  getfile,
  chat,
  seal,
  open,
  completions: completionsCommand(() => COMMANDS),
};

/** Exit codes, documented in README.md. */
export const EXIT = {
  ok: 0,
  remote: 1,
  usage: 2,
  network: 3,
  trust: 4,
  key: 5,
} as const;

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) =>
    `  ${name.padEnd(width)}  ${command.summary}`
  );
  return `ovtp ${VERSION}: end-to-end encrypted messages between machines that know each other's keys

Usage: ovtp COMMAND [OPTIONS]

Commands:
${lines.join("\n")}

Run \`ovtp COMMAND --help\` for a command's options.
`;
}

function exitCodeOf(error: OvtpError): number {
  switch (error.kind) {
    case "usage":
      return EXIT.usage;
    case "network":
    case "protocol":
      return EXIT.network;
    case "trust":
      return EXIT.trust;
    case "key":
      return EXIT.key;
    default:
      return EXIT.remote;
  }
}

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined) {
    console.error(help());
    return EXIT.usage;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(help());
    return EXIT.ok;
  }
  if (name === "--version" || name === "-V") {
    console.log(`ovtp ${VERSION}`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`ovtp: error: Unknown command "${name}"\n`);
    console.error(help());
    return EXIT.usage;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.usage);
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof OvtpError) {
      console.error(`ovtp: error: ${error.message}`);
      if (error.hint) console.error(`ovtp: hint: ${error.hint}`);
      return exitCodeOf(error);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      console.error(`ovtp: error: Permission denied: ${error.message}`);
      return EXIT.remote;
    }
    console.error(`ovtp: error: ${(error as Error).message ?? error}`);
    return EXIT.remote;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
