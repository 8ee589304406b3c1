import { fingerprint, parsePublicKey } from "../lib/keys.ts";
import {
  type Command,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  usageError,
  writeOut,
} from "./_cli.ts";

const USAGE = `Usage: ovtp id [--fingerprint] [--home DIR]

Prints your public line, the one to give to servers for \`ovtp add-key\`.

Options:
  --fingerprint   print only the fingerprint (SHA256:...)
  --home DIR      use DIR instead of $OVTP_HOME or ~/.ovtp
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    fingerprint: { type: "boolean" },
  }, "id");
  if (positionals.length > 0) usageError("id", `Unexpected argument "${positionals[0]}"`);
  const line = await openKeystore(values.home).readPublicLine();
  if (values.fingerprint) {
    await writeOut(`${await fingerprint(parsePublicKey(line).key)}\n`);
  } else {
    await writeOut(`${line}\n`);
  }
  return 0;
}

/** `ovtp id`. */
export const id: Command = { usage: USAGE, run };
