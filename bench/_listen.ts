/**
 * The real `ovtp listen` in a child process, with a temporary server home
 * and one authorized client identity, for the benchmarks that measure the
 * server (load.ts, idle_connections.ts, fragment_flood.ts).
 *
 * @module
 */

import { type Identity, Keystore } from "../mod.ts";
import { rssKib } from "./_harness.ts";
import { type ListenProcess, MAIN, startListenProcess } from "../tests/_listen_process.ts";

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

/** Starts `ovtp listen -q ARGS...` on 127.0.0.1, port 0. */
export async function startServer(args: string[] = []): Promise<BenchServer> {
  const dir = await Deno.makeTempDir({ prefix: "ovtp-bench-" });
  const server = `${dir}/server`;
  const client = `${dir}/client`;
  await ovtp(server, ["keygen", "--comment", "server"]);
  await ovtp(client, ["keygen", "--comment", "bench"]);
  await ovtp(server, ["add-key", (await ovtp(client, ["id"])).trim()]);
  let listen: ListenProcess | undefined;
  const stop = async () => {
    await listen?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    listen = await startListenProcess({ ovtpHome: server, args: ["-q", ...args] });
    const clientIdentity = await new Keystore(client).loadIdentity(() => Promise.resolve(""));
    const pid = listen.pid;
    return {
      port: listen.port,
      pid,
      clientIdentity,
      clientHome: client,
      rssKiB: () => rssKib(pid),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
