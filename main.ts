/**
 * The ovtp command line: one table of subcommands, and the one place that
 * prints errors and chooses the exit code.
 *
 * @module
 */

import { OvtpError } from "./lib/errors.ts";
import { VERSION } from "./lib/version.ts";
import { cryptoBackendInfo, selectCryptoBackend } from "./lib/crypto/mod.ts";
import type { Command } from "./commands/_cli.ts";
import { printable } from "./commands/_printable.ts";
import { completionsCommand } from "./commands/completions.ts";

/**
 * The subcommands. Each is loaded only when it runs (literal dynamic
 * imports, which `deno compile` still bundles): `ovtp send` then loads the
 * channel and the client, not chat, file transfer or sealing, which halves
 * its start-up time (bench/send_vs_ssh.sh).
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  keygen: {
    summary: "create your identity",
    load: async () => (await import("./commands/keygen.ts")).keygen,
  },
  id: {
    summary: "print your public key line",
    load: async () => (await import("./commands/id.ts")).id,
  },
  "add-key": {
    summary: "authorize a client's key",
    load: async () => (await import("./commands/add_key.ts")).addKey,
  },
  keys: {
    summary: "list or remove authorized keys",
    load: async () => (await import("./commands/keys.ts")).keys,
  },
  "known-hosts": {
    summary: "list, add or remove trusted server keys",
    load: async () => (await import("./commands/known_hosts.ts")).knownHosts,
  },
  listen: {
    summary: "serve: answer messages, receive files, relay chat",
    load: async () => (await import("./commands/listen.ts")).listen,
  },
  send: {
    summary: "send a message and print the response",
    load: async () => (await import("./commands/send.ts")).send,
  },
  sendfile: {
    summary: "send files or stdin, streamed and verified",
    load: async () => (await import("./commands/sendfile.ts")).sendfile,
  },
  getfile: {
    summary: "download a file from a server's served folder",
    load: async () => (await import("./commands/getfile.ts")).getfile,
  },
  chat: {
    summary: "chat in an end-to-end encrypted room",
    load: async () => (await import("./commands/chat.ts")).chat,
  },
  seal: {
    summary: "encrypt and sign a file for recipients",
    load: async () => (await import("./commands/seal.ts")).seal,
  },
  open: {
    summary: "decrypt a sealed file and verify its sender",
    load: async () => (await import("./commands/open.ts")).open,
  },
  completions: {
    summary: "print a shell completion script",
    load: () => Promise.resolve(completionsCommand(loadAll)),
  },
};

/** Every command, loaded (for the completion scripts). */
async function loadAll(): Promise<Record<string, Command & { summary: string }>> {
  const all: Record<string, Command & { summary: string }> = {};
  for (const [name, entry] of Object.entries(COMMANDS)) {
    all[name] = { ...await entry.load(), summary: entry.summary };
  }
  return all;
}

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

/**
 * Applies OVTP_CRYPTO (native, portable, or unset/auto): the crypto backend
 * for the whole process, chosen before any key is touched. "native" fails
 * when libcrypto 3 cannot be used; auto falls back to portable.
 */
function chooseCryptoBackend(): void {
  const choice = Deno.env.get("OVTP_CRYPTO") || "auto";
  if (choice !== "auto" && choice !== "native" && choice !== "portable") {
    throw new OvtpError("usage", `Invalid OVTP_CRYPTO "${choice}": use native, portable or auto`);
  }
  selectCryptoBackend(choice);
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
  try {
    chooseCryptoBackend();
  } catch (error) {
    console.error(`ovtp: error: ${(error as Error).message}`);
    return error instanceof OvtpError ? exitCodeOf(error) : EXIT.remote;
  }
  if (name === "--version" || name === "-V") {
    const crypto = cryptoBackendInfo();
    console.log(`ovtp ${VERSION}\ncrypto: ${crypto.name} (${crypto.detail})`);
    return EXIT.ok;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(`ovtp: error: Unknown command "${printable(name)}"\n`);
    console.error(help());
    return EXIT.usage;
  }
  const command = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.usage);
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    // Messages and hints often carry what a server sent (its error, a
    // refusal, a status): each is shown as one line that cannot drive the
    // terminal or pose as another line.
    if (error instanceof OvtpError) {
      console.error(`ovtp: error: ${printable(error.message)}`);
      if (error.hint) console.error(`ovtp: hint: ${printable(error.hint)}`);
      return exitCodeOf(error);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      console.error(`ovtp: error: Permission denied: ${printable(error.message)}`);
      return EXIT.remote;
    }
    console.error(`ovtp: error: ${printable(String((error as Error).message ?? error))}`);
    return EXIT.remote;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
