/**
 * The client side's common start: the flags every connecting command takes
 * (`--strict`, `--timeout`), the identity, and a connection whose server key
 * is checked against known_hosts.
 *
 * @module
 */

import { OvtpClient } from "../lib/client.ts";
import { knownHostsVerifier } from "../lib/host_trust.ts";
import type { Identity } from "../lib/keys.ts";
import type { Keystore } from "../lib/keystore.ts";
import { DEFAULT_PORT } from "../lib/server.ts";
import { askPassphrase, parseHostPort, usageError, writeErr } from "./_cli.ts";

/** Flags shared by the commands that connect to a server. */
export const CONNECT_OPTIONS = {
  strict: { type: "boolean" },
  timeout: { type: "string", default: "10" },
} as const;

/** Help lines for {@linkcode CONNECT_OPTIONS}. */
export const CONNECT_HELP = `  --strict            refuse a host that is not in known_hosts yet
  --timeout SECONDS   time allowed to connect and for the handshake (default 10)`;

/** Loads the identity and connects to `HOST[:PORT]`, checking known_hosts. */
export async function connectTo(
  command: string,
  keystore: Keystore,
  target: string,
  flags: { strict?: boolean; timeout: string },
): Promise<{ client: OvtpClient; identity: Identity }> {
  const { hostname, port, display } = parseHostPort(target, DEFAULT_PORT);
  const timeoutSeconds = Number(flags.timeout);
  if (!(timeoutSeconds > 0)) usageError(command, `Invalid timeout "${flags.timeout}"`);
  const identity = await keystore.loadIdentity(() => askPassphrase());
  const client = await OvtpClient.connect({
    hostname,
    port,
    identity,
    timeoutMs: timeoutSeconds * 1000,
    verifyHost: knownHostsVerifier(keystore, display, {
      strict: flags.strict,
      onNewHost: (host, fp) => {
        writeErr(`ovtp: new host ${host} recorded in known_hosts: ${fp}\n`).catch(() => {});
      },
    }),
  });
  return { client, identity };
}
