import {
  fingerprint,
  formatPublicKey,
  parsePublicKey,
  samePublicKey,
} from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { loadIdentity } from "./_identity.ts";
import { flag, HOME, IDENTITY, parseOptions } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { jsonLine } from "./_printable.ts";

const OPTIONS = {
  fingerprint: flag({ help: "print only the fingerprint (SHA256:...)" }),
  json: flag({ help: 'print {"public_line","fingerprint","comment"}' }),
  identity: IDENTITY,
  home: HOME,
};

const USAGE = `Usage: ovtp id [--fingerprint] [--json] [-i KEYFILE] [--home DIR]

Prints your public line, the one to give to servers for \`ovtp add-key\`.
If id_ovtp.pub was lost but id_ovtp is there, the line is derived from
the private key (asking for its passphrase if it has one) and id_ovtp.pub
is written again, without its comment. With -i, the line is derived from
that key file (its comment taken from KEYFILE.pub when that holds the same
key).

Options:
${optionsHelp(OPTIONS, ["fingerprint", "json", "identity", "home"], 18)}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "id");
  const [extra] = parsed.positionals;
  if (extra !== undefined) usageError("id", `Unexpected argument "${extra}"`);
  const values = parsed.values();
  const keystore = openKeystore(values.home);
  const line = values.identity === undefined
    ? await publicLine(keystore)
    : await keyFileLine(keystore, values.identity);
  const { key, comment } = parsePublicKey(line);
  if (values.json) {
    await writeOut(
      jsonLine({ public_line: line, fingerprint: await fingerprint(key), comment }) + "\n",
    );
  } else if (values.fingerprint) {
    await writeOut(`${await fingerprint(key)}\n`);
  } else {
    await writeOut(`${line}\n`);
  }
  return 0;
}

/** id_ovtp.pub's line, or the one derived from id_ovtp when only the .pub is missing. */
async function publicLine(keystore: Keystore): Promise<string> {
  try {
    return await keystore.readPublicLine();
  } catch (error) {
    if (!await keystore.hasIdentity() || await exists(keystore.path("publicKey"))) throw error;
  }
  const identity = await loadIdentity(keystore);
  const line = await keystore.restorePublicLine(identity);
  await writeErr(
    `ovtp: ${keystore.path("publicKey")} was missing: derived it from id_ovtp and wrote it again\n`,
  );
  return line;
}

/** The public line of the key file given with -i. */
async function keyFileLine(keystore: Keystore, file: string): Promise<string> {
  const identity = await loadIdentity(keystore, file);
  const beside = await Deno.readTextFile(`${file}.pub`).then(parsePublicKey).catch(() => undefined);
  const same = beside && samePublicKey(beside.key, identity.publicKey);
  return formatPublicKey(identity.publicKey, same ? beside.comment : "");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** `ovtp id`. */
export const id: Command = { usage: USAGE, run, json: true };
