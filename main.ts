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
  agent: {
    summary: "hold your decrypted key so commands do not ask for the passphrase",
    load: async () => (await import("./commands/agent.ts")).agent,
  },
  invite: {
    summary: "make a one-time code for a client to pair with this server",
    load: async () => (await import("./commands/invite.ts")).invite,
  },
  pair: {
    summary: "pair with a server by its one-time code",
    load: async () => (await import("./commands/pair.ts")).pair,
  },
  "known-hosts": {
    summary: "list, add or remove trusted server keys",
    load: async () => (await import("./commands/known_hosts.ts")).knownHosts,
  },
  contacts: {
    summary: "list, add or remove the keys you seal files for",
    load: async () => (await import("./commands/contacts.ts")).contacts,
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
  const entry = COMMANDS[name];
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
