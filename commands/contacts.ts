import { fingerprint } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { EXIT } from "./_failure.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { flag, HOME, parseOptions } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { readKeyLines } from "./_key_lines.ts";
import { jsonLine, printable } from "./_printable.ts";

const OPTIONS = {
  json: flag({
    help: 'list as one {"name","fingerprint"} per line; add and remove print ' +
      '{"name","fingerprint","added"} and {"removed","fingerprint"}',
  }),
  home: HOME,
};

const USAGE = `Usage: ovtp contacts [list] [--json] [--home DIR]
       ovtp contacts add NAME (LINE | FILE | -) [--json] [--home DIR]
       ovtp contacts remove (NAME | FINGERPRINT) [--json] [--home DIR]

Your address book for sealed files: the keys you seal for (\`seal -r NAME\`)
and expect files from (\`open --from NAME\`), in ~/.ovtp/contacts. A contact
may not log in to your server: that is authorized_keys (\`ovtp add-key\`).
Chat also warns when a member uses a contact's name with another key.

add takes the public line itself ("ovtp1 ...", its comment ignored), a file
holding one (such as the id_ovtp.pub someone sent you), or - for stdin.
Every contact has a name, and no two have the same one. "ls" is "list",
"rm" is "remove".

Options:
${optionsHelp(OPTIONS, ["json", "home"], 14)}
`;

/** The actions and the other names they answer to. */
const ACTIONS: Record<string, "list" | "add" | "remove"> = {
  list: "list",
  ls: "list",
  add: "add",
  remove: "remove",
  rm: "remove",
};

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "contacts");
  const { positionals } = parsed;
  const values = parsed.values();
  const [word = "list", ...rest] = positionals;
  const action = Object.hasOwn(ACTIONS, word) ? ACTIONS[word] : undefined;
  if (action === undefined) {
    usageError("contacts", `Unknown action "${word}": use list, add or remove`);
  }
  const keystore = openKeystore(values.home);
  const { json } = values;
  switch (action) {
    case "list":
      if (rest.length > 0) usageError("contacts", `Unexpected argument "${rest[0]}"`);
      return await list(keystore, json);
    case "add":
      if (rest.length !== 2) usageError("contacts", "Give a NAME and one public line or file");
      return await add(keystore, rest[0], rest[1], json);
    case "remove":
      if (rest.length !== 1) usageError("contacts", "Give one NAME or FINGERPRINT to remove");
      return await remove(keystore, rest[0], json);
  }
}

async function list(keystore: Keystore, json: boolean): Promise<number> {
  const { entries, errors } = await keystore.readContacts();
  const path = keystore.path("contacts");
  for (const error of errors) {
    await writeErr(`ovtp: warning: ${path} line ${error.line}: ${printable(error.message)}\n`);
  }
  if (entries.length === 0 && !json) {
    await writeErr(`No contacts in ${path}; add one with \`ovtp contacts add NAME LINE\`\n`);
  }
  const names = entries.map((entry) => printable(entry.name));
  const width = Math.max(0, ...names.map((name) => name.length));
  for (const [i, entry] of entries.entries()) {
    const fp = await fingerprint(entry.key);
    await writeOut(
      json
        ? jsonLine({ name: entry.name, fingerprint: fp }) + "\n"
        : `${names[i].padEnd(width)}  ${fp}\n`,
    );
  }
  // The listing is printed, but the file needs fixing (and seal/open refuse it).
  return errors.length > 0 ? EXIT.key : EXIT.ok;
}

async function add(keystore: Keystore, name: string, source: string, json: boolean) {
  const keys = await readKeyLines(source);
  if (keys.length > 1) {
    usageError("contacts", `A contact is one key, and ${keys.length} were given`);
  }
  const result = await keystore.addContact(keys[0].key, name);
  const fp = await fingerprint(keys[0].key);
  await writeOut(
    json
      ? jsonLine({ name: result.name, fingerprint: fp, added: result.added }) + "\n"
      : result.added
      ? `Added contact "${printable(result.name)}" (${fp}) to ${keystore.path("contacts")}\n`
      : `Already a contact as "${printable(result.name)}" (${fp}); nothing changed\n`,
  );
  return EXIT.ok;
}

async function remove(keystore: Keystore, which: string, json: boolean) {
  for (const removed of await keystore.removeContact(which)) {
    const fp = await fingerprint(removed.key);
    await writeOut(
      json
        ? jsonLine({ removed: removed.name, fingerprint: fp }) + "\n"
        : `Removed contact "${printable(removed.name)}" (${fp})\n`,
    );
  }
  return EXIT.ok;
}

/** `ovtp contacts`. */
export const contacts: Command = { usage: USAGE, run, json: true };
