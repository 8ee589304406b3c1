import { OvtpError } from "../lib/errors.ts";
import { type KeyOptions, parseAllow, parseExpiry, parseRate } from "../lib/key_options.ts";
import { fingerprint, parsePublicKey, type PublicKeyLine } from "../lib/keys.ts";
import {
  type Command,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  readStdin,
  usageError,
  writeOut,
} from "./_cli.ts";
import { jsonLine, printable } from "./_printable.ts";

const USAGE = `Usage: ovtp add-key (LINE | FILE | -) [--name NAME] [--allow LIST]
                    [--expires DATE] [--rate COUNT/UNIT] [--json] [--home DIR]

Authorizes a client: appends its public line to ~/.ovtp/authorized_keys.
The key is given as the line itself ("ovtp1 ..."), as a file holding one or
more lines, or on stdin with "-". A key that is already there is left alone
(remove it with \`ovtp keys remove\` to change its options).

Options:
  --name NAME         the name the server will know the client by
                      (default: the line's comment)
  --allow LIST        only these services, comma-separated: message, call,
                      call:NAME, upload, download, chat, chat:ROOM
                      (default: all)
  --expires DATE      refuse the key after DATE (2026-12-31 or an ISO time)
  --rate COUNT/UNIT   this key's request limit, e.g. 100/h (s, m, h, d)
  --json              print one {"name","fingerprint","added"} per key
  --home DIR          use DIR instead of $OVTP_HOME or ~/.ovtp
`;

const MAX_KEY_FILE = 1024 * 1024;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    name: { type: "string" },
    allow: { type: "string" },
    expires: { type: "string" },
    rate: { type: "string" },
    json: { type: "boolean" },
  }, "add-key");
  const options = keyOptions(values);
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
  }
  return 0;
}

/** The key options from `--allow`, `--expires` and `--rate` (also `ovtp invite`'s). */
export function keyOptions(
  values: { allow?: string; expires?: string; rate?: string },
  command = "add-key",
): KeyOptions {
  try {
    return {
      allow: values.allow === undefined ? undefined : parseAllow(values.allow),
      expires: values.expires === undefined ? undefined : parseExpiry(values.expires),
      rate: values.rate === undefined ? undefined : parseRate(values.rate),
    };
  } catch (error) {
    usageError(command, (error as Error).message);
  }
}

/** Reads the keys from a line given as arguments, a file, or stdin. */
async function readKeys(positionals: string[]): Promise<PublicKeyLine[]> {
  // An argument is a key line unless it names a file; text with spaces that
  // names no file is parsed as a line, so a mistyped line gets the reason.
  const joined = positionals.join(" ");
  if (positionals[0].startsWith("ovtp1") || (/\s/.test(joined) && !await isFile(joined))) {
    return [parseLine(joined, "The key")];
  }
  if (positionals.length > 1) {
    usageError("add-key", `Unexpected argument "${positionals[1]}"`);
  }
  const source = positionals[0];
  const text = source === "-"
    ? new TextDecoder().decode(await readStdin(MAX_KEY_FILE))
    : await readKeyFile(source);
  const where = source === "-" ? "stdin" : `"${source}"`;
  const keys: PublicKeyLine[] = [];
  text.split("\n").forEach((line, index) => {
    if (!line.trim() || line.trim().startsWith("#")) return;
    keys.push(parseLine(line, `Line ${index + 1} of ${where}`));
  });
  if (keys.length === 0) throw new OvtpError("key", `No key found in ${where}`);
  return keys;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function readKeyFile(path: string): Promise<string> {
  try {
    const info = await Deno.stat(path);
    if (info.size > MAX_KEY_FILE) throw new Error("too large for a key file");
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new OvtpError("key", `Cannot read key file "${path}": no such file`, {
        hint: 'give the key line itself ("ovtp1 ..."), a file, or - for stdin',
      });
    }
    throw new OvtpError("key", `Cannot read key file "${path}": ${(error as Error).message}`);
  }
}

function parseLine(line: string, where: string): PublicKeyLine {
  try {
    return parsePublicKey(line);
  } catch (error) {
    throw new OvtpError("key", `${where} is not a valid public key: ${(error as Error).message}`);
  }
}

/** `ovtp add-key`. */
export const addKey: Command = { usage: USAGE, run, json: true };
