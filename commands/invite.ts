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
  writeErr,
  writeOut,
} from "./_cli.ts";
import { OvtpError } from "../lib/errors.ts";
import { jsonLine, printable } from "./_printable.ts";

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
  --list              list the pending invites (their numbers, never their codes)
  --revoke NUMBER     revoke pending invite NUMBER (the first part of its code)
  --json              print {"code","invite","expires","name","fingerprint"};
                      with --list one {"invite","name","options","expires",
                      "tries"} per line; with --revoke {"revoked"}
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
    list: { type: "boolean" },
    revoke: { type: "string" },
    json: { type: "boolean" },
  }, "invite");
  if (positionals.length > 0) usageError("invite", `Unexpected argument "${positionals[0]}"`);
  if (values.list || values.revoke !== undefined) {
    const making = ["name", "allow", "expires", "rate"].filter((flag) =>
      values[flag as keyof typeof values] !== undefined
    );
    if (values.list && values.revoke !== undefined) {
      usageError("invite", "Give --list or --revoke, not both");
    }
    if (making.length > 0) {
      usageError("invite", `--${making[0]} makes an invite: not with --list or --revoke`);
    }
    const invites = new InviteStore(openKeystore(values.home));
    return values.list
      ? await listInvites(invites, values.json ?? false)
      : await revokeInvite(invites, values.revoke!, values.json ?? false);
  }
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
