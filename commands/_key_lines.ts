/**
 * Public lines given on the command line: the line itself (`ovtp1 ...`), a
 * file holding one line or more (`#` comments and blank lines skipped), or
 * `-` for stdin. A bad line is refused with its number. Used by `contacts
 * add` and by `seal -r` / `open --from`.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { parsePublicKey, type PublicKeyLine } from "../lib/identity/keys.ts";
import { readStdin } from "./_cli.ts";

/** A key file is a few lines: more than this is not one. */
const MAX_KEY_FILE = 1024 * 1024;

/** Whether `text` is meant as a public line rather than a name or a path. */
export function looksLikeLine(text: string): boolean {
  return /^ovtp1\s/.test(text.trim());
}

/** Parses one line; `where` starts the error ("The key", `Line 3 of "x.pub"`). */
export function parseKeyLine(line: string, where: string): PublicKeyLine {
  try {
    return parsePublicKey(line);
  } catch (error) {
    throw new OvtpError("key", `${where} is not a valid public key: ${(error as Error).message}`);
  }
}

/** The keys in a line, a file or stdin (`-`); at least one. */
export async function readKeyLines(source: string): Promise<PublicKeyLine[]> {
  if (looksLikeLine(source)) return [parseKeyLine(source, "The key")];
  const text = source === "-"
    ? new TextDecoder().decode(await readStdin(MAX_KEY_FILE))
    : await readKeyFile(source);
  const where = source === "-" ? "stdin" : `"${source}"`;
  const keys: PublicKeyLine[] = [];
  text.split("\n").forEach((line, index) => {
    if (!line.trim() || line.trim().startsWith("#")) return;
    keys.push(parseKeyLine(line, `Line ${index + 1} of ${where}`));
  });
  if (keys.length === 0) throw new OvtpError("key", `No key found in ${where}`);
  return keys;
}

async function readKeyFile(path: string): Promise<string> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new Error("not a file");
    if (info.size > MAX_KEY_FILE) throw new Error("too large for a key file");
    return await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : (error as Error).message;
    throw new OvtpError("key", `Cannot read key file "${path}": ${reason}`, {
      hint: 'give the public line itself ("ovtp1 ..."), a file of lines, or - for stdin',
    });
  }
}
