import { fingerprint, hasHiddenCharacters, parsePublicKey } from "../lib/identity/keys.ts";
import { formatCode } from "../lib/pair/code.ts";
import { DEFAULT_VALID_MS, InviteStore, MAX_TRIES } from "../lib/pair/invites.ts";
import { formatDuration, parseDuration } from "./_duration.ts";
import { KEY_OPTIONS, keyOptionsOf } from "./_key_option_flags.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { flag, HOME, parsed, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { OvtpError } from "../lib/errors.ts";
import { jsonLine, printable } from "./_printable.ts";

/** The longest an invite may stay usable. */
const MAX_VALID_MS = 7 * 86_400_000;

const OPTIONS = {
  name: text({
    arg: "NAME",
    help: "the name the client's key gets (default: the name the client asks for with " +
      "`pair --name`, or its key's comment)",
  }),
  ...KEY_OPTIONS,
  valid: parsed(
    {
      arg: "DURATION",
      default: DEFAULT_VALID_MS,
      help: `how long the code can be used: 30s, 10m, 2h, up to ${
        formatDuration(MAX_VALID_MS)
      } (a bare number is seconds) (default {default})`,
    },
    (text, flag) => parseDuration(text, flag, "invite", MAX_VALID_MS),
    formatDuration,
  ),
  list: flag({ help: "list the pending invites (their numbers, never their codes)" }),
  revoke: text({
    arg: "NUMBER",
    help: "revoke pending invite NUMBER (the first part of its code)",
  }),
  json: flag({
    help: 'print {"code","invite","expires","name","fingerprint"}; with --list one ' +
      '{"invite","name","options","expires","tries"} per line; with --revoke {"revoked"}',
  }),
  home: HOME,
};

const USAGE = `Usage: ovtp invite [--name NAME] [--allow LIST] [--expires DATE]
                   [--rate COUNT/UNIT] [--valid DURATION] [--json] [--home DIR]
       ovtp invite --list [--json] [--home DIR]
       ovtp invite --revoke NUMBER [--json] [--home DIR]

Makes a one-time code with which a client pairs with this server: on the
client, \`ovtp pair HOST CODE\` puts the client's key in this server's
authorized_keys (with the options below) and this server's key in the
client's known_hosts, each proven by the code, while \`ovtp listen\` runs
from this home (started before or after the invite). The code works once,
for --valid, and ${MAX_TRIES} wrong tries revoke it. Give it to the client's
owner in person or by phone: whoever uses it first is paired.

Options:
${
  optionsHelp(OPTIONS, [
    "name",
    "allow",
    "expires",
    "rate",
    "valid",
    "list",
    "revoke",
    "json",
    "home",
  ], 22)
}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "invite");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length > 0) usageError("invite", `Unexpected argument "${positionals[0]}"`);
  if (values.list || values.revoke !== undefined) {
    const making = (["name", "allow", "expires", "rate"] as const).filter((flag) =>
      values[flag] !== undefined
    );
    if (values.list && values.revoke !== undefined) {
      usageError("invite", "Give --list or --revoke, not both");
    }
    if (making.length > 0) {
      usageError("invite", `--${making[0]} makes an invite: not with --list or --revoke`);
    }
    const invites = new InviteStore(openKeystore(values.home));
    return values.list
      ? await listInvites(invites, values.json)
      : await revokeInvite(invites, values.revoke!, values.json);
  }
  const validMs = values.valid;
  const options = keyOptionsOf(values);
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

/** `invite --list`: numbers, names, options, expiry and tries; never a code (it is not kept). */
async function listInvites(invites: InviteStore, json: boolean): Promise<number> {
  const pending = await invites.list();
  if (json) {
    const lines = pending.map((invite) =>
      jsonLine({
        invite: invite.nameplate,
        name: invite.name ?? null,
        options: invite.options,
        expires: invite.expires,
        tries: invite.tries,
      }) + "\n"
    );
    await writeOut(lines.join(""));
    return 0;
  }
  if (pending.length === 0) {
    await writeErr("ovtp: no pending invites\n");
    return 0;
  }
  const lines = pending.map((invite) => {
    const who = invite.name === undefined ? "" : ` for "${printable(invite.name)}"`;
    const options = invite.options ? `, ${printable(invite.options)}` : "";
    return `invite ${invite.nameplate}${who}, valid until ${invite.expires}` +
      ` (${invite.tries} of ${MAX_TRIES} tries used${options})\n`;
  });
  await writeOut(lines.join(""));
  return 0;
}

/** `invite --revoke NUMBER`: an unknown number is "not found" (exit 7), as for keys. */
async function revokeInvite(invites: InviteStore, text: string, json: boolean): Promise<number> {
  const nameplate = /^\d{1,6}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isInteger(nameplate)) {
    usageError("invite", `Invalid --revoke "${text}": give the invite's number (1 in 1-4213-8890)`);
  }
  if (!await invites.revoke(nameplate)) {
    throw new OvtpError("not-found", `No pending invite ${nameplate}`, {
      hint: "`ovtp invite --list` shows the pending ones",
    });
  }
  await writeOut(
    json ? jsonLine({ revoked: nameplate }) + "\n" : `Revoked invite ${nameplate}.\n`,
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
