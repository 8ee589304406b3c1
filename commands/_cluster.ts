/**
 * `ovtp listen --cluster`: the NATS addresses from the flag or listen.json,
 * the credentials from a file or the environment (never the command line,
 * where other users of the machine see them), and the NATS client loaded
 * only then.
 *
 * @module
 */

import type { ClusterRelay } from "../lib/cluster/cluster_relay.ts";
import { OvtpError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { usageError } from "./_cli.ts";

/** Checks `nats://HOST:PORT[,...]`; no credentials in it. */
export function parseClusterUrls(value: string): string[] {
  const servers = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (servers.length === 0) usageError("listen", "Invalid --cluster: give nats://HOST:PORT");
  for (const server of servers) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      usageError("listen", `Invalid --cluster address "${server}": use nats://HOST:PORT`);
    }
    if ((url.protocol !== "nats:" && url.protocol !== "tls:") || !url.hostname) {
      usageError("listen", `Invalid --cluster address "${server}": use nats://HOST:PORT`);
    }
    if (url.username || url.password) {
      usageError(
        "listen",
        `Refusing credentials in --cluster "${url.protocol}//${url.host}": ` +
          "give them with --cluster-creds FILE or OVTP_NATS_USER/OVTP_NATS_PASSWORD",
      );
    }
    if (url.pathname !== "" && url.pathname !== "/") {
      usageError("listen", `Invalid --cluster address "${server}": use nats://HOST:PORT`);
    }
  }
  return servers;
}

/**
 * Starts this relay's part of the cluster. Credentials: `credsFile` (a
 * NATS .creds file) or $OVTP_NATS_CREDS, else $OVTP_NATS_USER with
 * $OVTP_NATS_PASSWORD, else $OVTP_NATS_TOKEN; $OVTP_NATS_CA names a CA
 * certificate for tls:// servers.
 */
export async function startCluster(
  servers: string[],
  credsFile: string | undefined,
  logger: Logger,
): Promise<ClusterRelay> {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const path = credsFile ?? env("OVTP_NATS_CREDS");
  let creds: Uint8Array | undefined;
  if (path !== undefined) {
    try {
      creds = await Deno.readFile(path);
    } catch (error) {
      throw new OvtpError(
        "usage",
        `Cannot read NATS credentials "${path}": ${(error as Error).message}`,
      );
    }
  }
  const password = env("OVTP_NATS_PASSWORD");
  const user = password !== undefined ? env("OVTP_NATS_USER") : env("OVTP_NATS_TOKEN");
  // Loaded here only: a relay without --cluster never loads the NATS client.
  const { startClusterRelay } = await import("../lib/cluster/cluster_relay.ts");
  return await startClusterRelay(
    { servers, creds, user, password, caFile: env("OVTP_NATS_CA"), logger },
    logger,
  );
}
