/**
 * Handlers that run a command per request: the message (or, for a named
 * function, a JSON object with the parameters and the message) on its
 * stdin, the sender in its environment, its stdout as the response and its
 * exit code as the status. A command that runs too long is killed, with
 * anything it started, and answered `timeout`.
 *
 * @module
 */

import { concat, fromUtf8, utf8 } from "./bytes.ts";
import type { FunctionCall, FunctionHandler, Reply, Request, RequestHandler } from "./server.ts";

/** Options of {@linkcode execHandler} and {@linkcode execFunction}. */
export interface ExecOptions {
  /** The largest response kept; the rest of the output is cut. @default 1 MiB */
  maxOutput?: number;
  /** Kill the command after this long and answer `timeout`. @default 30000 */
  timeoutMs?: number;
}

/** Environment variables the command receives. */
export const EXEC_ENV = {
  name: "OVTP_SENDER_NAME",
  fingerprint: "OVTP_SENDER_FINGERPRINT",
  requestId: "OVTP_REQUEST_ID",
  function: "OVTP_FUNCTION",
} as const;

/** Variables never passed to a command. */
const SECRET_VARIABLES = new Set(["OVTP_PASSPHRASE"]);

/**
 * Runs `command` through the system shell (`sh -c`, or `cmd /c` on
 * Windows) for each request, with the message on stdin.
 */
export function execHandler(command: string, options: ExecOptions = {}): RequestHandler {
  return (request: Request) => runCommand(command, request.body, request, undefined, options);
}

/**
 * Runs `command` for a named function: its stdin is
 * `{"function", "params", "message"}` as JSON, and `OVTP_FUNCTION` names it.
 */
export function execFunction(command: string, options: ExecOptions = {}): FunctionHandler {
  return (call: FunctionCall) => {
    let message: string;
    try {
      message = fromUtf8(call.body);
    } catch {
      return { status: "error", response: "The message of a function call must be UTF-8 text" };
    }
    const input = utf8(JSON.stringify({ function: call.name, params: call.params, message }));
    return runCommand(command, input, call, call.name, options);
  };
}

async function runCommand(
  command: string,
  input: Uint8Array,
  request: Request,
  functionName: string | undefined,
  options: ExecOptions,
): Promise<Reply> {
  const maxOutput = options.maxOutput ?? 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const windows = Deno.build.os === "windows";
  // On Linux, setsid puts the command in its own process group, so that a
  // timeout kills whatever it started too.
  const argv = windows
    ? ["cmd", "/c", command]
    : Deno.build.os === "linux"
    ? ["setsid", "sh", "-c", command]
    : ["sh", "-c", command];
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
    if (Deno.build.os === "linux") Deno.kill(-child.pid, "SIGKILL");
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
