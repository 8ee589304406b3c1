import {
  authorizedKeysAuthorizer,
  ChatRelay,
  DEFAULT_PORT,
  execHandler,
  fingerprint,
  Inbox,
  type LogFields,
  type Logger,
  OvtpError,
  parsePublicKey,
  type ReceivedFile,
  type RequestHandler,
  requestText,
  RoomStore,
  serve,
} from "../mod.ts";
import {
  askPassphrase,
  type Command,
  forTerminal,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  parseSize,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";

const USAGE = `Usage: ovtp listen [--host H] [--port P] [--exec CMD] [--json]
                   [--add-keys FILE...] [--home DIR]

Serves clients listed in ~/.ovtp/authorized_keys. Once ready it prints
"listening on HOST:PORT" and its fingerprint on stderr. Each message is
printed on stdout (sender name and fingerprint, then the text) and answered
"ok"; with --exec, a command answers instead. Files sent with sendfile land
in the inbox once complete and verified, and are printed on stdout. Chat
rooms are relayed: the server forwards envelopes it cannot read, and keeps
them for members who are offline (at most 1000 per member, for 7 days).

Options:
  --host H           address to listen on (default: 0.0.0.0, every interface)
  --port P           port (default: ${DEFAULT_PORT}; 0 picks a free one)
  --exec CMD         run CMD (through sh -c) for each message: the message on
                     its stdin, OVTP_SENDER_NAME, OVTP_SENDER_FINGERPRINT and
                     OVTP_REQUEST_ID in its environment; its stdout is the
                     response, exit code 0 means "ok", any other "error"
  --json             print each message as one JSON object per line
  --add-keys FILE... authorize the keys in these files before starting
  --inbox DIR        where received files go, in a folder per sender
                     (default: ~/.ovtp/inbox)
  --rooms DIR        where chat rooms keep their members and the messages
                     held for offline members (default: ~/.ovtp/rooms)
  --max-file-size SIZE
                     refuse files larger than SIZE (e.g. 500M, 10G)
  --handshake-timeout SECONDS
                     drop a client that has not finished the handshake in
                     time (default: 10)
  --idle-timeout SECONDS
                     close a connection idle this long (default: 300)
  --home DIR         use DIR instead of $OVTP_HOME or ~/.ovtp
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    host: { type: "string", default: "0.0.0.0" },
    port: { type: "string", default: String(DEFAULT_PORT) },
    exec: { type: "string" },
    json: { type: "boolean" },
    "add-keys": { type: "string", multiple: true },
    "handshake-timeout": { type: "string", default: "10" },
    "idle-timeout": { type: "string", default: "300" },
    inbox: { type: "string" },
    rooms: { type: "string" },
    "max-file-size": { type: "string" },
  }, "listen");
  const addKeyFiles = values["add-keys"] ?? [];
  if (positionals.length > 0 && addKeyFiles.length === 0) {
    usageError("listen", `Unexpected argument "${positionals[0]}"`);
  }
  const port = Number(values.port);
  if (!/^\d{1,5}$/.test(values.port) || port > 65535) {
    usageError("listen", `Invalid port "${values.port}"`);
  }
  const handshakeTimeout = seconds(values["handshake-timeout"], "--handshake-timeout");
  const idleTimeout = seconds(values["idle-timeout"], "--idle-timeout");
  const keystore = openKeystore(values.home);
  const identity = await keystore.loadIdentity(() => askPassphrase());
  for (const file of [...addKeyFiles, ...positionals]) await importKeys(keystore, file);

  const authorizedPath = keystore.path("authorizedKeys");
  const { entries, errors } = await keystore.readAuthorizedKeys();
  if (errors.length > 0) {
    throw new OvtpError(
      "key",
      `Cannot use "${authorizedPath}": line ${errors[0].line}: ${errors[0].message}`,
      { hint: "fix or delete that line" },
    );
  }
  if (entries.length === 0) {
    await writeErr(
      `ovtp: warning: no authorized keys in ${authorizedPath}: every client will be refused\n`,
    );
  }
  const logger = stderrLogger();
  const maxFileSize = values["max-file-size"] === undefined
    ? undefined
    : parseSize(values["max-file-size"], "--max-file-size", "listen");
  const inbox = new Inbox(values.inbox ?? keystore.path("inbox"), { maxFileSize });
  // Interrupted transfers wait a week for their sender to resume them.
  await inbox.pruneStale(7 * 24 * 3600 * 1000);
  const handler = values.exec === undefined
    ? printHandler(values.json ?? false)
    : execHandler(values.exec);
  const server = serve({
    identity,
    hostname: values.host,
    port,
    logger,
    handler,
    handshakeTimeoutMs: handshakeTimeout * 1000,
    idleTimeoutMs: idleTimeout * 1000,
    inbox,
    onFile: (file) => printFile(file, values.json ?? false),
    chat: new ChatRelay(new RoomStore(values.rooms ?? keystore.path("rooms")), logger),
    authorize: authorizedKeysAuthorizer(
      keystore,
      (error) => logger.warn(`skipping ${authorizedPath} line ${error.line}: ${error.message}`),
    ),
  });
  const { hostname, port: actualPort } = server.addr;
  const where = hostname.includes(":")
    ? `[${hostname}]:${actualPort}`
    : `${hostname}:${actualPort}`;
  await writeErr(
    `ovtp: listening on ${where} as ${await fingerprint(identity.publicKey)}\n`,
  );
  await waitForSignal();
  await writeErr("ovtp: shutting down\n");
  await server.close();
  return 0;
}

function seconds(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0) usageError("listen", `Invalid ${flag} "${value}"`);
  return n;
}

async function importKeys(keystore: ReturnType<typeof openKeystore>, file: string) {
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
    if (result.added) await writeErr(`ovtp: authorized "${result.name}" from ${file}\n`);
  }
}

/** Lines waiting for stdout before the handler waits for them to drain. */
const MAX_PENDING_PRINTS = 1024;

/**
 * Prints each message and answers "ok" at once: stdout is written in
 * order, behind the answers, so a pipelined client is not held to the
 * speed of one write per message (only a stalled stdout slows it down).
 */
function printHandler(json: boolean): RequestHandler {
  const terminal = Deno.stdout.isTerminal();
  let printing = Promise.resolve();
  let pending = 0;
  return async (request) => {
    const text = requestText(request);
    const { name, fingerprint } = request.peer;
    const line = json
      ? JSON.stringify({
        time: new Date().toISOString(),
        from: name,
        fingerprint,
        request_id: request.requestId,
        message: text,
      }) + "\n"
      : `${forTerminal(name, terminal)} (${fingerprint}): ${forTerminal(text, terminal)}${
        text.endsWith("\n") ? "" : "\n"
      }`;
    pending++;
    printing = printing.then(() => writeOut(line)).finally(() => pending--);
    if (pending > MAX_PENDING_PRINTS) await printing;
    return { status: "ok" };
  };
}

async function printFile(file: ReceivedFile, json: boolean): Promise<void> {
  const { name, fingerprint } = file.peer;
  await writeOut(
    json
      ? JSON.stringify({
        time: new Date().toISOString(),
        event: "file",
        from: name,
        fingerprint,
        name: file.name,
        path: file.path,
        size: file.size,
        sha256: file.sha256,
      }) + "\n"
      : `${forTerminal(name, Deno.stdout.isTerminal())} (${fingerprint}) sent file ${
        forTerminal(file.path, Deno.stdout.isTerminal())
      }: ${file.size} bytes, sha256 ${file.sha256}\n`,
  );
}

function stderrLogger(): Logger {
  const line = (level: string, message: string, fields?: LogFields) => {
    const extra = Object.entries(fields ?? {})
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${value}`)
      .join(" ");
    writeErr(`ovtp: ${level}${message}${extra ? ` (${extra})` : ""}\n`).catch(() => {});
  };
  return {
    info: (message, fields) => line("", message, fields),
    warn: (message, fields) => line("warning: ", message, fields),
  };
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    const stop = () => {
      for (const signal of signals) Deno.removeSignalListener(signal, stop);
      resolve();
    };
    for (const signal of signals) Deno.addSignalListener(signal, stop);
  });
}

/** `ovtp listen`. */
export const listen: Command = { summary: "serve: answer messages", usage: USAGE, run };
