/**
 * A request handler that runs a command for each message: the message on
 * its stdin, the sender in its environment, its stdout as the response and
 * its exit code as the status.
 *
 * @module
 */

import type { Reply, Request, RequestHandler } from "./server.ts";

/** Options of {@linkcode execHandler}. */
export interface ExecHandlerOptions {
  /** The largest response kept; the rest of the output is cut. @default 1 MiB */
  maxOutput?: number;
}

/** Environment variables the command receives. */
export const EXEC_ENV = {
  name: "OVTP_SENDER_NAME",
  fingerprint: "OVTP_SENDER_FINGERPRINT",
  requestId: "OVTP_REQUEST_ID",
} as const;

/**
 * Runs `command` through the system shell (`sh -c`, or `cmd /c` on
 * Windows) for each request. Exit code 0 answers `ok`, any other `error`.
 */
export function execHandler(command: string, options: ExecHandlerOptions = {}): RequestHandler {
  const maxOutput = options.maxOutput ?? 1024 * 1024;
  const shell = Deno.build.os === "windows" ? ["cmd", "/c"] : ["sh", "-c"];
  return async (request: Request): Promise<Reply> => {
    const child = new Deno.Command(shell[0], {
      args: [shell[1], command],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // The server's environment minus its secrets: a command that echoes
      // its environment must not hand the key's passphrase to a client.
      clearEnv: true,
      env: {
        ...commandEnvironment(),
        [EXEC_ENV.name]: request.peer.name,
        [EXEC_ENV.fingerprint]: request.peer.fingerprint,
        [EXEC_ENV.requestId]: String(request.requestId),
      },
    }).spawn();
    const writing = (async () => {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(request.body);
        await writer.close();
      } catch {
        // The command need not read its input.
      }
    })();
    const [stdout, stderr] = await Promise.all([
      readBounded(child.stdout, maxOutput),
      readBounded(child.stderr, maxOutput),
    ]);
    const status = await child.status;
    await writing;
    if (status.success) return { status: "ok", response: stdout };
    return { status: "error", response: stdout.length > 0 ? stdout : stderr };
  };
}

// Keeps at most `limit` bytes but drains the rest, so the child never
// blocks on a full pipe.
async function readBounded(stream: ReadableStream<Uint8Array>, limit: number) {
  const out = new Uint8Array(limit);
  let size = 0;
  for await (const chunk of stream) {
    const take = Math.min(chunk.length, limit - size);
    out.set(chunk.subarray(0, take), size);
    size += take;
  }
  return out.slice(0, size);
}

/** Variables never passed to a command. */
const SECRET_VARIABLES = new Set(["OVTP_PASSPHRASE"]);

function commandEnvironment(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of SECRET_VARIABLES) delete env[name];
  return env;
}
