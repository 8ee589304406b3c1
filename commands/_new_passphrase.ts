/**
 * Choosing a new passphrase: from an environment variable (scripts), or
 * typed twice on the terminal, asked again when the two differ (three
 * tries in all).
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { readSecret, writeErr } from "./_cli.ts";
import { TERMINAL_TRIES } from "./_identity.ts";

/** Options of {@linkcode typeNewPassphrase}. */
export interface NewPassphraseOptions {
  /** The variable that gives it without a terminal. */
  variable: "OVTP_PASSPHRASE" | "OVTP_NEW_PASSPHRASE";
  /** Whether "" (no passphrase) is an answer; else an empty one is asked again. */
  mayBeEmpty: boolean;
}

/** The new passphrase; "" only when `mayBeEmpty`. */
export async function typeNewPassphrase(options: NewPassphraseOptions): Promise<string> {
  const fromEnv = Deno.env.get(options.variable);
  if (fromEnv !== undefined) {
    if (!fromEnv && !options.mayBeEmpty) {
      throw new OvtpError("key", `The passphrase in ${options.variable} is empty`);
    }
    return fromEnv;
  }
  if (!Deno.stdin.isTerminal()) {
    throw new OvtpError("key", "A new passphrase is needed, and there is no terminal to ask", {
      hint: `set ${options.variable}`,
    });
  }
  const prompt = options.mayBeEmpty ? "New passphrase (empty for none): " : "New passphrase: ";
  for (let attempt = 1; attempt <= TERMINAL_TRIES; attempt++) {
    const passphrase = await readSecret(prompt);
    if (!passphrase && options.mayBeEmpty) return "";
    const problem = !passphrase
      ? "The passphrase is empty"
      : await readSecret("Same passphrase again: ") !== passphrase
      ? "The passphrases do not match"
      : undefined;
    if (!problem) return passphrase;
    if (attempt === TERMINAL_TRIES) {
      throw new OvtpError("key", `${problem} (${TERMINAL_TRIES} tries)`, {
        hint: "run the command again",
      });
    }
    await writeErr(`ovtp: ${problem.toLowerCase()}; try again\n`);
  }
  throw new Error("unreachable");
}
