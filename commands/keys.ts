import { duplicateNames } from "../lib/trust/authorized_keys.ts";
import { EXIT } from "./_failure.ts";
import { formatOptions, type KeyChange } from "../lib/trust/key_options.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { fingerprint } from "../lib/identity/keys.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { jsonLine, printable } from "./_printable.ts";
import { KEY_CHANGE_OPTIONS, keyOptionsOf } from "./_key_option_flags.ts";
import { flag, HOME, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";

const OPTIONS = {
  ...KEY_CHANGE_OPTIONS,
  name: text({ arg: "NEW", help: "(set) rename the key" }),
  json: flag({
    help: 'print one {"name","fingerprint","options","expired"} per key, ' +
      '{"removed","fingerprint"}, or {"name","fingerprint","options"} after set',
  }),
  home: HOME,
};

const USAGE = `Usage: ovtp keys [list] [--json] [--home DIR]
       ovtp keys remove (NAME | FINGERPRINT) [--json] [--home DIR]
       ovtp keys set (NAME | FINGERPRINT) [--allow LIST|all]
                 [--expires DATE|never] [--rate COUNT/UNIT|none] [--name NEW]

Lists the authorized client keys (name, fingerprint, and the options that
limit them: allowed services, expiry, rate), removes one, or changes one in
place. "ls" is "list", "rm" is "remove".

set replaces the options given and keeps the others; "all", "never" and
"none" lift that limit. A running \`ovtp listen\` applies the change without
a restart: a narrower one closes the key's open connections, and its next
connection gets the new options.

Options:
${optionsHelp(OPTIONS, ["allow", "expires", "rate", "name", "json", "home"], 22)}
`;

/** The actions and the other names they answer to. */
const ACTIONS: Record<string, "list" | "remove" | "set"> = {
  list: "list",
  ls: "list",
  remove: "remove",
  rm: "remove",
  set: "set",
};

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "keys");
  const { positionals } = parsed;
  const values = parsed.values();
  const keystore = openKeystore(values.home);
  const action = positionals.length === 0
    ? "list"
    : Object.hasOwn(ACTIONS, positionals[0])
    ? ACTIONS[positionals[0]]
    : undefined;
  if (action === undefined) {
    usageError("keys", `Unknown action "${positionals[0]}": use list, remove or set`);
  }
  const change = { ...keyOptionsOf(values), name: values.name };
  if (action !== "set" && Object.values(change).some((value) => value !== undefined)) {
    usageError("keys", "--allow, --expires, --rate and --name go with `ovtp keys set`");
  }
  if (action === "set") {
    if (positionals.length !== 2) usageError("keys", "Give one NAME or FINGERPRINT to change");
    return await setKey(keystore, positionals[1], change, values.json);
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

/** `keys set`: changes one key's options or name in place. */
async function setKey(
  keystore: Keystore,
  which: string,
  change: KeyChange,
  json: boolean,
): Promise<number> {
  if (Object.values(change).every((value) => value === undefined)) {
    usageError("keys", "Nothing to change: give --allow, --expires, --rate or --name");
  }
  const { after } = await keystore.updateAuthorizedKey(which, change);
  const print = await fingerprint(after.key);
  const options = formatOptions(after.options);
  await writeOut(
    json
      ? jsonLine({ name: after.name, fingerprint: print, options }) + "\n"
      : `Changed "${printable(after.name)}" (${print}): ${options || "no limits"}\n`,
  );
  return EXIT.ok;
}

/** `ovtp keys`. */
export const keys: Command = { usage: USAGE, run, json: true };
