/**
 * The input and output of `seal` and `open`: a file or stdin as a stream;
 * an output file written whole or not at all, never replacing a file
 * without --force. Only commands/ imports this file.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { readerStream, writeFileAtomically } from "../lib/sealed/files.ts";
import { printable } from "./_printable.ts";

/** The name to show for the input: the path, or stdin. */
export function inputName(path: string | undefined): string {
  return path === undefined || path === "-" ? "stdin" : `"${path}"`;
}

/** Opens `path` (stdin when absent or "-") as a stream of large pieces. */
export async function inputStream(path: string | undefined): Promise<ReadableStream<Uint8Array>> {
  if (path === undefined || path === "-") return readerStream(Deno.stdin);
  let file: Deno.FsFile;
  try {
    if ((await Deno.stat(path)).isDirectory) throw new Error("it is a directory");
    file = await Deno.open(path, { read: true });
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
    throw new OvtpError("io", `Cannot read ${inputName(path)}: ${why}`);
  }
  return readerStream(file, { onClose: () => file.close() });
}

/**
 * Refuses an existing regular file at `output` unless `force`: checked
 * before anything is read or a passphrase asked (writeToFile checks again
 * as it links the file into place). `seal -o FILE FILE` would otherwise
 * replace the only plaintext with a file only the recipients can open.
 */
export async function checkOutput(output: string | undefined, force: boolean): Promise<void> {
  if (output !== undefined && !force && await isRegularFile(output)) throw alreadyExists(output);
}

/** Writes `stream` to `output` as a whole, replacing a file there only when `force`. */
export async function writeToFile(
  output: string,
  stream: ReadableStream<Uint8Array>,
  options: { mode: number; force: boolean },
): Promise<void> {
  await writeFileAtomically(output, stream, { mode: options.mode, replace: options.force })
    .catch((error) => {
      throw error instanceof Deno.errors.AlreadyExists ? alreadyExists(output) : error;
    });
}

function alreadyExists(path: string): OvtpError {
  return new OvtpError("io", `Cannot write "${printable(path)}": it already exists`, {
    hint: "choose another name with -o, or add --force to replace it",
  });
}

/**
 * A regular file: not a device or a pipe (written in place), nor a link
 * (refused by writeFileAtomically with its own message, --force or not).
 */
async function isRegularFile(path: string): Promise<boolean> {
  try {
    const info = await Deno.lstat(path);
    return info.isFile;
  } catch {
    return false;
  }
}
