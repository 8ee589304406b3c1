import { fingerprint, hasHiddenCharacters, parsePublicKey } from "../lib/keys.ts";
import { formatCode } from "../lib/pair/code.ts";
import { InviteStore, MAX_TRIES } from "../lib/pair/invites.ts";
import { parseDuration } from "./_duration.ts";
import { KEY_OPTION_FLAGS, keyOptionFlags } from "./_key_option_flags.ts";
import {
  type Command,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  usageError,
  writeOut,
} from "./_cli.ts";
import { jsonLine, printable } from "./_printable.ts";

const USAGE = `Usage: ovtp invite [--name NAME] [--allow LIST] [--expires DATE]
                   [--rate COUNT/UNIT] [--valid DURATION] [--json] [--home DIR]

Makes a one-time code with which a client pairs with this server: on the
client, \`ovtp pair HOST CODE\` puts the client's key in this server's
authorized_keys (with the options below) and this server's key in the
client's known_hosts, each proven by the code, while \`ovtp listen\` runs
from this home (started before or after the invite). The code works once,
for --valid, and ${MAX_TRIES} wrong tries revoke it. Give it to the client's
owner in person or by phone: whoever uses it first is paired.

Options:
  --name NAME         the name the client's key gets (default: the name the
                      client asks for with \`pair --name\`, or its key's comment)
  --allow LIST        only these services, comma-separated: message, call,
                      call:NAME, upload, download, chat, chat:ROOM
                      (default: all)
  --expires DATE      refuse the key after DATE (2026-12-31 or an ISO time)
  --rate COUNT/UNIT   the key's request limit, e.g. 100/h (s, m, h, d)
  --valid DURATION    how long the code can be used: 30s, 10m, 2h, up to 7d
                      (a bare number is seconds)
                      (default 10m)
  --json              print {"code","invite","expires","name","fingerprint"}
  --home DIR          use DIR instead of $OVTP_HOME or ~/.ovtp
`;

/** The longest an invite may stay usable. */
const MAX_VALID_MS = 7 * 86_400_000;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    name: { type: "string" },
    ...KEY_OPTION_FLAGS,
    valid: { type: "string", default: "10m" },
    json: { type: "boolean" },
  }, "invite");
  if (positionals.length > 0) usageError("invite", `Unexpected argument "${positionals[0]}"`);
  const validMs = parseDuration(values.valid, "--valid", "invite", MAX_VALID_MS);
  const options = keyOptionFlags(values, "invite", false);
  const keystore = openKeystore(values.home);
  // The server's key: the client learns it by the code; shown here to compare if wanted.
  const server = await fingerprint(parsePublicKey(await keystore.readPublicLine()).key);
  const name = values.name?.trim() || undefined;
  if (name !== undefined) await refuseTakenName(keystore, name);
  const { code, expires } = await new InviteStore(keystore).create({
    name,
    keyOptions: options,
    validMs,
  });
  const text = formatCode(code);
  if (values.json) {
    await writeOut(
      jsonLine({
        code: text,
        invite: code.nameplate,
        expires: expires.toISOString(),
        name: name ?? null,
        fingerprint: server,
      }) + "\n",
    );
    return 0;
  }
  const who = name === undefined ? "" : ` for "${printable(name)}"`;
  await writeOut(
    `Invite ${code.nameplate}${who}, valid until ${expires.toISOString()} ` +
      `(${MAX_TRIES} tries). On the client, run:\n\n` +
      `  ovtp pair ${hostname()} ${text}\n\n` +
      `This server's key is ${server}; \`ovtp listen\` must be running when the client pairs.\n`,
  );
  return 0;
}

/** The invite's name must be usable and free now (it is checked again when the client pairs). */
async function refuseTakenName(keystore: ReturnType<typeof openKeystore>, name: string) {
  if (hasHiddenCharacters(name) || name === "self" || /^SHA256:/i.test(name)) {
    usageError("invite", `Cannot give a key the name "${printable(name)}"`);
  }
  const taken = (await keystore.readAuthorizedKeys()).entries.find((e) => e.name === name);
  if (taken) {
    usageError("invite", `Another key (line ${taken.line}) already has the name "${name}"`);
  }
}

/** This machine's name, for the command shown (the client may need another name for it). */
function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "HOST";
  }
}

/** `ovtp invite`. */
export const invite: Command = { usage: USAGE, run, json: true };
