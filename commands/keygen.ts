import { OvtpError } from "../lib/errors.ts";
import { fingerprint } from "../lib/keys.ts";
import {
  askPassphrase,
  type Command,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  usageError,
  writeOut,
} from "./_cli.ts";

const USAGE = `Usage: ovtp keygen [--force] [--passphrase] [--comment TEXT] [--home DIR]

Creates your identity (an X25519 and an Ed25519 key) in ~/.ovtp and prints
its fingerprint and public line. Give the public line to the servers you will
connect to (they run \`ovtp add-key\`).

Options:
  --force           replace an existing identity (the old one is lost)
  --passphrase      protect the private key with a passphrase (Argon2id),
                    read from the terminal or from $OVTP_PASSPHRASE
  --comment TEXT    the comment on the public line (default: user@host)
  --home DIR        use DIR instead of $OVTP_HOME or ~/.ovtp
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    force: { type: "boolean" },
    passphrase: { type: "boolean" },
    comment: { type: "string" },
  }, "keygen");
  if (positionals.length > 0) usageError("keygen", `Unexpected argument "${positionals[0]}"`);
  const keystore = openKeystore(values.home);
  let passphrase: string | undefined;
  if (values.passphrase) {
    passphrase = await askPassphrase("New passphrase: ");
    if (Deno.env.get("OVTP_PASSPHRASE") === undefined) {
      if (await askPassphrase("Same passphrase again: ") !== passphrase) {
        throw new OvtpError("usage", "The passphrases do not match");
      }
    }
    if (!passphrase) throw new OvtpError("usage", "The passphrase is empty");
  }
  const { identity, line } = await keystore.createIdentity({
    force: values.force,
    passphrase,
    comment: values.comment ?? defaultComment(),
  });
  await writeOut(
    `Created an identity in ${keystore.home}\n` +
      `Fingerprint: ${await fingerprint(identity.publicKey)}\n` +
      `${line}\n`,
  );
  return 0;
}

function defaultComment(): string {
  const user = Deno.env.get("USER") ?? Deno.env.get("USERNAME") ?? "ovtp";
  return `${user}@${Deno.hostname()}`.replace(/\s+/g, "_");
}

/** `ovtp keygen`. */
export const keygen: Command = { usage: USAGE, run };
