import { basename } from "node:path";
import { OvtpError } from "../lib/errors.ts";
import type { FetchedFile, FetchOptions } from "../lib/services/transfer/fetcher.ts";
import type { FetchedFolder } from "../lib/services/transfer/fetch_folder.ts";
import type { OvtpClient } from "../lib/client/client.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { CONNECT, CONNECT_HELP, connectTo } from "./_connect.ts";
import { flag, HOME, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { jsonLine, printable } from "./_printable.ts";
import { formatBytes, formatRate, ProgressBar, resumeHint } from "./_progress.ts";

const OPTIONS = {
  output: text({ short: "o", arg: "DEST", help: 'where to write the file ("-": stdout)' }),
  list: flag({ help: "list PATH (default: the top of the served folder)" }),
  recursive: flag({ short: "r", help: "pull the folder PATH and everything in it" }),
  quiet: flag({ help: "no progress bar (it is only drawn on a terminal anyway)" }),
  json: flag({ help: "print the outcome (or the listing) as JSON" }),
  ...CONNECT,
  home: HOME,
};

const USAGE = `Usage: ovtp getfile HOST[:PORT] PATH [-o DEST] [--quiet] [--json]
       ovtp getfile HOST[:PORT] -r FOLDER [-o DEST] [--quiet] [--json]
       ovtp getfile HOST[:PORT] --list [PATH]

Downloads a file from the folder a server offers (\`ovtp listen --serve DIR\`),
streamed and verified: the data goes to DEST.ovtp-partial, its SHA-256 is
checked against the server's, and only then is it renamed to DEST (default:
the file's name, in the current folder; an existing DEST is never replaced).
With -o -, the file is written to stdout instead (nothing else is), from the
start (a stream cannot resume); the summary goes to stderr, and a SHA-256
mismatch at the end exits non-zero after the bytes were written.
An interrupted download resumes when run again, after the server confirms
the part already here. --list lists a folder instead.

With -r, FOLDER and its folders are pulled into DEST (default: the folder's
name, in the current folder), each file downloaded and verified as above.
Run again after an interruption, it checks the files already there against
the server's by hash without fetching them, resumes the one that was cut and
fetches the rest; a file there that is not the server's stops it. Names that
cannot be written here as they are (separators, control characters, device
names) are reported and skipped, as are folders over 32 levels deep.

Options:
${optionsHelp(OPTIONS, ["output", "recursive", "list", "quiet", "json"], 22)}
${CONNECT_HELP}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "getfile");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length === 0) usageError("getfile", "Missing the HOST to download from");
  if (positionals.length > 2) usageError("getfile", `Unexpected argument "${positionals[2]}"`);
  const remote = positionals[1];
  if (!values.list && remote === undefined) usageError("getfile", "Missing the PATH to download");
  if (values.output === "-" && values.json) {
    usageError("getfile", "--json prints on stdout: it cannot go with -o -");
  }
  if (values.recursive && values.output === "-") {
    usageError("getfile", "-r writes a folder: it cannot go with -o -");
  }
  if (values.recursive && values.list) usageError("getfile", "--list cannot go with -r");
  const keystore = openKeystore(values.home);
  const { client } = await connectTo(
    "getfile",
    keystore,
    positionals[0],
    values,
  );
  try {
    if (values.list) {
      const entries = await client.listFiles(remote ?? "");
      if (values.json) await writeOut(jsonLine({ path: remote ?? "", entries }) + "\n");
      else {
        for (const entry of entries) {
          const size = entry.type === "dir" ? "-" : String(entry.size);
          // One line per entry, to a pipe too: a name cannot add entries.
          const name = printable(entry.name);
          await writeOut(
            `${entry.type === "dir" ? "d" : "-"}${modeText(entry.mode)}  ${
              size.padStart(12)
            }  ${name}${entry.type === "dir" ? "/" : ""}\n`,
          );
        }
      }
      return 0;
    }
    const bar = new ProgressBar(Deno.stderr.isTerminal() && !values.quiet && !values.json);
    const started = performance.now();
    if (values.output === "-") {
      // Only the file's bytes go to stdout; the summary goes to stderr.
      const file = await client.streamFile(remote!, { write: writeOut }, {
        onProgress: (progress) => bar.update(progress),
      }).finally(() => bar.clear());
      const seconds = (performance.now() - started) / 1000;
      if (!values.quiet) {
        await writeErr(summary(remote!, { ...file, path: "stdout" }, seconds, "written to"));
      }
      return 0;
    }
    const dest = values.output ?? safeBasename(remote!);
    if (values.recursive) {
      const folder = await pullFolder(client, remote!, dest, bar);
      const seconds = (performance.now() - started) / 1000;
      await writeOut(
        values.json ? folderJson(folder, seconds) : folderSummary(remote!, folder, seconds),
      );
      return 0;
    }
    const file = await client.getFile(remote!, dest, fileReports(remote!, dest, bar))
      .catch((error) => {
        throw resumeHint(error);
      }).finally(() => bar.clear());
    const seconds = (performance.now() - started) / 1000;
    await writeOut(values.json ? outcomeJson(file, seconds) : summary(remote!, file, seconds));
    return 0;
  } finally {
    client.close();
  }
}

// What a person sees of one download: the bar, and a line when an earlier
// attempt is resumed or discarded.
function fileReports(remote: string, dest: string, bar: ProgressBar): FetchOptions {
  return {
    onRestart: (held) => {
      bar.clear();
      writeErr(
        `ovtp: "${printable(remote)}" changed on the server since the interrupted download: ` +
          `starting over (the ${formatBytes(held)} here are discarded)\n`,
      ).catch(() => {});
    },
    onProgress: (progress) => bar.update(progress),
    onResume: (offset) => {
      bar.reset(offset);
      writeErr(
        `ovtp: resuming "${printable(dest)}" after ${
          formatBytes(offset)
        } already here (verified)\n`,
      ).catch(() => {});
    },
  };
}

async function pullFolder(
  client: OvtpClient,
  remote: string,
  dest: string,
  bar: ProgressBar,
): Promise<FetchedFolder> {
  // The callbacks of the file in progress.
  let current = fileReports(remote, dest, bar);
  return await client.getFolder(remote, dest, {
    onFile: (file) => {
      bar.reset();
      current = fileReports(file.remote, file.path, bar);
    },
    onSkip: (path, reason) => {
      bar.clear();
      writeErr(`ovtp: warning: skipping "${printable(path)}": ${printable(reason)}\n`)
        .catch(() => {});
    },
    onProgress: (progress) => current.onProgress?.(progress),
    onResume: (offset) => current.onResume?.(offset),
    onRestart: (held) => current.onRestart?.(held),
  }).catch((error) => {
    throw resumeHint(error);
  }).finally(() => bar.clear());
}

function folderSummary(remote: string, folder: FetchedFolder, seconds: number): string {
  const files = `${folder.files} file${folder.files === 1 ? "" : "s"}`;
  const here = folder.alreadyHere > 0 ? `, ${folder.alreadyHere} already here` : "";
  const skipped = folder.skipped > 0 ? `, ${folder.skipped} skipped` : "";
  return `got ${printable(remote)}/: ${files}, ${formatBytes(folder.bytes)} in ${
    seconds.toFixed(2)
  } s (${formatRate(folder.received, seconds)}${here}${skipped}), each verified by SHA-256, in ${
    printable(folder.path)
  }\n`;
}

function folderJson(folder: FetchedFolder, seconds: number): string {
  return jsonLine({
    status: "ok",
    path: folder.path,
    files: folder.files,
    size: folder.bytes,
    already_here: folder.alreadyHere,
    received: folder.received,
    skipped: folder.skipped,
    seconds: Number(seconds.toFixed(3)),
  }) + "\n";
}

function safeBasename(path: string): string {
  const name = basename(path.replace(/[/\\]+$/, ""));
  if (!name || name === "." || name === "..") {
    throw new OvtpError("usage", `Cannot name a file after "${path}"`, { hint: "give -o DEST" });
  }
  return name;
}

function modeText(mode: number): string {
  const bits = "rwxrwxrwx";
  return [...bits].map((c, i) => (mode & (1 << (8 - i))) ? c : "-").join("");
}

function summary(
  remote: string,
  file: FetchedFile,
  seconds: number,
  saved = "saved as",
): string {
  const resumed = file.resumedFrom > 0 ? `, resumed after ${formatBytes(file.resumedFrom)}` : "";
  return `got ${printable(remote)}: ${formatBytes(file.size)} in ${seconds.toFixed(2)} s (${
    formatRate(file.size - file.resumedFrom, seconds)
  }${resumed}), sha256 ${file.sha256}, verified and ${saved} ${printable(file.path)}\n`;
}

function outcomeJson(file: FetchedFile, seconds: number): string {
  return jsonLine({
    status: "ok",
    path: file.path,
    size: file.size,
    sha256: file.sha256,
    seconds: Number(seconds.toFixed(3)),
    resumed_from: file.resumedFrom,
  }) + "\n";
}

/** `ovtp getfile`. */
export const getfile: Command = {
  usage: USAGE,
  run,
  json: true,
};
