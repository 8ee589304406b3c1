import { duplicateNames } from "../lib/authorized_keys.ts";
import { formatOptions } from "../lib/key_options.ts";
import { fingerprint } from "../lib/keys.ts";
import {
  type Command,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { printable } from "./_printable.ts";

const USAGE = `Usage: ovtp keys [--home DIR]
       ovtp keys remove (NAME | FINGERPRINT) [--home DIR]

Lists the authorized client keys (name, fingerprint, and the options that
limit them: allowed services, expiry, rate), or removes one.

Options:
  --home DIR    use DIR instead of $OVTP_HOME or ~/.ovtp
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...HOME_OPTION }, "keys");
  const keystore = openKeystore(values.home);
  if (positionals[0] === "remove") {
    if (positionals.length !== 2) usageError("keys", "Give one NAME or FINGERPRINT to remove");
    const removed = await keystore.removeAuthorizedKey(positionals[1]);
    await writeOut(`Removed "${printable(removed.name)}" (${await fingerprint(removed.key)})\n`);
    return 0;
  }
  if (positionals.length > 0) usageError("keys", `Unknown action "${positionals[0]}"`);
  const read = await keystore.readAuthorizedKeys();
  const entries = read.entries;
  const errors = [...read.errors, ...duplicateNames(entries)].sort((a, b) => a.line - b.line);
  const path = keystore.path("authorizedKeys");
  for (const error of errors) {
    await writeErr(`ovtp: warning: ${path} line ${error.line}: ${printable(error.message)}\n`);
  }
  if (entries.length === 0) {
    await writeErr(`No authorized keys in ${path}; add one with \`ovtp add-key\`\n`);
  }
  // Names come from the clients' own key comments: shown printable.
  const names = entries.map((entry) => printable(entry.name));
  const width = Math.max(0, ...names.map((name) => name.length));
  for (const [i, entry] of entries.entries()) {
    const options = formatOptions(entry.options);
    const expired = entry.options.expires && entry.options.expires.getTime() <= Date.now()
      ? "  (expired)"
      : "";
    await writeOut(
      `${names[i].padEnd(width)}  ${await fingerprint(entry.key)}${
        options ? `  ${options}` : ""
      }${expired}\n`,
    );
  }
  return errors.length > 0 ? 1 : 0;
}

/** `ovtp keys`. */
export const keys: Command = { usage: USAGE, run };
