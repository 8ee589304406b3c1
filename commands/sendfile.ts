import { OvtpError } from "../lib/errors.ts";
import { DEFAULT_PORT } from "../lib/server/defaults.ts";
import type { SendFileOptions, SentFile } from "../lib/services/transfer/sender.ts";
import {
  directorySources,
  type FileSource,
  pathSource,
  streamSource,
} from "../lib/services/transfer/sources.ts";
import {
  type Command,
  openKeystore,
  parseHostPort,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { CONNECT, CONNECT_HELP, connectTo } from "./_connect.ts";
import { flag, HOME, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { jsonLine, printable } from "./_printable.ts";
import { formatBytes, formatRate, ProgressBar, resumeHint } from "./_progress.ts";

const OPTIONS = {
  name: text({ arg: "NAME", help: "the name to store a single file, folder or stdin under" }),
  quiet: flag({ help: "no progress bar (it is only drawn on a terminal anyway)" }),
  json: flag({ help: "print the outcome as one JSON object" }),
  ...CONNECT,
  home: HOME,
};

const USAGE = `Usage: ovtp sendfile HOST[:PORT] [PATH...] [--name NAME] [--quiet] [--json]
                     [--strict] [--timeout SECONDS] [--home DIR]

Sends files to a server's inbox, streamed and verified: the SHA-256 of the
content is computed while sending and checked by the server before the file
appears. A directory is sent recursively with its relative paths and file
modes; symlinks are not followed (each one is reported and skipped). A folder
sent again arrives as a new folder (\`proj (1)/\`), never mixed into the old one.

With no PATH, or "-", stdin is sent under --name (or a generated name), so
\`tar c dir | ovtp sendfile host --name dir.tar\` needs no temporary copy.

An interrupted transfer of a file given by path resumes when it is sent
again: the server keeps what it received, the client checks that it matches
(SHA-256 of that prefix) and sends only the rest. Stdin cannot resume.

Options:
${optionsHelp(OPTIONS, ["name", "quiet", "json"], 22)}
${CONNECT_HELP}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "sendfile");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length === 0) usageError("sendfile", "Missing the HOST to send to");
  // Checked now, so that a typo fails before stdin is read.
  parseHostPort(positionals[0], DEFAULT_PORT);
  const paths = positionals.slice(1);
  if (values.name !== undefined && paths.length > 1) {
    usageError("sendfile", "--name applies to a single file, folder or stdin");
  }
  const fromStdin = paths.length === 0 || (paths.length === 1 && paths[0] === "-");
  if (fromStdin && Deno.stdin.isTerminal()) {
    usageError("sendfile", "Give a PATH to send, or pipe data to stdin");
  }
  if (paths.includes("-") && paths.length > 1) {
    usageError("sendfile", `"-" (stdin) cannot be mixed with paths`);
  }
  // Every path must exist before anything is sent.
  const kinds = fromStdin ? [] : await Promise.all(paths.map(checkPath));

  const keystore = openKeystore(values.home);
  const { client } = await connectTo(
    "sendfile",
    keystore,
    positionals[0],
    values,
  );
  const bar = new ProgressBar(Deno.stderr.isTerminal() && !values.quiet && !values.json);
  const sent: { file: SentFile; seconds: number }[] = [];
  try {
    for await (const source of sources(fromStdin, paths, kinds, values.name)) {
      const started = performance.now();
      bar.reset();
      const file = await client.sendFile(source, uploadReports(source.name, bar)).catch((error) => {
        throw source.resumable ? resumeHint(error) : error;
      }).finally(() => bar.clear());
      const seconds = (performance.now() - started) / 1000;
      sent.push({ file, seconds });
      if (!values.json) await writeOut(summary(file, seconds));
    }
  } finally {
    client.close();
  }
  if (values.json) {
    await writeOut(
      jsonLine({
        status: "ok",
        files: sent.map(({ file, seconds }) => ({
          name: file.name,
          path: file.path,
          size: file.size,
          sha256: file.sha256,
          seconds: Number(seconds.toFixed(3)),
          resumed_from: file.resumedFrom,
          renamed: file.renamed,
        })),
      }) + "\n",
    );
  }
  return 0;
}

// What a person sees of one upload: the bar, and a line when an earlier
// attempt is resumed or discarded.
function uploadReports(name: string, bar: ProgressBar): SendFileOptions {
  return {
    onRestart: (held) => {
      bar.clear();
      writeErr(
        `ovtp: "${printable(name)}" changed since the interrupted transfer: ` +
          `starting over (the ${formatBytes(held)} on the server are discarded)\n`,
      ).catch(() => {});
    },
    onProgress: (progress) => bar.update(progress),
    onResume: (offset) => {
      bar.reset(offset);
      bar.clear();
      writeErr(
        `ovtp: resuming "${printable(name)}" after ${
          formatBytes(offset)
        } already on the server (verified)\n`,
      ).catch(() => {});
    },
  };
}

async function checkPath(path: string): Promise<"file" | "directory"> {
  try {
    const info = await Deno.stat(path);
    if (info.isDirectory) return "directory";
    await pathSource(path);
    return "file";
  } catch (error) {
    if (error instanceof OvtpError) throw error;
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file or directory"
      : (error as Error).message;
    throw new OvtpError("io", `Cannot read "${path}": ${reason}`);
  }
}

async function* sources(
  fromStdin: boolean,
  paths: string[],
  kinds: ("file" | "directory")[],
  name: string | undefined,
): AsyncGenerator<FileSource> {
  if (fromStdin) {
    const generated = `stdin-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    if (name === undefined) await writeErr(`ovtp: sending stdin as "${generated}"\n`);
    yield streamSource(Deno.stdin.readable, name ?? generated);
    return;
  }
  for (let i = 0; i < paths.length; i++) {
    if (kinds[i] === "file") yield await pathSource(paths[i], name);
    else {
      yield* directorySources(paths[i], (path, reason) => {
        writeErr(`ovtp: warning: skipping "${printable(path)}": ${printable(reason)}\n`)
          .catch(() => {});
      }, name);
    }
  }
}

function summary(file: SentFile, seconds: number): string {
  const moved = file.size - file.resumedFrom;
  const resumed = file.resumedFrom > 0 ? `, resumed after ${formatBytes(file.resumedFrom)}` : "";
  const renamed = file.renamed ? " (the name was taken)" : "";
  return `sent ${printable(file.name)}: ${formatBytes(file.size)} in ${seconds.toFixed(2)} s (${
    formatRate(moved, seconds)
  }${resumed}), sha256 ${file.sha256}, verified and stored as ${printable(file.path)}${renamed}\n`;
}

/** `ovtp sendfile`. */
export const sendfile: Command = {
  usage: USAGE,
  run,
  json: true,
};
