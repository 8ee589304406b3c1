import { dial } from "../lib/client/client.ts";
import { OvtpError } from "../lib/errors.ts";
import { knownHostsVerifier, UnknownHostError } from "../lib/trust/host_trust.ts";
import { fingerprint, parsePublicKey, type PublicKey } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import { parseCode } from "../lib/pair/code.ts";
import { DEFAULT_PAIR_TIMEOUT_MS, pair as pairWith } from "../lib/pair/initiator.ts";
import { type Command, openKeystore, usageError, writeOut } from "./_cli.ts";
import { loadIdentityFor } from "./_connect.ts";
import { resolveHost } from "./_host_target.ts";
import { flag, HOME, IDENTITY, parseOptions, seconds, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { jsonLine, printable } from "./_printable.ts";

const OPTIONS = {
  name: text({
    arg: "NAME",
    help: "the name to be known by on the server (default: your key's comment; the " +
      "invite's --name wins)",
  }),
  identity: { ...IDENTITY, help: "pair this key file instead of id_ovtp" },
  timeout: seconds({
    arg: "SECONDS",
    default: DEFAULT_PAIR_TIMEOUT_MS,
    help: "time allowed to connect and pair (default {default})",
  }),
  json: flag({ help: 'print {"host","fingerprint","name","added"}' }),
  home: HOME,
};

const USAGE = `Usage: ovtp pair HOST[:PORT] CODE [--name NAME] [-i FILE] [--timeout SECONDS]
                 [--json] [--home DIR]

Pairs with a server by the one-time code its owner made with \`ovtp invite\`:
your key goes into the server's authorized_keys and the server's key into
your known_hosts. The code proves each key to the other side (a password-
authenticated key exchange, bound to this connection), so there is no
fingerprint to compare and no prompt, even for a host you never met.
Nothing is written on either side when the code is wrong, expired or used,
or when something between you and the server is not the server.

Options:
${optionsHelp(OPTIONS, ["name", "identity", "timeout", "json", "home"], 22)}
HOST may be an alias from ~/.ovtp/config (address, port, identity).`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "pair");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length < 2) usageError("pair", "Give the HOST and the CODE");
  const [target, ...codeWords] = positionals;
  let code;
  try {
    code = parseCode(codeWords.join(" "));
  } catch (error) {
    usageError("pair", (error as Error).message);
  }
  const timeoutMs = values.timeout;
  const keystore = openKeystore(values.home);
  const { settings, address, port, display } = await resolveHost(keystore, target);
  const identity = await loadIdentityFor(keystore, settings, values.identity);
  const name = values.name ?? await ownComment(keystore, values.identity);
  const result = await pairWith({
    stream: await dial(address, port, timeoutMs),
    identity,
    code,
    name,
    timeoutMs,
    verifyHost: changedKeyCheck(keystore, display),
  });
  const fp = await fingerprint(result.serverKey);
  await recordHost(keystore, display, result.serverKey);
  await writeOut(
    values.json
      ? jsonLine({ host: display, fingerprint: fp, name: result.name, added: result.added }) + "\n"
      : `Paired with ${display}, whose key ${fp} is now in your known_hosts.\n` +
        (result.added
          ? `The server authorized your key as "${printable(result.name)}".\n`
          : `Your key was already authorized there, as "${printable(result.name)}".\n`),
  );
  return 0;
}

/**
 * The known_hosts check of a pairing connection: a host not known yet is
 * fine (the code authenticates its key), a known one must present the key
 * recorded for it.
 */
function changedKeyCheck(keystore: Keystore, host: string): (key: PublicKey) => Promise<void> {
  const verify = knownHostsVerifier(keystore, host, { strict: true });
  return async (key) => {
    try {
      await verify(key);
    } catch (error) {
      if (!(error instanceof UnknownHostError)) throw error;
    }
  };
}

/** Records the server's key, proven by the code, unless it is known already. */
async function recordHost(keystore: Keystore, host: string, key: PublicKey): Promise<void> {
  try {
    await keystore.addKnownHost(host, key);
  } catch (error) {
    // Another process recorded another key for it meanwhile: say so, with
    // the pairing itself done on the server.
    if (!(error instanceof OvtpError)) throw error;
    throw new OvtpError("trust", `The server authorized your key, but: ${error.message}`, {
      hint: error.hint,
    });
  }
}

/** The comment of id_ovtp.pub, the name a key is known by when none is given. */
async function ownComment(keystore: Keystore, keyFile: string | undefined): Promise<string> {
  if (keyFile !== undefined) return "";
  try {
    return parsePublicKey(await keystore.readPublicLine()).comment;
  } catch {
    return "";
  }
}

/** `ovtp pair`. */
export const pair: Command = { usage: USAGE, run, json: true };
