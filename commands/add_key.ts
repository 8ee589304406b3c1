import { fingerprint, type PublicKeyLine } from "../lib/identity/keys.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { parseKeyLine, readKeyLines } from "./_key_lines.ts";
import { jsonLine, printable } from "./_printable.ts";
import { KEY_OPTIONS, keyOptionsOf } from "./_key_option_flags.ts";
import { flag, HOME, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";

const OPTIONS = {
  name: text({
    arg: "NAME",
    help: "the name the server will know the client by (default: the line's comment)",
  }),
  ...KEY_OPTIONS,
  json: flag({ help: 'print one {"name","fingerprint","added"} per key' }),
  home: HOME,
};

const USAGE = `Usage: ovtp add-key (LINE | FILE | -) [--name NAME] [--allow LIST]
                    [--expires DATE] [--rate COUNT/UNIT] [--json] [--home DIR]

Authorizes a client: appends its public line to ~/.ovtp/authorized_keys.
The key is given as the line itself ("ovtp1 ..."), as a file holding one or
more lines, or on stdin with "-". A key that is already there is left alone
(change its options or name with \`ovtp keys set\`).

Options:
${optionsHelp(OPTIONS, ["name", "allow", "expires", "rate", "json", "home"], 22)}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "add-key");
  const { positionals } = parsed;
  const values = parsed.values();
  const options = keyOptionsOf(values);
  if (positionals.length === 0) usageError("add-key", "Missing the key to add");
  const keys = await readKeys(positionals);
  if (values.name !== undefined && keys.length > 1) {
    usageError("add-key", `--name applies to one key, and ${keys.length} were given`);
  }
  const keystore = openKeystore(values.home);
  for (const { key, comment } of keys) {
    const result = await keystore.addAuthorizedKey(key, values.name ?? comment, options);
    const fp = await fingerprint(key);
    await writeOut(
      values.json
        ? jsonLine({ name: result.name, fingerprint: fp, added: result.added }) + "\n"
        : result.added
        ? `Authorized "${printable(result.name)}" (${fp}) in ${keystore.path("authorizedKeys")}\n`
        : `Already authorized as "${printable(result.name)}" (${fp}); nothing changed\n`,
    );
    if (!result.added && !values.json && changesAsked(values)) {
      await writeErr(
        `ovtp: hint: to change its options or name, run: ovtp keys set ${
          /^[\w.@-]+$/.test(result.name) ? result.name : fp
        } --allow/--expires/--rate/--name ...\n`,
      );
    }
  }
  return 0;
}

/** Whether the command line asked for a name or options, which an existing key does not get. */
function changesAsked(values: { name?: string }): boolean {
  return values.name !== undefined || Object.keys(keyOptionsOf(values)).length > 0;
}

/** Reads the keys from a line given as arguments, a file, or stdin. */
async function readKeys(positionals: string[]): Promise<PublicKeyLine[]> {
  // An argument is a key line unless it names a file; text with spaces that
  // names no file is parsed as a line, so a mistyped line gets the reason.
  const joined = positionals.join(" ");
  if (positionals[0].startsWith("ovtp1") || (/\s/.test(joined) && !await isFile(joined))) {
    return [parseKeyLine(joined, "The key")];
  }
  if (positionals.length > 1) {
    usageError("add-key", `Unexpected argument "${positionals[1]}"`);
  }
  return await readKeyLines(positionals[0]);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** `ovtp add-key`. */
export const addKey: Command = { usage: USAGE, run, json: true };
