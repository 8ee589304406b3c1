/**
 * The input of `seal` and `open`: a file or stdin, as a stream. Only
 * commands/ imports this file.
 *
 * @module
 */

import { OvtpError } from "../lib/errors.ts";
import { readerStream } from "../lib/sealed/files.ts";

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
