import { duplicateNames } from "../lib/authorized_keys.ts";
import { authorizedKeysAuthorizer } from "../lib/authorizer.ts";
import { cryptoBackendInfo } from "../lib/crypto/mod.ts";
import { ChatRelay } from "../lib/chat/relay.ts";
import { RoomStore } from "../lib/chat/room_store.ts";
import { OvtpError } from "../lib/errors.ts";
import { execFunction, execHandler, type ExecOptions } from "../lib/exec_handler.ts";
import { ExecSlots } from "../lib/exec_slots.ts";
import { FUNCTION_NAME_PATTERN } from "../lib/function_call.ts";
import { parseRate } from "../lib/key_options.ts";
import { fingerprint, parsePublicKey } from "../lib/keys.ts";
import type { Keystore } from "../lib/keystore.ts";
import type { Logger } from "../lib/logger.ts";
import {
  DEFAULT_PORT,
  type FunctionHandler,
  type RequestHandler,
  requestText,
  serve,
} from "../lib/server.ts";
import { InviteStore } from "../lib/pair/invites.ts";
import { PairingResponder } from "../lib/pair/responder.ts";
import { Inbox } from "../lib/transfer/inbox.ts";
import type { ReceivedFile } from "../lib/transfer/receiver.ts";
import { ServedFolder } from "../lib/transfer/served_folder.ts";
import {
  type Command,
  identityHelp,
  openKeystore,
  parseFlags,
  parseSize,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { loadIdentity } from "./_identity.ts";
import {
  LISTEN_OPTIONS,
  type ListenSettings,
  mergeSettings,
  readConfig,
} from "./_listen_config.ts";
import { parseClusterUrls, startCluster } from "./_cluster.ts";
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
  --host H           address to listen on (default: 0.0.0.0, every interface)
  --port P           port (default: ${DEFAULT_PORT}; 0 picks a free one)
  --json             print each message and file as one JSON object per line,
                     with an "event": "message", "file", or "error" when
                     listen fails (--no-json overrides listen.json)
  --add-keys FILE... authorize the keys in these files before starting
  --config FILE      read settings from FILE (default: ~/.ovtp/listen.json)
  --home DIR         use DIR instead of $OVTP_HOME or ~/.ovtp
${identityHelp(21)}

Commands and named functions:
  --exec CMD         run CMD (sh -c) for each message: the message on stdin,
                     OVTP_SENDER_NAME, OVTP_SENDER_FINGERPRINT and
                     OVTP_REQUEST_ID in its environment; its stdout is the
                     response, exit code 0 means "ok", any other "error"
  --exec NAME=CMD    a named function (repeatable), for \`ovtp send --call
                     NAME\`: stdin is {"function","params","message"} as JSON,
                     OVTP_FUNCTION names it
  --exec-timeout SECONDS
                     kill a command running longer, answer "timeout" (default
                     30); a command that calls setsid itself is out of reach
  --max-exec N       commands running at once, in total (default 16)
  --max-exec-per-key N
                     commands running at once for one client key (default 4);
                     over a cap a request waits its turn, and past 1024
                     waiting for one key it is answered "busy"

Files and rooms:
  --inbox DIR        where received files go, in a folder per sender
                     (default: ~/.ovtp/inbox)
  --max-file-size SIZE
                     refuse files larger than SIZE (e.g. 500M, 10G)
  --keep-partial SECONDS
                     keep an interrupted upload this long for its sender to
                     resume it (default 604800, a week); checked periodically
  --max-partial SIZE keep at most SIZE of interrupted uploads per client key,
                     the oldest deleted first (default 16G)
  --serve DIR        let clients download from DIR, read-only (ovtp getfile)
  --rooms DIR        where chat rooms keep their members and the messages
                     held for offline members (default: ~/.ovtp/rooms)

Cluster (several relays sharing rooms; see docs/operations.md):
  --cluster nats://HOST:PORT[,...]
                     keep chat rooms, presence, queued messages and rate
                     limits in this NATS JetStream cluster, shared with the
                     other relays on it (each with the same server key)
  --cluster-creds FILE
                     a NATS credentials file; or set OVTP_NATS_CREDS, or
                     OVTP_NATS_USER and OVTP_NATS_PASSWORD, or OVTP_NATS_TOKEN
                     (never credentials in the address); OVTP_NATS_CA names
                     a CA certificate for tls:// addresses

Limits (each client key, and the server as a whole):
  --rate COUNT/UNIT  requests per key, e.g. 100/h (unit s, m, h or d; the
                     count is also the burst); a key's rate= option wins
  --max-connections N       open connections (default 10000)
  --max-per-address N       open connections from one address (default 64)
  --max-handshakes N        handshakes in progress (default 128)
  --handshake-timeout SECONDS  (default 10)
  --idle-timeout SECONDS       close idle connections (default 300)
  --max-message-size SIZE      largest message (default 16M)
  --max-queued SIZE            data queued for a client that does not read
                               before it is dropped (default 32M)
  --grace SECONDS              time for work in flight at shutdown (default 10)

Logs (stderr):
  -q, --quiet        warnings only
  -v, --verbose      debug detail too
  --log-format text|json
                     json: every line on stderr is one JSON object, the
                     "listening on" line and a fatal error included
`;

async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(args, LISTEN_OPTIONS, "listen");
  const keystore = openKeystore(flags.home);
  const configPath = flags.config ?? keystore.path("listenConfig");
  const settings = mergeSettings(
    flags as ListenSettings,
    await readConfig(configPath, flags.config !== undefined),
  );
  const get = (key: keyof ListenSettings) => settings[key] as string | undefined;
  const addKeyFiles = [...(settings["add-keys"] as string[] | undefined ?? []), ...positionals];
  if (positionals.length > 0 && !settings["add-keys"]) {
    usageError("listen", `Unexpected argument "${positionals[0]}"`);
  }
  const port = get("port") === undefined ? DEFAULT_PORT : integer(get("port")!, "--port", 0, 65535);
  const logFormat = get("log-format");
  if (logFormat !== "text" && logFormat !== "json") {
    usageError("listen", `Invalid --log-format "${logFormat}": use text or json`);
  }
  const logger = stderrLogger(
    settings.quiet ? "quiet" : settings.verbose ? "verbose" : "normal",
    logFormat,
  );
  const printer = new Printer(settings.json === true, logger);
  const { handler, functions } = handlers(
    (settings.exec as string[] | undefined) ?? [],
    {
      timeoutMs: seconds(get("exec-timeout")!, "--exec-timeout") * 1000,
      // One set of slots for every command, so the caps hold across them.
      slots: new ExecSlots({
        total: integer(get("max-exec")!, "--max-exec", 1),
        perKey: integer(get("max-exec-per-key")!, "--max-exec-per-key", 1),
      }),
    },
    printer,
  );
  const maxFileSize = get("max-file-size") === undefined
    ? undefined
    : parseSize(get("max-file-size")!, "--max-file-size", "listen");
  let rate;
  try {
    rate = get("rate") === undefined ? undefined : parseRate(get("rate")!);
  } catch (error) {
    usageError("listen", (error as Error).message);
  }

  const crypto = cryptoBackendInfo();
  logger.debug?.(`crypto backend: ${crypto.name} (${crypto.detail})`);
  const identity = await loadIdentity(keystore, get("identity"));
  for (const file of addKeyFiles) await importKeys(keystore, file, logger);
  await checkAuthorizedKeys(keystore, logger);
  const partialMaxAgeMs = seconds(get("keep-partial")!, "--keep-partial", true) * 1000;
  const inbox = new Inbox(get("inbox") ?? keystore.path("inbox"), {
    maxFileSize,
    partialMaxAgeMs,
    maxPartialBytes: parseSize(get("max-partial")!, "--max-partial", "listen"),
  });
  // Interrupted transfers wait for their sender to resume them, then go:
  // checked now and while listen runs, not only at the next start.
  await inbox.pruneStale();
  const pruning = setInterval(() => {
    inbox.pruneStale().then(
      (count) => count > 0 && logger.info(`deleted ${count} abandoned partial upload(s)`),
      (error) => logger.warn(`cannot prune the inbox: ${(error as Error).message}`),
    );
  }, Math.min(Math.max(partialMaxAgeMs / 2, 1000), 10 * 60 * 1000));
  const clusterUrls = get("cluster") === undefined ? undefined : parseClusterUrls(get("cluster")!);
  if (get("cluster-creds") !== undefined && !clusterUrls) {
    usageError("listen", "--cluster-creds needs --cluster");
  }
  const servedDir = get("serve");
  if (servedDir !== undefined && !(await Deno.stat(servedDir).catch(() => null))?.isDirectory) {
    throw new OvtpError("usage", `Cannot serve "${servedDir}": not a folder`);
  }

  // Before anyone can learn that it listens: a script that stops it as
  // soon as it reads the "listening on" line must get the graceful stop.
  const signals = stopSignals();
  const cluster = clusterUrls
    ? await startCluster(clusterUrls, get("cluster-creds"), logger)
    : undefined;
  const server = listenOn(get("host")!, port, {
    identity,
    logger,
    handler,
    functions,
    rate,
    handshakeTimeoutMs: seconds(get("handshake-timeout")!, "--handshake-timeout") * 1000,
    idleTimeoutMs: seconds(get("idle-timeout")!, "--idle-timeout") * 1000,
    maxConnections: integer(get("max-connections")!, "--max-connections", 1),
    maxPerAddress: integer(get("max-per-address")!, "--max-per-address", 1),
    maxHandshakes: integer(get("max-handshakes")!, "--max-handshakes", 1),
    maxMessageSize: parseSize(get("max-message-size")!, "--max-message-size", "listen"),
    maxQueuedBytes: parseSize(get("max-queued")!, "--max-queued", "listen"),
    inbox,
    onFile: (file) => printer.file(file),
    served: servedDir === undefined ? undefined : new ServedFolder(servedDir),
    chat: cluster?.relay ??
      new ChatRelay(new RoomStore(get("rooms") ?? keystore.path("rooms")), logger),
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
  const { hostname, port: actualPort } = server.addr;
  const where = hostname.includes(":")
    ? `[${hostname}]:${actualPort}`
    : `${hostname}:${actualPort}`;
  const print = await fingerprint(identity.publicKey);
  // Printed whatever the level (scripts wait for it), in the log's format.
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
  const reason = await Promise.race([signals.first, printer.closed.then(() => "stdout closed")]);
  const grace = seconds(get("grace")!, "--grace", true);
  logger.info(
    `${reason}: shutting down, letting work in flight finish (up to ${grace} s; ` +
      `signal again to stop at once)`,
  );
  clearInterval(pruning);
  const hurried = await Promise.race([
    server.close(grace * 1000).then(() => undefined),
    signals.again,
  ]);
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
 * Starts the server, saying which address could not be had: Deno's
 * "Address already in use" names none.
 */
function listenOn(
  hostname: string,
  port: number,
  options: Omit<Parameters<typeof serve>[0], "hostname" | "port">,
) {
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
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

function seconds(value: string, flag: string, zeroAllowed = false): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || (n <= 0 && !zeroAllowed)) {
    usageError("listen", `Invalid ${flag} "${value}"`);
  }
  return n;
}

function integer(value: string, flag: string, min: number, max = 1e9): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    usageError("listen", `Invalid ${flag} "${value}"`);
  }
  return n;
}

async function importKeys(keystore: Keystore, file: string, logger: Logger) {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new OvtpError("key", `Cannot read key file "${file}": ${(error as Error).message}`);
  }
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith("#")) continue;
    let parsed;
    try {
      parsed = parsePublicKey(line);
    } catch (error) {
      throw new OvtpError(
        "key",
        `Line ${i + 1} of "${file}" is not a valid public key: ${(error as Error).message}`,
      );
    }
    const result = await keystore.addAuthorizedKey(parsed.key, parsed.comment);
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
