import { duplicateNames } from "../lib/authorized_keys.ts";
import { EXIT } from "./_failure.ts";
import { formatOptions } from "../lib/key_options.ts";
import { fingerprint } from "../lib/keys.ts";
import {
  type Command,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { jsonLine, printable } from "./_printable.ts";

const USAGE = `Usage: ovtp keys [list] [--json] [--home DIR]
       ovtp keys remove (NAME | FINGERPRINT) [--json] [--home DIR]

Lists the authorized client keys (name, fingerprint, and the options that
limit them: allowed services, expiry, rate), or removes one. "ls" is
"list", "rm" is "remove".

Options:
  --json        print one {"name","fingerprint","options","expired"} per key,
                or {"removed","fingerprint"}
  --home DIR    use DIR instead of $OVTP_HOME or ~/.ovtp
`;

/** The actions and the other names they answer to. */
const ACTIONS: Record<string, "list" | "remove"> = {
  list: "list",
  ls: "list",
  remove: "remove",
  rm: "remove",
};

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    json: { type: "boolean" },
  }, "keys");
  const keystore = openKeystore(values.home);
  const action = positionals.length === 0
    ? "list"
    : Object.hasOwn(ACTIONS, positionals[0])
    ? ACTIONS[positionals[0]]
    : undefined;
  if (action === undefined) {
    usageError("keys", `Unknown action "${positionals[0]}": use list or remove`);
  }
  if (action === "remove") {
    if (positionals.length !== 2) usageError("keys", "Give one NAME or FINGERPRINT to remove");
    const removed = await keystore.removeAuthorizedKey(positionals[1]);
    const print = await fingerprint(removed.key);
    await writeOut(
      values.json
        ? jsonLine({ removed: removed.name, fingerprint: print }) + "\n"
        : `Removed "${printable(removed.name)}" (${print})\n`,
    );
    return 0;
  }
  if (positionals.length > 1) usageError("keys", `Unexpected argument "${positionals[1]}"`);
  const read = await keystore.readAuthorizedKeys();
  const entries = read.entries;
  const errors = [...read.errors, ...duplicateNames(entries)].sort((a, b) => a.line - b.line);
  const path = keystore.path("authorizedKeys");
  for (const error of errors) {
    await writeErr(`ovtp: warning: ${path} line ${error.line}: ${printable(error.message)}\n`);
  }
  if (entries.length === 0) {
    await writeErr(`No authorized keys in ${path}; add one with \`ovtp add-key\`\n`);
  }
  // Names come from the clients' own key comments: shown printable.
  const names = entries.map((entry) => printable(entry.name));
  const width = Math.max(0, ...names.map((name) => name.length));
  for (const [i, entry] of entries.entries()) {
    const options = formatOptions(entry.options);
    const expired = entry.options.expires && entry.options.expires.getTime() <= Date.now()
      ? "  (expired)"
      : "";
    if (values.json) {
      await writeOut(
        jsonLine({
          name: entry.name,
          fingerprint: await fingerprint(entry.key),
          options,
          expired: expired !== "",
        }) + "\n",
      );
      continue;
    }
    await writeOut(
      `${names[i].padEnd(width)}  ${await fingerprint(entry.key)}${
        options ? `  ${options}` : ""
      }${expired}\n`,
    );
  }
  // The listing is printed, but the file needs fixing: a key error.
  return errors.length > 0 ? EXIT.key : EXIT.ok;
}

/** `ovtp keys`. */
export const keys: Command = { usage: USAGE, run, json: true };
