/**
 * How a command gets the private key: from the agent named by $OVTP_AGENT
 * when it holds this key file, else by asking for the passphrase (if the
 * file is sealed): $OVTP_PASSPHRASE once, or the terminal three times, as
 * ssh does.
 *
 * @module
 */

import { askAgent } from "../lib/agent/client.ts";
import type { Identity } from "../lib/identity/keys.ts";
import type { Keystore, LoadIdentityOptions, UnlockedIdentity } from "../lib/identity/keystore.ts";
import { askPassphrase, writeErr } from "./_cli.ts";

/** How many passphrases a person at a terminal may type, as ssh allows. */
export const TERMINAL_TRIES = 3;

/** Loads id_ovtp, or the key file `file` (`-i FILE`); see the module comment. */
export async function loadIdentity(keystore: Keystore, file?: string): Promise<Identity> {
  return (await unlock(keystore, { file, agent: fromAgent() })).identity;
}

/**
 * Unlocks the key file by its passphrase only, never from an agent (for
 * `keygen --change-passphrase` and `agent`, which must see the passphrase).
 */
export async function unlock(
  keystore: Keystore,
  options: LoadIdentityOptions = {},
): Promise<UnlockedIdentity> {
  // A wrong $OVTP_PASSPHRASE would be wrong again: one try.
  const tries = Deno.env.get("OVTP_PASSPHRASE") === undefined ? TERMINAL_TRIES : 1;
  return await keystore.unlockIdentity(async (attempt) => {
    if (attempt > 1) await writeErr("ovtp: wrong passphrase; try again\n");
    return await askPassphrase();
  }, { tries, ...options });
}

/** The agent lookup, when $OVTP_AGENT is set; an agent that does not answer is warned about. */
function fromAgent(): LoadIdentityOptions["agent"] {
  const socket = Deno.env.get("OVTP_AGENT");
  if (!socket) return undefined;
  return async (digest) => {
    try {
      const keys = await askAgent(socket, digest);
      if (keys) return keys;
      await writeErr(
        `ovtp: warning: the agent at "${socket}" holds another key file; asking for the passphrase\n`,
      );
    } catch (error) {
      await writeErr(`ovtp: warning: ${(error as Error).message}; asking for the passphrase\n`);
    }
    return undefined;
  };
}
