import { formatHostPort } from "../lib/io/files.ts";
import { duplicateNames } from "../lib/trust/authorized_keys.ts";
import { authorizedKeysAuthorizer } from "../lib/trust/authorizer.ts";
import { cryptoBackendInfo } from "../lib/crypto/mod.ts";
import { ChatRelay } from "../lib/services/chat/relay.ts";
import { RoomStore } from "../lib/services/chat/room_store.ts";
import { OvtpError } from "../lib/errors.ts";
import { execFunction, execHandler, type ExecOptions } from "../lib/services/exec/exec_handler.ts";
import { ExecSlots } from "../lib/services/exec/exec_slots.ts";
import { FUNCTION_NAME_PATTERN } from "../lib/services/function_call.ts";
import { fingerprint } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import type { Logger } from "../lib/logger.ts";
import {
  type FunctionHandler,
  type RequestHandler,
  requestText,
  serve,
} from "../lib/server/server.ts";
import { InviteStore } from "../lib/pair/invites.ts";
import { PairingResponder } from "../lib/pair/responder.ts";
import { Inbox } from "../lib/services/transfer/inbox.ts";
import type { ReceivedFile } from "../lib/server/types.ts";
import { ServedFolder } from "../lib/services/transfer/served_folder.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { startCluster } from "./_cluster.ts";
import { loadIdentity } from "./_identity.ts";
import { readKeyLines } from "./_key_lines.ts";
import { LISTEN_OPTIONS, type ListenSettings, readConfig } from "./_listen_config.ts";
import { parseOptions } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { stderrLogger } from "./_logger.ts";
import { jsonLine, printable } from "./_printable.ts";
import { isStdoutClosed, StdoutClosed } from "./_stdout.ts";

const USAGE = `Usage: ovtp listen [OPTIONS] [--add-keys FILE...]

Serves clients listed in ~/.ovtp/authorized_keys, and lets a client with a
code from \`ovtp invite\` pair (\`ovtp pair\`: its key is then added). Once
ready it prints "listening on HOST:PORT" and its fingerprint on stderr. Each
message is printed on stdout as one line (sender name and fingerprint, then the text,
its line breaks and control characters shown escaped: --json keeps them)
and answered "ok"; with --exec, a command answers instead. Files sent with sendfile land
in the inbox once complete and verified, and are printed on stdout. Chat
rooms are relayed: the server forwards envelopes it cannot read, and keeps
them for members who are offline (at most 1000 or 16 MiB per member, for
7 days); at most 1024 rooms, 64 per key, 256 members per room.
SIGINT or SIGTERM stops it: work in flight may finish within --grace, then
it exits 0 (interrupted uploads stay resumable). A second one, a moment
later, stops it at once, with 130.

Settings may also come from a JSON file, ~/.ovtp/listen.json or --config
FILE, with the long option names as keys (e.g. {"port": 4747, "exec":
["backup=/usr/local/bin/backup"]}); options on the command line win.

Serving:
${help(["host", "port", "json", "add-keys", "config", "home", "identity"], 21)}

Commands and named functions:
${help(["exec", "exec-timeout", "max-exec", "max-exec-per-key"], 21)}

Files and rooms:
${help(["inbox", "max-file-size", "keep-partial", "max-partial", "serve", "rooms"], 21)}

Cluster (several relays sharing rooms; see docs/operations.md):
${help(["cluster", "cluster-creds"], 21)}

Limits (each client key, and the server as a whole):
${
  help([
    "rate",
    "max-connections",
    "max-per-address",
    "max-handshakes",
    "handshake-timeout",
    "idle-timeout",
    "max-message-size",
    "max-queued",
    "grace",
  ], 31)
}

Logs (stderr):
${help(["quiet", "verbose", "log-format"], 21)}
`;

function help(names: (keyof typeof LISTEN_OPTIONS)[], column: number): string {
  return optionsHelp(LISTEN_OPTIONS, names, column);
}

async function run(args: string[]): Promise<number> {
  const { settings, keystore, addKeyFiles } = await readSettings(args);
  const logFormat = settings["log-format"];
  const logger = stderrLogger(
    settings.quiet ? "quiet" : settings.verbose ? "verbose" : "normal",
    logFormat,
  );
  const printer = new Printer(settings.json, logger);
  const { handler, functions } = handlers(settings.exec, {
    timeoutMs: settings["exec-timeout"],
    // One set of slots for every command, so the caps hold across them.
    slots: new ExecSlots({ total: settings["max-exec"], perKey: settings["max-exec-per-key"] }),
  }, printer);
  const crypto = cryptoBackendInfo();
  logger.debug?.(`crypto backend: ${crypto.name} (${crypto.detail})`);
  const identity = await loadIdentity(keystore, settings.identity);
  for (const file of addKeyFiles) await importKeys(keystore, file, logger);
  await checkAuthorizedKeys(keystore, logger);
  const inbox = new Inbox(settings.inbox ?? keystore.path("inbox"), {
    maxFileSize: settings["max-file-size"],
    partialMaxAgeMs: settings["keep-partial"],
    maxPartialBytes: settings["max-partial"],
  });
  const pruning = await pruneRegularly(inbox, settings["keep-partial"], logger);
  const servedDir = settings.serve;
  if (servedDir !== undefined && !(await Deno.stat(servedDir).catch(() => null))?.isDirectory) {
    throw new OvtpError("usage", `Cannot serve "${servedDir}": not a folder`);
  }

  // Before anyone can learn that it listens: a script that stops it as
  // soon as it reads the "listening on" line must get the graceful stop.
  const signals = stopSignals();
  const cluster = settings.cluster
    ? await startCluster(settings.cluster, settings["cluster-creds"], logger)
    : undefined;
  const server = listenOn(settings.host, settings.port, {
    identity,
    logger,
    handler,
    functions,
    ...limits(settings),
    inbox,
    onFile: (file) => printer.file(file),
    served: servedDir === undefined ? undefined : new ServedFolder(servedDir),
    chat: cluster?.relay ??
      new ChatRelay(new RoomStore(settings.rooms ?? keystore.path("rooms")), logger),
    limiter: cluster?.limiter,
    // Invites (ovtp invite) are read from the home when a client pairs.
    pairing: new PairingResponder({ invites: new InviteStore(keystore) }),
    authorize: authorizedKeysAuthorizer(
      keystore,
      (error) =>
        logger.warn(
          `skipping ${keystore.path("authorizedKeys")} line ${error.line}: ${error.message}`,
        ),
    ),
  });
  await announce(server.addr, await fingerprint(identity.publicKey), logFormat);
  const reason = await Promise.race([signals.first, printer.closed.then(() => "stdout closed")]);
  const grace = settings.grace;
  logger.info(
    `${reason}: shutting down, letting work in flight finish (up to ${grace / 1000} s; ` +
      `signal again to stop at once)`,
  );
  clearInterval(pruning);
  const hurried = await Promise.race([server.close(grace).then(() => undefined), signals.again]);
  if (hurried) {
    logger.warn(`${hurried} again: stopping now, cutting off the work in flight`);
    return 130;
  }
  await cluster?.close();
  logger.info("stopped");
  // Nobody reads stdout any more: main.ts ends quietly with its own code.
  if (reason === "stdout closed") throw new StdoutClosed();
  return 0;
}

/**
 * The settings: flags, then the config file (~/.ovtp/listen.json or
 * --config), then the defaults. Files after the options add keys too.
 */
async function readSettings(args: string[]) {
  const options = parseOptions(LISTEN_OPTIONS, args, "listen");
  const { home, config } = options.values();
  const keystore = openKeystore(home);
  const settings = options.values(
    await readConfig(config ?? keystore.path("listenConfig"), config !== undefined),
  );
  const { positionals } = options;
  if (positionals.length > 0 && settings["add-keys"].length === 0) {
    usageError("listen", `Unexpected argument "${positionals[0]}"`);
  }
  if (settings["cluster-creds"] !== undefined && !settings.cluster) {
    usageError("listen", "--cluster-creds needs --cluster");
  }
  return { settings, keystore, addKeyFiles: [...settings["add-keys"], ...positionals] };
}

/** The server's limits among the settings. */
function limits(settings: ListenSettings) {
  return {
    rate: settings.rate,
    handshakeTimeoutMs: settings["handshake-timeout"],
    idleTimeoutMs: settings["idle-timeout"],
    maxConnections: settings["max-connections"],
    maxPerAddress: settings["max-per-address"],
    maxHandshakes: settings["max-handshakes"],
    maxMessageSize: settings["max-message-size"],
    maxQueuedBytes: settings["max-queued"],
  };
}

/**
 * Deletes the interrupted transfers whose sender did not resume them in
 * time: now and while listen runs, not only at the next start.
 */
async function pruneRegularly(inbox: Inbox, maxAgeMs: number, logger: Logger) {
  await inbox.pruneStale();
  return setInterval(() => {
    inbox.pruneStale().then(
      (count) => count > 0 && logger.info(`deleted ${count} abandoned partial upload(s)`),
      (error) => logger.warn(`cannot prune the inbox: ${(error as Error).message}`),
    );
  }, Math.min(Math.max(maxAgeMs / 2, 1000), 10 * 60 * 1000));
}

/** Prints "listening on", whatever the level (scripts wait for it), in the log's format. */
async function announce(
  addr: { hostname: string; port: number },
  print: string,
  logFormat: "text" | "json",
): Promise<void> {
  const where = formatHostPort(addr.hostname, addr.port);
  await writeErr(
    logFormat === "json"
      ? jsonLine({
        time: new Date().toISOString(),
        level: "info",
        msg: `listening on ${where} as ${print}`,
        event: "listening",
        address: where,
        fingerprint: print,
      }) + "\n"
      : `ovtp: listening on ${where} as ${print}\n`,
  );
}

/**
 * Starts the server, saying which address could not be had: Deno's
 * "Address already in use" names none.
 */
function listenOn(
  hostname: string,
  port: number,
  options: Omit<Parameters<typeof serve>[0], "hostname" | "port">,
) {
  const where = formatHostPort(hostname, port);
  try {
    return serve({ ...options, hostname, port });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new OvtpError("network", `Cannot listen on ${where}: the address is already in use`, {
        cause: error,
        hint: "another program (another `ovtp listen`?) holds that port: stop it, " +
          "or choose another with --port",
      });
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new OvtpError("network", `Cannot listen on ${where}: no such address here`, {
        cause: error,
        hint: "give --host an address of this machine, or 0.0.0.0 for all",
      });
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new OvtpError("network", `Cannot listen on ${where}: permission denied`, {
        cause: error,
        hint: port < 1024
          ? "ports below 1024 need privileges: use --port 1024 or above"
          : undefined,
      });
    }
    throw error;
  }
}

/** The default handler and the named functions from the --exec values. */
function handlers(execs: string[], options: ExecOptions, printer: Printer) {
  const functions: Record<string, FunctionHandler> = {};
  let handler: RequestHandler = printer.handler();
  let defaults = 0;
  for (const exec of execs) {
    // NAME=CMD names a function; anything else (a command with a space or
    // no "=" before it) is the default handler.
    const match = /^([^=\s]+)=(.+)$/s.exec(exec);
    if (match && FUNCTION_NAME_PATTERN.test(match[1])) {
      if (Object.hasOwn(functions, match[1])) {
        usageError("listen", `Function "${match[1]}" is given twice`);
      }
      functions[match[1]] = execFunction(match[2], options);
    } else {
      if (++defaults > 1) usageError("listen", "Give one --exec CMD without a NAME=");
      handler = execHandler(exec, options);
    }
  }
  return { handler, functions };
}

async function checkAuthorizedKeys(keystore: Keystore, logger: Logger): Promise<void> {
  const path = keystore.path("authorizedKeys");
  const read = await keystore.readAuthorizedKeys();
  const entries = read.entries;
  const errors = [...read.errors, ...duplicateNames(entries)].sort((a, b) => a.line - b.line);
  if (errors.length > 0) {
    throw new OvtpError(
      "key",
      `Cannot use "${path}": line ${errors[0].line}: ${errors[0].message}`,
      {
        hint: "fix or delete that line",
      },
    );
  }
  if (entries.length === 0) {
    logger.warn(`no authorized keys in ${path}: every client will be refused`);
  }
}

async function importKeys(keystore: Keystore, file: string, logger: Logger) {
  for (const key of await readKeyLines(file)) {
    const result = await keystore.addAuthorizedKey(key.key, key.comment);
    // The logger shows the name and the path in their printable form.
    if (result.added) logger.info(`authorized "${result.name}" from ${file}`);
  }
}

/** Lines waiting for stdout before the handler waits for them to drain. */
const MAX_PENDING_PRINTS = 1024;

/**
 * Prints messages and files on stdout, in order, as text or JSON lines
 * (each with an `event`). When stdout's reader goes away (`listen | head
 * -1`), `closed` resolves and listen shuts down.
 */
class Printer {
  readonly #json: boolean;
  readonly #logger: Logger;
  readonly #closed = Promise.withResolvers<void>();
  #printing = Promise.resolve();
  #pending = 0;

  constructor(json: boolean, logger: Logger) {
    this.#json = json;
    this.#logger = logger;
  }

  /** Resolves once stdout is closed. */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  /**
   * The default handler: prints each message and answers "ok" at once.
   * stdout is written in order, behind the answers, so a pipelined client
   * is not held to the speed of one write per message (only a stalled
   * stdout slows it down).
   */
  handler(): RequestHandler {
    return async (request) => {
      const text = requestText(request);
      const { name, fingerprint } = request.peer;
      this.#print(
        this.#json
          ? jsonLine({
            time: new Date().toISOString(),
            event: "message",
            from: name,
            fingerprint,
            request_id: request.requestId,
            message: text,
          }) + "\n"
          // Exactly one line, to a terminal or a pipe alike: the text in the
          // printable form (one final line end dropped), so that no sender
          // can print a line that looks like another sender's; --json keeps
          // the exact text.
          : `${printable(name)} (${fingerprint}): ${printable(text.replace(/\r?\n$/, ""))}\n`,
      );
      if (this.#pending > MAX_PENDING_PRINTS) await this.#printing;
      return { status: "ok" };
    };
  }

  /** Prints a received file. */
  async file(file: ReceivedFile): Promise<void> {
    const { name, fingerprint } = file.peer;
    this.#print(
      this.#json
        ? jsonLine({
          time: new Date().toISOString(),
          event: "file",
          from: name,
          fingerprint,
          name: file.name,
          path: file.path,
          size: file.size,
          sha256: file.sha256,
        }) + "\n"
        : `${printable(name)} (${fingerprint}) sent file ${
          printable(file.path)
        }: ${file.size} bytes, sha256 ${file.sha256}\n`,
    );
    await this.#printing;
  }

  #print(line: string): void {
    this.#pending++;
    this.#printing = this.#printing
      .then(() => writeOut(line))
      .catch((error) => {
        if (isStdoutClosed(error)) this.#closed.resolve();
        else this.#logger.warn(`cannot print on stdout: ${(error as Error).message}`);
      })
      .finally(() => this.#pending--);
  }
}

/**
 * SIGINT and SIGTERM: the first asks for a graceful shutdown (`first`), one
 * more later asks to stop at once (`again`). A copy arriving within
 * REPEAT_MS of the first is the same request delivered twice (a Ctrl-C
 * reaches the whole process group, and the npm launcher forwards its own
 * copy too) and is ignored. The handlers stay until the process ends, so no
 * copy falls through to the default action (which would kill listen before
 * it could answer the work in flight).
 */
function stopSignals(): { first: Promise<Deno.Signal>; again: Promise<Deno.Signal> } {
  const first = Promise.withResolvers<Deno.Signal>();
  const again = Promise.withResolvers<Deno.Signal>();
  let firstAt: number | undefined;
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) {
    Deno.addSignalListener(signal, () => {
      if (firstAt === undefined) {
        firstAt = Date.now();
        first.resolve(signal);
      } else if (Date.now() - firstAt > REPEAT_MS) {
        again.resolve(signal);
      }
    });
  }
  return { first: first.promise, again: again.promise };
}

/** Signals this close after the first are copies of it, not a second request. */
const REPEAT_MS = 1000;

/** `ovtp listen`. */
export const listen: Command = {
  usage: USAGE,
  run,
  json: true,
  logFormat: true,
};
