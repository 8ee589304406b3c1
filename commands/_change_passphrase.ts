/**
 * `ovtp keygen --change-passphrase`: adds, changes or removes the
 * passphrase of a key file, keeping its keys.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { fingerprint } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { askLine, writeOut } from "./_cli.ts";
import { unlock } from "./_identity.ts";
import { typeNewPassphrase } from "./_new_passphrase.ts";
import { jsonLine } from "./_printable.ts";

/** Runs it on id_ovtp, or on `file`; returns the exit code. */
export async function changePassphrase(
  keystore: Keystore,
  file: string | undefined,
  flags: { force?: boolean; json?: boolean },
): Promise<number> {
  // The current passphrase, never the agent's copy: whoever changes the
  // passphrase must know the old one.
  const unlocked = await unlock(keystore, { file });
  const next = await typeNewPassphrase({ variable: "OVTP_NEW_PASSPHRASE", mayBeEmpty: true });
  const print = await fingerprint(unlocked.identity.publicKey);
  if (!next && !unlocked.sealed) {
    await report(flags.json, unlocked.path, print, "none", "has no passphrase; nothing changed");
    return 0;
  }
  if (!next) await confirmRemoval(unlocked.path, flags.force);
  await keystore.changePassphrase(unlocked, next || undefined);
  const done = !next
    ? "is stored without a passphrase"
    : unlocked.sealed
    ? "has a new passphrase"
    : "is now protected by a passphrase";
  await report(flags.json, unlocked.path, print, next ? "set" : "none", done);
  return 0;
}

/**
 * Storing the key plain is confirmed by typing "yes" on a terminal, or by
 * --force in a script: an empty variable may be a mistake.
 */
async function confirmRemoval(path: string, force: boolean | undefined): Promise<void> {
  const ask = askLine();
  if (!ask) {
    if (force) return;
    throw new OvtpError("usage", "OVTP_NEW_PASSPHRASE is empty: that would remove the passphrase", {
      hint: "add --force to store the key without a passphrase",
    });
  }
  const answer = await ask(
    `Store "${path}" without a passphrase? Anyone who can read it can use your key. Type "yes": `,
  );
  if (answer?.trim().toLowerCase() !== "yes") {
    throw new OvtpError("interrupted", "Kept the passphrase: nothing was changed");
  }
}

async function report(
  json: boolean | undefined,
  path: string,
  print: string,
  passphrase: "set" | "none",
  done: string,
): Promise<void> {
  await writeOut(
    json
      ? jsonLine({ path, fingerprint: print, passphrase }) + "\n"
      : `"${path}" ${done}\nFingerprint: ${print} (unchanged)\n`,
  );
}
