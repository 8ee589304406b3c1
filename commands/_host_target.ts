/**
 * A HOST argument as typed, resolved through ~/.ovtp/config: every command
 * that takes a HOST (send, sendfile, getfile, chat, known-hosts) goes
 * through here, so that an alias means the same to all of them.
 *
 * @module
 */

import { type HostSettings, settingsFor } from "../lib/client/host_config.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { DEFAULT_PORT } from "../lib/server/defaults.ts";
import { parseHostPort } from "./_cli.ts";

/** A HOST argument once the config is applied. */
export interface HostTarget {
  /** The config's settings for the host as typed. */
  settings: HostSettings;
  /** The name or address to connect to (the config's `address`, else as typed). */
  address: string;
  /** `address`, then the config's fallbacks: tried in turn while unreachable. */
  addresses: string[];
  /** The port: as typed, else the config's, else the default. */
  port: number;
  /**
   * The name in known_hosts: the host as typed with the port used
   * (`backup:4848`), so that an alias keeps its entry when its address moves.
   */
  display: string;
}

/** Resolves `HOST[:PORT]` (or `[IPv6]:PORT`) through the keystore's config. */
export async function resolveHost(keystore: Keystore, target: string): Promise<HostTarget> {
  const typed = parseHostPort(target, DEFAULT_PORT).hostname;
  const settings = settingsFor(await keystore.readHostConfig(), typed);
  const { hostname, port, display } = parseHostPort(target, settings.port ?? DEFAULT_PORT);
  const address = settings.address ?? hostname;
  return { settings, address, addresses: [address, ...settings.fallbacks ?? []], port, display };
}
