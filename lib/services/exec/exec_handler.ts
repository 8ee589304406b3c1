/**
 * Handlers that run a command per request: the message (or, for a named
 * function, a JSON object with the parameters and the message) on its
 * stdin, the sender in its environment, its stdout as the response and its
 * exit code as the status. A command that runs too long is killed, with
 * anything it started in its process group, and answered `timeout`; a
 * command that calls setsid itself (or daemonizes) leaves that group and is
 * out of reach. How many commands run at once is capped per key and in
 * total (see exec_slots.ts): over the caps a request waits, and one over
 * the waiting bound is answered `busy`.
 *
 * @module
 */

import { concat, fromUtf8, utf8 } from "../../bytes.ts";
import { ExecSlots } from "./exec_slots.ts";
import type {
  FunctionCall,
  FunctionHandler,
  Reply,
  Request,
  RequestHandler,
} from "../../server/types.ts";

/**
 * Options of {@linkcode execHandler} and {@linkcode execFunction}.
 *
 * @example Stopping a command that runs too long, cutting long output
 * ```ts
 * import { execHandler, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const request = {
 *   requestId: 1,
 *   body: new Uint8Array(0),
 *   peer: { name: "alice", fingerprint: "SHA256:test", key: publicKey },
 * };
 *
 * // cmd.exe has no `sleep`: on Windows, `ping` waits instead.
 * const sleep10 = Deno.build.os === "windows" ? "ping -n 11 127.0.0.1 >nul" : "sleep 10";
 * const slow = execHandler(sleep10, { timeoutMs: 100 });
 * assert.equal((await slow(request)).status, "timeout");
 *
 * const chatty = execHandler("echo 0123456789", { maxOutput: 4 });
 * assert.deepEqual(await chatty(request), {
 *   status: "ok",
 *   response: new TextEncoder().encode("0123"),
 * });
 * ```
 */
export interface ExecOptions {
  /** The largest response kept; the rest of the output is cut. @default 1 MiB */
  maxOutput?: number;
  /** Kill the command after this long and answer `timeout` (waiting for a slot not counted). @default 30000 */
  timeoutMs?: number;
  /**
   * The caps on commands running at once; give every handler of a server
   * the same one. @default a cap of its own: 4 per key, 16 in total
   */
  slots?: ExecSlots;
}

/** How long a command may run by default before it is killed. */
export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;

/** Environment variables the command receives. */
export const EXEC_ENV = {
  name: "OVTP_SENDER_NAME",
  fingerprint: "OVTP_SENDER_FINGERPRINT",
  requestId: "OVTP_REQUEST_ID",
  function: "OVTP_FUNCTION",
} as const;

/**
 * Variables never passed to a command: the passphrases, and the agent's
 * socket, which would hand the command the server's key.
 */
const SECRET_VARIABLES = new Set(["OVTP_PASSPHRASE", "OVTP_NEW_PASSPHRASE", "OVTP_AGENT"]);

/**
 * Runs `command` through the system shell (`sh -c`, or `cmd /c` on
 * Windows) for each request, with the message on stdin. The sender's name
 * is in `OVTP_SENDER_NAME`, its fingerprint in `OVTP_SENDER_FINGERPRINT`;
 * exit code 0 answers `ok`, any other `error` (with stderr when stdout is
 * empty).
 *
 * @example Serving a shell command
 * ```ts
 * import { execHandler, generateIdentity, OvtpClient, responseText, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * // cmd.exe has no `tr`: on Windows, a Deno one-liner does the same.
 * const upper = Deno.build.os === "windows"
 *   ? `"${Deno.execPath()}" eval "const text = await new Response(Deno.stdin.readable).text();` +
 *     ` const line = Deno.env.get('OVTP_SENDER_NAME') + ' wrote: ' + text.toUpperCase();` +
 *     ` await Deno.stdout.write(new TextEncoder().encode(line))"`
 *   : 'printf "%s wrote: " "$OVTP_SENDER_NAME"; tr a-z A-Z';
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: execHandler(upper),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * assert.equal(responseText(await client.request("hello")), "alice wrote: HELLO");
 * client.close();
 * await server.close();
 * ```
 *
 * @example A failing command answers `error`
 * ```ts
 * import { execHandler, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const { publicKey } = await generateIdentity();
 * const windows = Deno.build.os === "windows";
 * const handler = execHandler(
 *   windows ? "echo no such user>&2& exit 3" : "echo 'no such user' >&2; exit 3",
 * );
 * const reply = await handler({
 *   requestId: 1,
 *   body: new TextEncoder().encode("bob"),
 *   peer: { name: "alice", fingerprint: "SHA256:test", key: publicKey },
 * });
 * assert.equal(reply.status, "error");
 * const line = windows ? "no such user\r\n" : "no such user\n"; // cmd ends lines with CR LF.
 * assert.deepEqual(reply.response, new TextEncoder().encode(line)); // From stderr.
 * ```
 */
export function execHandler(command: string, options: ExecOptions = {}): RequestHandler {
  const slots = options.slots ?? new ExecSlots();
  return (request: Request) =>
    runLimited(
      slots,
      () => runCommand(command, request.body, request, undefined, options),
      request,
    );
}

/**
 * Runs `command` for a named function: its stdin is
 * `{"function", "params", "message"}` as JSON, and `OVTP_FUNCTION` names it.
 *
 * @example What the command reads
 * ```ts
 * import { execFunction, generateIdentity } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * // `cat` answers with its input; a real command would parse it (with jq, say).
 * // cmd.exe has no `cat`: on Windows, a Deno one-liner copies stdin instead.
 * const cat = Deno.build.os === "windows"
 *   ? `"${Deno.execPath()}" eval "await Deno.stdin.readable.pipeTo(Deno.stdout.writable)"`
 *   : "cat";
 * const handler = execFunction(cat);
 * // serve({ ..., functions: { backup: handler } })
 * const { publicKey } = await generateIdentity();
 * const reply = await handler({
 *   requestId: 1,
 *   name: "backup",
 *   params: { target: "/srv" },
 *   body: new TextEncoder().encode("now"),
 *   peer: { name: "alice", fingerprint: "SHA256:test", key: publicKey },
 * });
 * assert.equal(reply.status, "ok");
 * const input = JSON.parse(new TextDecoder().decode(reply.response as Uint8Array));
 * assert.deepEqual(input, {
 *   function: "backup",
 *   params: { target: "/srv" },
 *   message: "now",
 * });
 * ```
 */
export function execFunction(command: string, options: ExecOptions = {}): FunctionHandler {
  const slots = options.slots ?? new ExecSlots();
  return (call: FunctionCall) => {
    let message: string;
    try {
      message = fromUtf8(call.body);
    } catch {
      return { status: "error", response: "The message of a function call must be UTF-8 text" };
    }
    const input = utf8(JSON.stringify({ function: call.name, params: call.params, message }));
    return runLimited(slots, () => runCommand(command, input, call, call.name, options), call);
  };
}

/** Runs `run` in one of the sender's slots, or answers `busy`. */
async function runLimited(
  slots: ExecSlots,
  run: () => Promise<Reply>,
  request: Request,
): Promise<Reply> {
  const release = await slots.acquire(request.peer.fingerprint, request.signal);
  if (request.signal?.aborted) {
    release?.();
    return { status: "unavailable", response: "The connection ended before the command started" };
  }
  if (!release) {
    return {
      status: "busy",
      response: "Too many commands running and waiting for your key: retry later",
    };
  }
  try {
    return await run();
  } finally {
    release();
  }
}

async function runCommand(
  command: string,
  input: Uint8Array,
  request: Request,
  functionName: string | undefined,
  options: ExecOptions,
): Promise<Reply> {
  const maxOutput = options.maxOutput ?? 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  const windows = Deno.build.os === "windows";
  // Elsewhere than Windows the command starts as the leader of its own
  // session (detached: setsid before exec), so that a timeout kills whatever
  // it started too, and a Ctrl-C on the terminal that runs listen does not
  // reach it: listen's shutdown lets it finish. (The setsid program left a
  // window in which the command was still in listen's process group.) On
  // Windows the command line is passed to cmd as is (as Node does for
  // shell: true): the default quoting would escape its quotes as \", which
  // cmd does not understand.
  const argv = windows ? ["cmd", "/d", "/s", "/c", `"${command}"`] : ["sh", "-c", command];
  const env: Record<string, string> = {
    ...commandEnvironment(),
    [EXEC_ENV.name]: request.peer.name,
    [EXEC_ENV.fingerprint]: request.peer.fingerprint,
    [EXEC_ENV.requestId]: String(request.requestId),
  };
  if (functionName !== undefined) env[EXEC_ENV.function] = functionName;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    // The server's environment minus its secrets: a command that echoes
    // its environment must not hand the key's passphrase to a client.
    clearEnv: true,
    env,
    windowsRawArguments: windows,
    detached: !windows,
  }).spawn();
  let timedOut = false;
  const stdoutReader = child.stdout.getReader();
  const stderrReader = child.stderr.getReader();
  const timer = setTimeout(() => {
    timedOut = true;
    kill(child);
    // Output pipes may be held open by grandchildren: stop waiting for them.
    stdoutReader.cancel().catch(() => {});
    stderrReader.cancel().catch(() => {});
  }, timeoutMs);
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(input);
      await writer.close();
    } catch {
      // The command need not read its input.
    }
  })();
  try {
    const [stdout, stderr] = await Promise.all([
      readBounded(stdoutReader, maxOutput),
      readBounded(stderrReader, maxOutput),
    ]);
    const status = await child.status;
    await writing;
    if (timedOut) {
      return {
        status: "timeout",
        response: `The function ran longer than ${timeoutMs} ms and was stopped`,
      };
    }
    if (status.success) return { status: "ok", response: stdout };
    return { status: "error", response: stdout.length > 0 ? stdout : stderr };
  } finally {
    clearTimeout(timer);
  }
}

function kill(child: Deno.ChildProcess): void {
  try {
    if (Deno.build.os !== "windows") Deno.kill(-child.pid, "SIGKILL");
    else child.kill("SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function commandEnvironment(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of SECRET_VARIABLES) delete env[name];
  return env;
}

// Keeps at most `limit` bytes but drains the rest, so the child never
// blocks on a full pipe.
async function readBounded(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, limit - size);
      if (take > 0) parts.push(value.subarray(0, take));
      size += take;
    }
  } catch {
    // Cancelled after a timeout.
  }
  return concat(...parts);
}
