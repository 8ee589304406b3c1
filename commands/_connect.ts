/**
 * The client side's common start: the flags every connecting command takes
 * (`--strict`, `--accept-new`, `--timeout`), the identity, and a connection
 * whose server key is checked against known_hosts.
 *
 * An unknown host is handled as ssh's default does: on a terminal its
 * fingerprint is shown and the user answers before anything is sent (the
 * first connection is closed after the handshake's second message, the key
 * recorded on "yes", and a second connection must present the same key);
 * without a terminal it is refused unless --accept-new (or OVTP_ACCEPT_NEW=1,
 * for scripts) says to record it.
 *
 * @module
 */

import { join } from "node:path";
import { OvtpClient } from "../lib/client/client.ts";
import { OvtpError } from "../lib/errors.ts";
import { knownHostsVerifier, UnknownHostError } from "../lib/trust/host_trust.ts";
import type { Identity } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { isFingerprint } from "../lib/trust/known_hosts.ts";
import type { HostSettings, UnknownHostPolicy } from "../lib/client/host_config.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../lib/client/defaults.ts";
import { askLine, usageError, writeErr } from "./_cli.ts";
import { firstReachable } from "./_failover.ts";
import { resolveHost } from "./_host_target.ts";
import { loadIdentity } from "./_identity.ts";
import { flag, HOME, IDENTITY, type OptionValues, seconds } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";

/** The options shared by the commands that connect to a server. */
export const CONNECT = {
  strict: flag({ help: "refuse a host not yet in known_hosts, without asking" }),
  "accept-new": flag({
    help: "record a host not yet in known_hosts, without asking (the default asks " +
      "on a terminal and refuses without one)",
  }),
  identity: IDENTITY,
  timeout: seconds({
    arg: "SECONDS",
    default: DEFAULT_CONNECT_TIMEOUT_MS,
    help: "time allowed to connect and for the handshake (default {default})",
  }),
};

/** {@linkcode CONNECT}'s values, as parseOptions gives them. */
export type ConnectValues = OptionValues<typeof CONNECT>;

/** Help lines for {@linkcode CONNECT}. */
export const CONNECT_HELP = `${
  optionsHelp(
    { ...CONNECT, home: HOME },
    ["strict", "accept-new", "identity", "timeout", "home"],
    22,
  )
}

HOST may be an alias from ~/.ovtp/config (address, port, identity, unknown-host).`;

/**
 * Loads the identity and connects to `HOST[:PORT]`, checking known_hosts.
 * `reconnect` opens another connection to the same server with the same
 * identity, without asking anything (chat, after the server went away).
 */
export async function connectTo(
  command: string,
  keystore: Keystore,
  target: string,
  flags: ConnectValues,
): Promise<{ client: OvtpClient; identity: Identity; reconnect: () => Promise<OvtpClient> }> {
  const timeoutMs = flags.timeout;
  if (flags.strict && flags["accept-new"]) {
    usageError(command, "Give --strict or --accept-new, not both");
  }
  // The host as typed names the config block and the known_hosts entry;
  // the config may send the connection to another address and port.
  const { settings, addresses, port, display } = await resolveHost(keystore, target);
  const policy: UnknownHostPolicy = flags.strict
    ? "refuse"
    : flags["accept-new"] || Deno.env.get("OVTP_ACCEPT_NEW") === "1"
    ? "accept-new"
    : settings.unknownHost ?? "ask";
  const identity = await loadIdentityFor(keystore, settings, flags.identity);
  // Every command pings a quiet server within its idle timeout: an answer
  // or a download may take long, and a server gone meanwhile then shows as
  // a failure (exit 3) instead of a hang (lib/client/keep_alive.ts).
  const connectOnce = async (address: string) => {
    const client = await OvtpClient.connect({
      hostname: address,
      port,
      identity,
      timeoutMs,
      verifyHost: knownHostsVerifier(keystore, display, {
        strict: policy !== "accept-new",
        onNewHost: (host, fp) => {
          writeErr(`ovtp: new host ${host} recorded in known_hosts: ${fp}\n`).catch(() => {});
        },
      }),
    });
    client.keepAlive();
    return client;
  };
  const connect = () =>
    firstReachable(addresses, connectOnce, (line) => {
      writeErr(`ovtp: warning: ${line}\n`).catch(() => {});
    });
  try {
    return { client: await connect(), identity, reconnect: connect };
  } catch (error) {
    if (!(error instanceof UnknownHostError)) throw error;
    await decideUnknownHost(error, policy, flags.strict === true);
    await keystore.addKnownHost(error.host, error.key);
    await writeErr(`ovtp: host ${error.host} recorded in known_hosts: ${error.fingerprint}\n`);
    // The host must present the same key again: it is known now.
    return { client: await connect(), identity, reconnect: connect };
  }
}

/** The identity for a host: `-i FILE`, else the host's `identity` setting, else id_ovtp. */
export async function loadIdentityFor(
  keystore: Keystore,
  settings: HostSettings,
  file: string | undefined,
): Promise<Identity> {
  return await loadIdentity(keystore, file ?? expandHome(settings.identity));
}

/** Returns when the user accepts the unknown host; throws otherwise. */
async function decideUnknownHost(
  error: UnknownHostError,
  policy: UnknownHostPolicy,
  strict: boolean,
) {
  const { host, fingerprint } = error;
  const addCommand = `ovtp known-hosts add ${host} ${fingerprint}`;
  if (policy === "refuse") {
    const by = strict ? "--strict" : "unknown-host refuse in the config";
    throw new OvtpError(
      "trust",
      `Unknown host ${host} with key ${fingerprint} (refused by ${by})`,
      {
        hint: `check the fingerprint with the server's owner, then run: ${addCommand}`,
      },
    );
  }
  const ask = askLine();
  if (!ask) {
    throw new OvtpError(
      "trust",
      `Unknown host ${host} with key ${fingerprint}: refused, with no terminal to ask`,
      {
        hint: `check the fingerprint with the server's owner (ovtp id --fingerprint there), ` +
          `then run: ${addCommand} (or connect once with --accept-new)`,
      },
    );
  }
  await writeErr(
    `ovtp: the authenticity of host ${host} cannot be established.\n` +
      `ovtp: its key fingerprint is ${fingerprint}\n` +
      `ovtp: compare it with \`ovtp id --fingerprint\` on the server.\n`,
  );
  let prompt = "Are you sure you want to continue connecting (yes/no/[fingerprint])? ";
  while (true) {
    const answer = (await ask(prompt))?.trim();
    if (answer === "yes") return;
    if (answer === undefined || answer === "no") {
      throw new OvtpError("trust", `Host ${host} was not accepted: nothing was sent to it`);
    }
    if (isFingerprint(answer)) {
      if (answer === fingerprint) return;
      throw new OvtpError(
        "trust",
        `The fingerprint you gave does not match host ${host}'s key ${fingerprint}: ` +
          `someone may be intercepting the connection`,
      );
    }
    prompt = "Please type 'yes', 'no' or the fingerprint: ";
  }
}

/** `~/x` in a config file means the user's home directory, as in ssh's config. */
function expandHome(path: string | undefined): string | undefined {
  if (!path?.startsWith("~/")) return path;
  const home = Deno.env.get(Deno.build.os === "windows" ? "USERPROFILE" : "HOME") ??
    Deno.env.get("HOME");
  return home ? join(home, path.slice(2)) : path;
}
