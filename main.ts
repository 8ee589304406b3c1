/**
 * The ovtp command line: one table of subcommands, and the one place that
 * prints errors and chooses the exit code.
 *
 * @module
 */

import { OvtpError } from "./lib/errors.ts";
import { VERSION } from "./lib/version.ts";
import { cryptoBackendInfo, selectCryptoBackend } from "./lib/crypto/mod.ts";
import { type Command, writeErr, writeOut } from "./commands/_cli.ts";
import { printable } from "./commands/_printable.ts";
import { describeFailure, EXIT, failureJson, failureLogLine } from "./commands/_failure.ts";
import { isStdoutClosed } from "./commands/_stdout.ts";
import { completionsCommand } from "./commands/completions.ts";
import { closest } from "./commands/_suggest.ts";

/**
 * The subcommands. Each is loaded only when it runs (commandModule):
 * `ovtp send` then loads the channel and the client, not chat, file
 * transfer or sealing, which halves its start-up time
 * (bench/send_vs_ssh.sh).
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  keygen: {
    summary: "create your identity",
    load: commandModule("keygen.ts", "keygen"),
  },
  id: {
    summary: "print your public key line",
    load: commandModule("id.ts", "id"),
  },
  "add-key": {
    summary: "authorize a client's key",
    load: commandModule("add_key.ts", "addKey"),
  },
  keys: {
    summary: "list or remove authorized keys",
    load: commandModule("keys.ts", "keys"),
  },
  agent: {
    summary: "hold your decrypted key so commands do not ask for the passphrase",
    load: commandModule("agent.ts", "agent"),
  },
  invite: {
    summary: "make a one-time code for a client to pair with this server",
    load: commandModule("invite.ts", "invite"),
  },
  pair: {
    summary: "pair with a server by its one-time code",
    load: commandModule("pair.ts", "pair"),
  },
  "known-hosts": {
    summary: "list, add or remove trusted server keys",
    load: commandModule("known_hosts.ts", "knownHosts"),
  },
  contacts: {
    summary: "list, add or remove the keys you seal files for",
    load: commandModule("contacts.ts", "contacts"),
  },
  listen: {
    summary: "serve: answer messages, receive files, relay chat",
    load: commandModule("listen.ts", "listen"),
  },
  send: {
    summary: "send a message and print the response",
    load: commandModule("send.ts", "send"),
  },
  sendfile: {
    summary: "send files or stdin, streamed and verified",
    load: commandModule("sendfile.ts", "sendfile"),
  },
  getfile: {
    summary: "download a file from a server's served folder",
    load: commandModule("getfile.ts", "getfile"),
  },
  chat: {
    summary: "chat in an end-to-end encrypted room",
    load: commandModule("chat.ts", "chat"),
  },
  seal: {
    summary: "encrypt and sign a file for recipients",
    load: commandModule("seal.ts", "seal"),
  },
  open: {
    summary: "decrypt a sealed file and verify its sender",
    load: commandModule("open.ts", "open"),
  },
  completions: {
    summary: "print a shell completion script",
    load: () => Promise.resolve(completionsCommand(loadAll)),
  },
};

/**
 * Loads `name` from commands/`file` when the command runs. The path is
 * computed on purpose: Deno reads and checks every module that a literal
 * dynamic import names before the program starts, so with literal paths
 * each command's start-up went through all the commands' modules (170
 * instead of 77 for `ovtp send`: 110 ms against 91 with an empty Deno
 * cache, 2 ms more with a warm one). `deno compile` cannot see these
 * imports either: scripts/compile.ts includes every command module.
 */
function commandModule(file: string, name: string): () => Promise<Command> {
  return async () => (await import(new URL(`./commands/${file}`, import.meta.url).href))[name];
}

/** Every command, loaded (for the completion scripts). */
async function loadAll(): Promise<Record<string, Command & { summary: string }>> {
  const all: Record<string, Command & { summary: string }> = {};
  for (const [name, entry] of Object.entries(COMMANDS)) {
    all[name] = { ...await entry.load(), summary: entry.summary };
  }
  return all;
}

export { EXIT } from "./commands/_failure.ts";

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

/**
 * Whether the command line asks for JSON: the last of `--json`,
 * `--json=true`, `--no-json` and `--json=false` before `--` wins. Read
 * here, not from the command's parsed flags, so that a failure while
 * parsing them is reported as JSON too.
 */
function wantsJson(args: string[]): boolean {
  let json = false;
  for (const arg of args) {
    if (arg === "--") break;
    if (arg === "--json" || arg === "--json=true") json = true;
    if (arg === "--no-json" || arg === "--json=false") json = false;
  }
  return json;
}

/** Whether the command line asks for `--log-format json` (the last one before `--` wins). */
function wantsJsonLog(args: string[]): boolean {
  let format = "text";
  for (let i = 0; i < args.length && args[i] !== "--"; i++) {
    if (args[i] === "--log-format") format = args[i + 1] ?? format;
    else if (args[i].startsWith("--log-format=")) format = args[i].slice("--log-format=".length);
  }
  return format === "json";
}

/**
 * Prints a failure: one `ovtp: error:` line (and a hint) on stderr, and
 * with --json one JSON object on stdout too. A closed stdout is no failure
 * to report: the reader has gone, so ovtp ends quietly.
 */
async function report(
  error: unknown,
  json: boolean,
  jsonLog = false,
): Promise<number> {
  if (isStdoutClosed(error)) return EXIT.stdoutClosed;
  const failure = describeFailure(error);
  if (jsonLog) {
    await writeErr(failureLogLine(failure)).catch(() => {});
  } else {
    // Messages and hints often carry what a server sent (its error, a
    // refusal, a status): each is shown as one line that cannot drive the
    // terminal or pose as another line. The JSON forms carry them exactly.
    await writeErr(`ovtp: error: ${printable(failure.message)}\n`).catch(() => {});
    if (failure.hint) await writeErr(`ovtp: hint: ${printable(failure.hint)}\n`).catch(() => {});
  }
  if (json) {
    try {
      await writeOut(failureJson(failure));
    } catch (stdoutError) {
      if (isStdoutClosed(stdoutError)) return EXIT.stdoutClosed;
    }
  }
  return failure.exitCode;
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
  try {
    selectCryptoBackend(choice);
  } catch (error) {
    // OVTP_CRYPTO=native on a machine without it: a setting to change.
    throw new OvtpError("usage", (error as Error).message, {
      cause: error,
      hint: "install OpenSSL 3, or unset OVTP_CRYPTO (or set it to auto or portable)",
    });
  }
}

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined) {
    await writeErr(help());
    return EXIT.usage;
  }
  if (name === "--help" || name === "-h" || name === "help") return await print(help());
  if (name === "--version" || name === "-V") {
    try {
      chooseCryptoBackend();
    } catch (error) {
      return await report(error, false);
    }
    const crypto = cryptoBackendInfo();
    return await print(`ovtp ${VERSION}\ncrypto: ${crypto.name} (${crypto.detail})\n`);
  }
  // Own keys only: "constructor" or "toString" is no command.
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    const near = closest(name, Object.keys(COMMANDS));
    await writeErr(
      `ovtp: error: Unknown command "${printable(name)}"\n` +
        (near ? `ovtp: hint: did you mean \`ovtp ${near}\`?\n` : `\n${help()}`),
    );
    return EXIT.usage;
  }
  const command = await entry.load();
  // Help needs no crypto: it is printed before the backend is loaded.
  if (rest.includes("--help") || rest.includes("-h")) return await print(command.usage);
  const json = command.json === true && wantsJson(rest);
  const jsonLog = command.logFormat === true && wantsJsonLog(rest);
  try {
    chooseCryptoBackend();
    return await command.run(rest);
  } catch (error) {
    return await report(error, json, jsonLog);
  }
}

/** Prints help or the version on stdout. */
async function print(text: string): Promise<number> {
  try {
    await writeOut(text);
    return EXIT.ok;
  } catch (error) {
    return await report(error, false);
  }
}

if (import.meta.main) {
  // A promise nobody awaited that fails (a write to a closed stdout in a
  // background task) would end Deno with a stack trace in colour: report it
  // as any failure instead, and exit with its code.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report(event.reason, false).then((code) => Deno.exit(code));
  });
  Deno.exit(await main(Deno.args));
}
