import { type Response, responseText } from "../lib/client/client.ts";
import { OvtpError } from "../lib/errors.ts";
import { FUNCTION_NAME_PATTERN } from "../lib/services/function_call.ts";
import { DEFAULT_PORT } from "../lib/server/defaults.ts";
import {
  type Command,
  openKeystore,
  parseHostPort,
  readStdin,
  readStdinLines,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { CONNECT, CONNECT_HELP, connectTo } from "./_connect.ts";
import { flag, HOME, list, parsed, parseOptions } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { jsonLine, printable } from "./_printable.ts";

const OPTIONS = {
  json: flag({ help: 'print {"status","response","request_id"} per response' }),
  lines: flag({
    help: "send each line of stdin as its own request, pipelined over one connection; " +
      "responses print in order, one line each: an empty response as an empty line, a " +
      "line break inside one as \\n",
  }),
  call: parsed({
    arg: "NAME",
    help: "call the server's function NAME (see listen --exec NAME=CMD)",
  }, (name) => {
    if (!FUNCTION_NAME_PATTERN.test(name)) throw new Error(`Invalid function name "${name}"`);
    return name;
  }),
  param: list({ arg: "KEY=VALUE", help: "a parameter for --call (repeatable)" }),
  ...CONNECT,
  home: HOME,
};

const USAGE = `Usage: ovtp send HOST[:PORT] [MESSAGE...] [--json] [--lines] [--strict]
                 [--call NAME [--param KEY=VALUE]...] [--timeout SECONDS] [--home DIR]

Sends a message and prints the server's response: its exact bytes to a
pipe or file, with control characters shown escaped on a terminal. The
message is the arguments joined by spaces, or stdin when there are none.
Exits 0 when the server answers "ok", 1 when it answers another status
(README lists the other exit codes). On a terminal, an empty "ok" is
confirmed on stderr. With --call, runs the server's named function NAME
with the parameters and the message.

Statuses other than "ok" and "error" come from the server itself and are
explained on stderr: "unknown-function" (with the known names), "forbidden"
(your key lacks that permission), "too-many-requests" (with the time to wait),
"timeout" (the function ran too long), "unavailable" (shutting down).

A host not yet in ~/.ovtp/known_hosts shows its fingerprint and asks on a
terminal, and is refused without one unless --accept-new; a changed key is
refused. HOST may be an alias from ~/.ovtp/config.

Options:
${optionsHelp(OPTIONS, ["json", "lines", "call", "param"], 22)}
${CONNECT_HELP}
`;

/** The most requests --lines keeps in flight. */
const WINDOW = 256;
const MAX_STDIN_MESSAGE = 16 * 1024 * 1024 - 1024;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "send");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length === 0) usageError("send", "Missing the HOST to send to");
  // Checked now, so that a typo fails before stdin is read.
  parseHostPort(positionals[0], DEFAULT_PORT);
  const words = positionals.slice(1);
  if (values.lines && words.length > 0) {
    usageError("send", "--lines reads the messages from stdin; give no MESSAGE");
  }

  const params = parseParams(values.param);
  if (values.param.length > 0 && values.call === undefined) {
    usageError("send", "--param needs --call NAME");
  }
  const keystore = openKeystore(values.home);
  const message = values.lines || words.length > 0
    ? words.join(" ")
    : await readMessage(positionals[0]);
  const { client } = await connectTo("send", keystore, positionals[0], values);
  try {
    // With --lines every response is one line, empty or not, so that output
    // lines match input lines.
    const print = (response: Response) => printResponse(response, values.json, values.lines);
    const { call } = values;
    const ask = (text: string | Uint8Array) =>
      call === undefined ? client.request(text) : client.call(call, params, text);
    if (!values.lines) {
      const response = await ask(message);
      await print(response);
      if (response.status !== "ok") throw statusError(response);
      if (!values.json && response.body.length === 0 && Deno.stdout.isTerminal()) {
        // Silence would not tell a person "delivered" from "nothing happened".
        await writeErr("ovtp: ok (the response is empty)\n");
      }
      return 0;
    }
    const failures = await sendLines(ask, print);
    if (failures > 0) {
      throw new OvtpError("remote", `${failures} request(s) were not answered "ok"`);
    }
    return 0;
  } finally {
    client.close();
  }
}

/** The message on stdin, refused with a pointer to sendfile when it is too large for one. */
async function readMessage(host: string): Promise<Uint8Array> {
  try {
    return await readStdin(MAX_STDIN_MESSAGE);
  } catch (error) {
    if (!(error instanceof OvtpError) || error.kind !== "too-large") throw error;
    throw new OvtpError(
      "too-large",
      `The message is larger than ${MAX_STDIN_MESSAGE} bytes (16 MiB less 1 KiB), ` +
        "the most one message carries",
      { hint: `send it as a file, of any size: \`ovtp sendfile ${host} --name NAME < FILE\`` },
    );
  }
}

/**
 * Sends stdin's lines pipelined, at most WINDOW in flight, printing in
 * order; returns how many were not answered "ok".
 */
async function sendLines(
  ask: (text: string) => Promise<Response>,
  print: (response: Response) => Promise<void>,
): Promise<number> {
  const inFlight: Promise<Response>[] = [];
  let failures = 0;
  const printNext = async () => {
    const response = await inFlight.shift()!;
    await print(response);
    if (response.status !== "ok") failures++;
  };
  for await (const line of readStdinLines()) {
    const request = ask(line);
    request.catch(() => {}); // Awaited in order by printNext.
    inFlight.push(request);
    if (inFlight.length >= WINDOW) await printNext();
  }
  while (inFlight.length > 0) await printNext();
  return failures;
}

/**
 * Prints one response. The body is the payload: to a pipe or file it goes
 * out as the exact bytes; on a terminal in the printable form, lines kept.
 * With --lines each response is one line, in the printable form even to a
 * pipe, so that a response cannot add lines (--json for the exact value).
 */
async function printResponse(
  response: Response,
  json: boolean,
  oneLineEach: boolean,
): Promise<void> {
  const text = responseText(response);
  if (json) {
    await writeOut(
      jsonLine({
        status: response.status,
        response: text,
        request_id: response.requestId,
      }) + "\n",
    );
  } else if (oneLineEach) {
    await writeOut(printable(text.replace(/\r?\n$/, "")) + "\n");
  } else if (SERVER_STATUSES.has(response.status)) {
    // Explained in the error line instead.
  } else if (!Deno.stdout.isTerminal()) {
    await writeOut(response.body);
    if (response.body.length > 0 && response.body.at(-1) !== 0x0a) await writeOut("\n");
  } else if (text) {
    const shown = printable(text, { keepLines: true });
    await writeOut(shown.endsWith("\n") ? shown : shown + "\n");
  }
}

/** Statuses the server itself answers with, whose response explains them. */
const SERVER_STATUSES = new Set([
  "unknown-function",
  "forbidden",
  "too-many-requests",
  "timeout",
  "unavailable",
  "busy",
]);

function statusError(response: Response): OvtpError {
  const explanation = SERVER_STATUSES.has(response.status)
    ? `: ${responseText(response).trim()}`
    : "";
  return new OvtpError(
    "remote",
    `The server answered with status "${response.status}"${explanation}`,
  );
}

function parseParams(pairs: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) usageError("send", `Invalid --param "${pair}": expected KEY=VALUE`);
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return params;
}

/** `ovtp send`. */
export const send: Command = {
  usage: USAGE,
  run,
  json: true,
};
