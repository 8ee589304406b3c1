import { OvtpError } from "../lib/errors.ts";
import { fingerprint, type PublicKey } from "../lib/identity/keys.ts";
import { SealedError } from "../lib/sealed/errors.ts";
import { writeAll } from "../lib/sealed/files.ts";
import { inspectSealed, openSealed } from "../lib/sealed/open.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { flag, HOME, IDENTITY, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { STDOUT } from "./_stdout.ts";
import { describeKey, keysInUse, type KnownKeys, nameOf, senderFilter } from "./_recipients.ts";
import { jsonLine, printable } from "./_printable.ts";
import { checkOutput, inputName, inputStream, writeToFile } from "./_sealed_io.ts";

const OPTIONS = {
  output: text({
    short: "o",
    arg: "OUT",
    help: "write to OUT (mode 0600) instead of stdout; an existing file is not " +
      "replaced without --force",
  }),
  force: flag({ help: "replace an existing OUT" }),
  from: text({
    arg: "SENDER",
    help: "refuse a file not sealed by this sender: self, a public line, SHA256:..., " +
      "a name in contacts or authorized_keys, or a file of public lines (any of them), " +
      "as `seal -r` takes them",
  }),
  identity: IDENTITY,
  info: flag({
    help: "show the sender and the recipients' fingerprints without decrypting " +
      "(checks the header signature)",
  }),
  json: flag({
    help: 'with --info: print {"format","armored","sender","recipients"}, each key as ' +
      '{"fingerprint","name"}',
  }),
  home: HOME,
};

const USAGE = `Usage: ovtp open [FILE] [-o OUT [--force]] [--from SENDER] [-i KEYFILE] [--home DIR]
       ovtp open --info [FILE] [--json] [--home DIR]

Decrypts a file sealed with \`ovtp seal\` (binary or armored) with your
identity, checks the sender's signature, and prints who sealed it on stderr:
the name from your contacts or authorized_keys if it is there, and the
fingerprint always. FILE defaults to stdin, OUT to stdout.

Every chunk is authenticated before it is written, and the sender's
signature over the whole file is checked at the end. When a check fails,
open exits non-zero and OUT is not created (it is written under a temporary
name and renamed only once everything has verified). What was already
written to stdout cannot be taken back: use -o when that matters.

Options:
${optionsHelp(OPTIONS, ["output", "force", "from", "identity", "info", "json", "home"], 27)}

Exit codes: 3 damaged or forged file, 4 not from the --from sender,
5 not sealed for your key.
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "open");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length > 1) usageError("open", `Unexpected argument "${positionals[1]}"`);
  if (values.info && (values.output !== undefined || values.from !== undefined)) {
    usageError("open", "--info decrypts nothing: it takes no -o or --from");
  }
  if (values.force && values.output === undefined) {
    usageError("open", "--force applies to -o OUT");
  }
  await checkOutput(values.output, values.force);
  const path = positionals[0];
  const name = inputName(path);
  const keystore = openKeystore(values.home);
  const keys = await keysInUse(keystore, {
    identityFile: values.identity,
    needSelf: !values.info,
  });
  const known = keys.known;
  if (values.json && !values.info) usageError("open", "--json goes with --info");
  if (values.info) return await showInfo(path, known, values.json);

  const filter = values.from === undefined ? undefined : await senderFilter(values.from, known);
  const identity = await keys.identity();
  const input = await inputStream(path);
  let sender: PublicKey | undefined;
  let written = 0;
  try {
    const opened = await openSealed(input, identity, {
      from: filter && (async (key) => {
        sender = key;
        return await filter.matches(key);
      }),
    });
    sender = opened.sender;
    if (values.output !== undefined) {
      await writeToFile(values.output, opened.plaintext, { mode: 0o600, force: values.force });
    } else {
      // Counted as written, for the message if a later chunk fails.
      const stdout = {
        async write(bytes: Uint8Array) {
          const count = await STDOUT.write(bytes);
          written += count;
          return count;
        },
      };
      await writeAll(stdout, opened.plaintext);
    }
  } catch (error) {
    if (!(error instanceof SealedError)) {
      if (error instanceof OvtpError) throw error;
      throw new OvtpError("io", `Cannot open ${name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const where = values.output === undefined
      ? written > 0
        ? `the ${written} bytes already written to stdout cannot be taken back`
        : "nothing was written"
      : `nothing was written to "${values.output}"`;
    throw await refusal(error, { name, known, sender, from: values.from, identity, where });
  }
  await writeErr(`Sealed by ${printable(await describeKey(sender!, known))}\n`);
  return 0;
}

interface RefusalContext {
  name: string;
  known: KnownKeys;
  sender: PublicKey | undefined;
  from: string | undefined;
  identity: { publicKey: PublicKey } | undefined;
  where: string;
}

/** One clear message per reason, with the exit code's kind. */
async function refusal(error: SealedError, context: RefusalContext): Promise<OvtpError> {
  const { name, known, sender } = context;
  const by = sender ? printable(await describeKey(sender, known)) : "";
  const hint = { hint: context.where, cause: error };
  switch (error.reason) {
    case "not-recipient":
      return new OvtpError(
        "key",
        `${name} is not sealed for your key (${await fingerprint(context.identity!.publicKey)})`,
        { hint: "`ovtp open --info` lists the recipients' fingerprints", cause: error },
      );
    case "sender":
      return new OvtpError(
        "trust",
        `${name} was sealed by ${by}, not by "${context.from}"`,
        hint,
      );
    case "header-signature":
      return new OvtpError(
        "protocol",
        `The header signature of ${name} is not valid: the file was altered or forged`,
        hint,
      );
    case "wrapped-key":
      return new OvtpError(
        "protocol",
        `The file key wrapped for your key in ${name} is damaged: ${lower(error.message)}`,
        hint,
      );
    case "chunk":
      return new OvtpError(
        "protocol",
        `Chunk ${error.chunk} of ${name} fails authentication: ` +
          "it was damaged, moved, or taken from another file",
        hint,
      );
    case "payload-signature":
      return new OvtpError(
        "protocol",
        `The payload signature of ${name} is not valid: its content was not sealed by ${by}`,
        hint,
      );
    case "truncated":
      return new OvtpError("protocol", `${name} is truncated: ${lower(error.message)}`, hint);
    case "trailing-data":
      return new OvtpError(
        "protocol",
        `${name} has data after its end: ${lower(error.message)}`,
        hint,
      );
    case "armor":
      return new OvtpError(
        "protocol",
        `The armor of ${name} is damaged at line ${error.line}: ${
          lower(error.message.replace(/^.*line \d+: /, ""))
        }`,
        hint,
      );
    case "malformed": {
      const notOurs = error.message.match(/^Not an ovtp sealed file(.*)$/);
      return new OvtpError(
        "protocol",
        notOurs
          ? `${name} is not an ovtp sealed file${notOurs[1]}`
          : `${name} is not a valid ovtp sealed file: ${lower(error.message)}`,
        hint,
      );
    }
  }
}

async function showInfo(
  path: string | undefined,
  known: KnownKeys,
  json: boolean,
): Promise<number> {
  const name = inputName(path);
  let info;
  try {
    info = await inspectSealed(await inputStream(path));
  } catch (error) {
    if (error instanceof SealedError) {
      throw await refusal(error, {
        name,
        known,
        sender: undefined,
        from: undefined,
        identity: undefined,
        where: "nothing was decrypted",
      });
    }
    throw error;
  }
  if (json) {
    const who = async (key: PublicKey) => ({
      fingerprint: await fingerprint(key),
      name: nameOf(key, known) ?? null,
    });
    await writeOut(
      jsonLine({
        format: "ovtp sealed v1",
        armored: info.armored,
        sender: await who(info.sender),
        recipients: await Promise.all(info.recipients.map(who)),
      }) + "\n",
    );
    return 0;
  }
  const lines = [
    `Format:     ovtp sealed v1, ${info.armored ? "armored" : "binary"}`,
    `Sealed by:  ${printable(await describeKey(info.sender, known))}`,
    "            (header signature valid; the content is checked when opened)",
    `Recipients: ${info.recipients.length}`,
  ];
  for (const recipient of info.recipients) {
    lines.push(`  ${printable(await describeKey(recipient, known))}`);
  }
  await writeOut(lines.join("\n") + "\n");
  return 0;
}

function lower(message: string): string {
  return message.charAt(0).toLowerCase() + message.slice(1);
}

/** `ovtp open`. */
export const open: Command = {
  usage: USAGE,
  run,
  json: true,
};
