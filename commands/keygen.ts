import { OvtpError } from "../lib/errors.ts";
import { fingerprint, parsePublicKey } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { changePassphrase } from "./_change_passphrase.ts";
import { typeNewPassphrase } from "./_new_passphrase.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { flag, HOME, IDENTITY, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { jsonLine } from "./_printable.ts";

const OPTIONS = {
  force: flag({ help: "replace an existing identity (the old one is lost)" }),
  passphrase: flag({
    help: "protect the private key with a passphrase (Argon2id), read from the terminal " +
      "(typed twice, three tries) or from $OVTP_PASSPHRASE",
  }),
  "change-passphrase": flag({ help: "add, change or remove the passphrase of id_ovtp" }),
  identity: {
    ...IDENTITY,
    help: "(with --change-passphrase) change this key file instead",
  },
  comment: text({
    short: "C",
    arg: "TEXT",
    help: "the comment on the public line (default: user@host)",
  }),
  /** Not in the help: only there to say why there is no -f. */
  file: text({ short: "f", arg: "FILE", help: "" }),
  json: flag({
    help: 'print {"home","fingerprint","public_line"}, or ' +
      '{"path","fingerprint","passphrase"} after a change',
  }),
  home: HOME,
};

const USAGE = `Usage: ovtp keygen [--force] [--passphrase] [-C TEXT] [--json] [--home DIR]
       ovtp keygen --change-passphrase [-i FILE] [--force] [--json] [--home DIR]

Creates your identity (an X25519 and an Ed25519 key) in ~/.ovtp and prints
its fingerprint and public line. Give the public line to the servers you will
connect to (they run \`ovtp add-key\`).

An existing identity is replaced only with --force, and on a terminal only
once you confirm. ovtp keeps one identity per home, always named id_ovtp:
for another identity use another home (--home DIR or OVTP_HOME), there is
no -f FILE.

--change-passphrase asks for the current passphrase (if the key has one),
then a new one, typed twice; an empty new one stores the key without a
passphrase once you type "yes". The key file is rewritten atomically; the
keys, the public line and the fingerprint stay the same. Scripts give the
current passphrase in $OVTP_PASSPHRASE and the new one in
$OVTP_NEW_PASSPHRASE; an empty $OVTP_NEW_PASSPHRASE removes the passphrase
only with --force. An agent holding the old file no longer serves it.

Options:
${
  optionsHelp(OPTIONS, [
    "force",
    "passphrase",
    "change-passphrase",
    "identity",
    "comment",
    "json",
    "home",
  ], 22)
}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "keygen");
  const { positionals } = parsed;
  const values = parsed.values();
  if (values.file !== undefined) {
    usageError(
      "keygen",
      "ovtp keeps its identity in its home as id_ovtp: use --home DIR for another identity",
    );
  }
  if (positionals.length > 0) usageError("keygen", `Unexpected argument "${positionals[0]}"`);
  const keystore = openKeystore(values.home);
  if (values["change-passphrase"]) {
    if (values.passphrase || values.comment !== undefined) {
      usageError("keygen", "--change-passphrase keeps the key: give no --passphrase or -C");
    }
    return await changePassphrase(keystore, values.identity, values);
  }
  if (values.identity !== undefined) {
    usageError("keygen", "-i goes with --change-passphrase: use --home DIR for another identity");
  }
  if (values.force) await confirmReplace(keystore);
  const passphrase = values.passphrase ? await newPassphrase() : undefined;
  const { identity, line } = await keystore.createIdentity({
    force: values.force,
    passphrase,
    comment: values.comment ?? defaultComment(),
  });
  const print = await fingerprint(identity.publicKey);
  await writeOut(
    values.json
      ? jsonLine({ home: keystore.home, fingerprint: print, public_line: line }) + "\n"
      : `Created an identity in ${keystore.home}\nFingerprint: ${print}\n${line}\n`,
  );
  return 0;
}

/**
 * Asks before --force replaces an identity, when a person is there to
 * answer; a script (no terminal) gets what it asked for.
 */
async function confirmReplace(keystore: Keystore): Promise<void> {
  if (!await keystore.hasIdentity() || !Deno.stdin.isTerminal()) return;
  const old = await keystore.readPublicLine()
    .then(async (line) => ` (${await fingerprint(parsePublicKey(line).key)})`, () => "");
  await writeErr(
    `Replace the identity in ${keystore.home}${old}? The old key is lost. Type "yes": `,
  );
  if ((await readLine()).trim().toLowerCase() !== "yes") {
    throw new OvtpError("interrupted", "Kept the existing identity: nothing was changed");
  }
}

/** Reads one line typed on the terminal (cooked mode: it comes whole). */
async function readLine(): Promise<string> {
  const buffer = new Uint8Array(1024);
  const n = await Deno.stdin.read(buffer);
  return n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n));
}

/**
 * The new passphrase: from $OVTP_PASSPHRASE, or typed twice on the
 * terminal, asking again (three tries) when the two differ or it is empty.
 */
async function newPassphrase(): Promise<string> {
  return await typeNewPassphrase({ variable: "OVTP_PASSPHRASE", mayBeEmpty: false });
}

function defaultComment(): string {
  const user = Deno.env.get("USER") ?? Deno.env.get("USERNAME") ?? "ovtp";
  return `${user}@${Deno.hostname()}`.replace(/\s+/g, "_");
}

/** `ovtp keygen`. */
export const keygen: Command = { usage: USAGE, run, json: true };
