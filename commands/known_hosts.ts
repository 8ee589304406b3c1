import { OvtpError } from "../lib/errors.ts";
import { DEFAULT_PORT } from "../lib/server/defaults.ts";
import { fingerprint, parsePublicKey } from "../lib/identity/keys.ts";
import { isFingerprint } from "../lib/trust/known_hosts.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { flag, HOME, parseOptions } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { resolveHost } from "./_host_target.ts";
import { jsonLine, printable } from "./_printable.ts";

const OPTIONS = {
  json: flag({ help: 'list as one JSON object per line: {"host","fingerprint"}' }),
  home: HOME,
};

const USAGE = `Usage: ovtp known-hosts [list] [--json] [--home DIR]
       ovtp known-hosts add HOST[:PORT] (PUBLIC_LINE | FINGERPRINT) [--home DIR]
       ovtp known-hosts remove HOST[:PORT] [--home DIR]

Lists the servers whose keys this client trusts (known_hosts), records one
(its public line from \`ovtp id\` on the server, or the fingerprint that
\`ovtp id --fingerprint\` prints there), or forgets one (after its key was
replaced on purpose). HOST may be an alias from ~/.ovtp/config, and the port
defaults to its port there, else ${DEFAULT_PORT}, as when connecting.

Options:
${optionsHelp(OPTIONS, ["json", "home"], 14)}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "known-hosts");
  const { positionals } = parsed;
  const values = parsed.values();
  const keystore = openKeystore(values.home);
  const [action = "list", target, key, ...rest] = positionals;
  // As connecting names it: an alias from the config with the config's port.
  const host = async (text: string | undefined) => {
    if (text === undefined) usageError("known-hosts", `Give the HOST[:PORT] to ${action}`);
    return (await resolveHost(keystore, text)).display;
  };
  switch (action) {
    case "list": {
      if (target !== undefined) usageError("known-hosts", "list takes no HOST");
      for (const entry of await keystore.readKnownHosts()) {
        const fp = entry.fingerprint ?? await fingerprint(entry.key!);
        await writeOut(
          values.json
            ? jsonLine({ host: entry.host, fingerprint: fp }) + "\n"
            : `${printable(entry.host)}  ${printable(fp)}\n`,
        );
      }
      return 0;
    }
    case "add": {
      const name = await host(target);
      if (key === undefined || rest.length > 0) {
        usageError("known-hosts", "Give HOST[:PORT] and one public line or fingerprint");
      }
      const given = isFingerprint(key.trim()) ? key.trim() : parseKeyLine(key);
      await keystore.addKnownHost(name, given);
      const fp = typeof given === "string" ? given : await fingerprint(given);
      await writeErr(`ovtp: host ${name} recorded in known_hosts: ${fp}\n`);
      return 0;
    }
    case "remove": {
      const name = await host(target);
      if (key !== undefined) usageError("known-hosts", "remove takes one HOST[:PORT]");
      const removed = await keystore.removeKnownHost(name);
      if (removed === 0) {
        throw new OvtpError("not-found", `Host ${name} is not in known_hosts`, {
          hint: "`ovtp known-hosts` lists them",
        });
      }
      await writeErr(`ovtp: removed host ${name} from known_hosts\n`);
      return 0;
    }
    default:
      usageError("known-hosts", `Unknown action "${action}": give list, add or remove`);
  }
}

function parseKeyLine(text: string) {
  try {
    return parsePublicKey(text).key;
  } catch (error) {
    usageError(
      "known-hosts",
      `Expected a public line (ovtp1 ...) or a fingerprint (SHA256:...): ${
        (error as Error).message
      }`,
    );
  }
}

/** `ovtp known-hosts`. */
export const knownHosts: Command = { usage: USAGE, run, json: true };
