/**
 * The real `ovtp listen` in a child process, with a temporary server home
 * and one authorized client identity, for the benchmarks that measure the
 * server (load.ts, idle_connections.ts, fragment_flood.ts).
 *
 * @module
 */

import { type Identity, Keystore } from "../mod.ts";
import { fileURLToPath } from "node:url";
import { V8_FLAGS } from "../scripts/compile.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

/** A running `ovtp listen`. */
export interface BenchServer {
  /** Its port on 127.0.0.1. */
  port: number;
  /** Its process id. */
  pid: number;
  /** An identity the server authorizes. */
  clientIdentity: Identity;
  /** The client's OVTP_HOME, holding that identity. */
  clientHome: string;
  /** The server's resident set size now, in KiB (0 once it has exited). */
  rssKiB(): number;
  /** Stops the server and removes both homes. */
  stop(): Promise<void>;
}

async function ovtp(home: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, ...args],
    env: { OVTP_HOME: home, HOME: `${home}.user`, OVTP_ACCEPT_NEW: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

/** Resident set size of a process in KiB, or 0 when it is gone. */
export function rssKiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Starts `ovtp listen -q ARGS...` on 127.0.0.1, port 0. */
export async function startServer(args: string[] = []): Promise<BenchServer> {
  const dir = await Deno.makeTempDir({ prefix: "ovtp-bench-" });
  const server = `${dir}/server`;
  const client = `${dir}/client`;
  await ovtp(server, ["keygen", "--comment", "server"]);
  await ovtp(client, ["keygen", "--comment", "bench"]);
  await ovtp(server, ["add-key", (await ovtp(client, ["id"])).trim()]);
  const child = new Deno.Command(Deno.execPath(), {
    // With the V8 settings of the compiled binary.
    args: [
      "run",
      "--quiet",
      "-A",
      V8_FLAGS,
      MAIN,
      "listen",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "-q",
      ...args,
    ],
    env: { OVTP_HOME: server, HOME: `${server}.user` },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const port = await readPort(child.stderr);
    const clientIdentity = await new Keystore(client).loadIdentity(() => Promise.resolve(""));
    return {
      port,
      pid: child.pid,
      clientIdentity,
      clientHome: client,
      rssKiB: () => rssKiB(child.pid),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function readPort(stderr: ReadableStream<Uint8Array>): Promise<number> {
  let text = "";
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`listen exited:\n${text}`);
    text += value;
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(text)?.[1];
    if (port) {
      // Keep draining stderr so the server never blocks on it.
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })().catch(() => {});
      return Number(port);
    }
  }
}
