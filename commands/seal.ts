import { OvtpError } from "../lib/errors.ts";
import { writeAll } from "../lib/sealed/files.ts";
import { sealStream } from "../lib/sealed/seal.ts";
import { MAX_SEALED_RECIPIENTS } from "../lib/sealed/format.ts";
import { type Command, openKeystore, usageError } from "./_cli.ts";
import { flag, HOME, IDENTITY, list, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { keysInUse, resolveRecipients } from "./_recipients.ts";
import { checkOutput, inputStream, writeToFile } from "./_sealed_io.ts";
import { STDOUT } from "./_stdout.ts";

const OPTIONS = {
  recipient: list({
    short: "r",
    arg: "RECIPIENT",
    help: `who can open the file; repeat for several (up to ${MAX_SEALED_RECIPIENTS})`,
  }),
  output: text({
    short: "o",
    arg: "OUT",
    help: "write to OUT (created only once complete) instead of stdout; an existing file is " +
      "replaced only with --force",
  }),
  force: flag({ help: "replace an existing OUT" }),
  armor: flag({
    short: "a",
    help: "write text that survives e-mail (-----BEGIN OVTP SEALED FILE-----)",
  }),
  identity: IDENTITY,
  home: HOME,
};

const USAGE = `Usage: ovtp seal -r RECIPIENT [-r RECIPIENT...] [FILE] [-o OUT [--force]] [--armor]
                 [-i KEYFILE] [--home DIR]

Encrypts FILE (or stdin) so that only the recipients can open it, and signs
it with your identity so that they can tell it comes from you. Any size:
the file is streamed in 64 KiB chunks. The sealed file goes to OUT (or
stdout). Open it with \`ovtp open\`.

A RECIPIENT is, in this order:
  self          your own key (with -i, that key), so that you can open it too
  ovtp1 ...     a public line (quote it)
  SHA256:...    the fingerprint of a contact or of a key in authorized_keys
  NAME          a name in your contacts (\`ovtp contacts\`) or authorized_keys;
                a name in both with different keys is refused
  FILE          a file holding public lines (./NAME if a name is also a file)

Options:
${optionsHelp(OPTIONS, ["recipient", "output", "force", "armor", "identity", "home"], 30)}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "seal");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length > 1) usageError("seal", `Unexpected argument "${positionals[1]}"`);
  const specs = values.recipient;
  if (specs.length === 0) usageError("seal", "Give at least one recipient with -r");
  if (values.output === undefined && !values.armor && Deno.stdout.isTerminal()) {
    throw new OvtpError("usage", "Refusing to write a binary sealed file to the terminal", {
      hint: "use -o FILE, redirect stdout, or --armor",
    });
  }
  if (values.force && values.output === undefined) {
    usageError("seal", "--force applies to -o OUT");
  }
  await checkOutput(values.output, values.force);
  const keystore = openKeystore(values.home);
  const keys = await keysInUse(keystore, { identityFile: values.identity });
  const recipients = await resolveRecipients(specs, keys.known);
  const identity = await keys.identity();
  const input = await inputStream(positionals[0]);
  const sealed = sealStream(input, identity, { recipients, armor: values.armor });
  try {
    if (values.output !== undefined) {
      await writeToFile(values.output, sealed, { mode: 0o644, force: values.force });
    } else {
      await writeAll(STDOUT, sealed);
    }
  } catch (error) {
    if (error instanceof OvtpError) throw error;
    const where = values.output === undefined ? "stdout" : `"${values.output}"`;
    throw new OvtpError("io", `Cannot seal to ${where}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return 0;
}

/** `ovtp seal`. */
export const seal: Command = {
  usage: USAGE,
  run,
};
