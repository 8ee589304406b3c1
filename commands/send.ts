import { DEFAULT_PORT, type OvtpClient, OvtpError, type Response, responseText } from "../mod.ts";
import {
  type Command,
  forTerminal,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  parseHostPort,
  readStdin,
  readStdinLines,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { CONNECT_HELP, CONNECT_OPTIONS, connectTo } from "./_connect.ts";

const USAGE = `Usage: ovtp send HOST[:PORT] [MESSAGE...] [--json] [--lines] [--strict]
                 [--timeout SECONDS] [--home DIR]

Sends a message and prints the server's response. The message is the
arguments joined by spaces, or stdin when there are none. Exits 0 when the
server answers "ok", 1 when it answers another status.

The first connection to a host records its key in ~/.ovtp/known_hosts; a
changed key is refused.

Options:
  --json              print {"status","response","request_id"} per response
  --lines             send each line of stdin as its own request, pipelined
                      over one connection; responses print in order
${CONNECT_HELP}
  --home DIR          use DIR instead of $OVTP_HOME or ~/.ovtp
`;

/** The most requests --lines keeps in flight. */
const WINDOW = 256;
const MAX_STDIN_MESSAGE = 16 * 1024 * 1024 - 1024;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    json: { type: "boolean" },
    lines: { type: "boolean" },
    ...CONNECT_OPTIONS,
  }, "send");
  if (positionals.length === 0) usageError("send", "Missing the HOST to send to");
  // Checked now, so that a typo fails before stdin is read.
  parseHostPort(positionals[0], DEFAULT_PORT);
  const words = positionals.slice(1);
  if (values.lines && words.length > 0) {
    usageError("send", "--lines reads the messages from stdin; give no MESSAGE");
  }

  const keystore = openKeystore(values.home);
  const message = values.lines || words.length > 0
    ? words.join(" ")
    : await readStdin(MAX_STDIN_MESSAGE);
  const { client } = await connectTo("send", keystore, positionals[0], values);
  try {
    // With --lines every response is one line, empty or not, so that output
    // lines match input lines.
    const print = (response: Response) =>
      printResponse(response, values.json ?? false, values.lines ?? false);
    if (!values.lines) {
      const response = await client.request(message);
      await print(response);
      return statusExit(response);
    }
    return await sendLines(client, print);
  } finally {
    client.close();
  }
}

/** Sends stdin's lines pipelined, at most WINDOW in flight, printing in order. */
async function sendLines(
  client: OvtpClient,
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
    const request = client.request(line);
    request.catch(() => {}); // Awaited in order by printNext.
    inFlight.push(request);
    if (inFlight.length >= WINDOW) await printNext();
  }
  while (inFlight.length > 0) await printNext();
  if (failures > 0) {
    await writeErr(`ovtp: error: ${failures} request(s) were not answered "ok"\n`);
    return 1;
  }
  return 0;
}

async function printResponse(
  response: Response,
  json: boolean,
  oneLineEach: boolean,
): Promise<void> {
  const text = responseText(response);
  if (json) {
    await writeOut(
      JSON.stringify({
        status: response.status,
        response: text,
        request_id: response.requestId,
      }) + "\n",
    );
  } else if (text || oneLineEach) {
    const shown = forTerminal(text, Deno.stdout.isTerminal());
    await writeOut(shown.endsWith("\n") ? shown : shown + "\n");
  }
}

function statusExit(response: Response): number {
  if (response.status === "ok") return 0;
  throw new OvtpError("remote", `The server answered with status "${response.status}"`);
}

/** `ovtp send`. */
export const send: Command = {
  summary: "send a message and print the response",
  usage: USAGE,
  run,
};
