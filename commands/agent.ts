import { isAbsolute, join, resolve } from "node:path";
import { stopAgent } from "../lib/agent/client.ts";
import { serveAgent } from "../lib/agent/server.ts";
import { OvtpError } from "../lib/errors.ts";
import { fingerprint } from "../lib/identity/keys.ts";
import { type Command, openKeystore, usageError, writeErr, writeOut } from "./_cli.ts";
import { formatDuration, parseDuration } from "./_duration.ts";
import { optionsHelp } from "./_option_help.ts";
import { flag, HOME, IDENTITY, parsed, parseOptions, text } from "./_options.ts";
import { unlock } from "./_identity.ts";

/** setTimeout's limit is 24.8 days. */
const MAX_LIFETIME_MS = 24 * 86_400_000;
const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

const OPTIONS = {
  lifetime: parsed(
    {
      arg: "DURATION",
      default: 3_600_000,
      help: "how long to hold the key: seconds, or with s, m, h, d (default: {default}, " +
        `at most ${formatDuration(MAX_LIFETIME_MS)})`,
    },
    (text, flag) => parseDuration(text, flag, "agent", MAX_LIFETIME_MS),
    formatDuration,
  ),
  socket: text({
    arg: "PATH",
    help: "where to listen (default: see above); with --stop, the agent to stop " +
      "(default: $OVTP_AGENT)",
  }),
  identity: { ...IDENTITY, help: "hold this key file instead of id_ovtp" },
  stop: flag({ help: "stop a running agent" }),
  home: HOME,
};

const USAGE = `Usage: ovtp agent [--lifetime DURATION] [--socket PATH] [-i FILE] [--home DIR]
       ovtp agent --stop [--socket PATH]

Asks for your key's passphrase once, then holds the decrypted key for
DURATION and gives it to ovtp commands that find the agent through
$OVTP_AGENT, so that they do not ask. It prints the line that sets
OVTP_AGENT, as ssh-agent does, and runs in the foreground until the
lifetime ends, \`ovtp agent --stop\`, Ctrl-C or SIGTERM: it then wipes the
key and removes its socket, and commands ask for the passphrase again.

The socket is a 0600 Unix socket, by default in a new 0700 folder under
$XDG_RUNTIME_DIR (else the temporary folder), or $OVTP_AGENT when it is
set. Anyone who can open it gets your key while the agent runs.

  export OVTP_AGENT=~/.ovtp/agent.sock   # once, in ~/.profile
  ovtp agent --lifetime 8h               # passphrase, then Ctrl-Z and \`bg\`,
                                         # or leave it in its own terminal

Options:
${optionsHelp(OPTIONS, ["lifetime", "socket", "identity", "stop", "home"], 23)}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "agent");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length > 0) usageError("agent", `Unexpected argument "${positionals[0]}"`);
  if (Deno.build.os === "windows") {
    throw new OvtpError("usage", "ovtp agent needs Unix sockets, which this system lacks");
  }
  const fromEnv = Deno.env.get("OVTP_AGENT") || undefined;
  if (values.stop) {
    const socket = values.socket ?? fromEnv;
    if (!socket) usageError("agent", "Which agent? Give --socket PATH or set OVTP_AGENT");
    await stopAgent(socket);
    await writeErr(`ovtp: stopped the agent at ${socket}\n`);
    return 0;
  }
  const lifetimeMs = values.lifetime;
  const unlocked = await unlock(openKeystore(values.home), { file: values.identity });
  if (!unlocked.sealed) {
    throw new OvtpError("key", `"${unlocked.path}" has no passphrase: an agent is not needed`, {
      hint: "commands read a key without a passphrase without asking",
    });
  }
  const place = await socketPlace(values.socket ?? fromEnv);
  const agent = await serveAgent({ socket: place.socket, unlocked, lifetimeMs });
  // The agent keeps its own copy; this one is no longer needed.
  unlocked.identity.x25519Private.fill(0);
  unlocked.identity.ed25519Private.fill(0);
  for (const signal of SIGNALS) Deno.addSignalListener(signal, agent.stop);
  const until = new Date(Date.now() + lifetimeMs).toISOString();
  await writeOut(`OVTP_AGENT=${shellQuote(place.socket)}; export OVTP_AGENT;\n`);
  await writeErr(
    `ovtp: agent holding ${await fingerprint(unlocked.identity.publicKey)} until ${until}; ` +
      `stop it with \`ovtp agent --stop\` or Ctrl-C\n`,
  );
  try {
    await agent.stopped;
  } finally {
    for (const signal of SIGNALS) Deno.removeSignalListener(signal, agent.stop);
    if (place.folder) await Deno.remove(place.folder, { recursive: true }).catch(() => {});
  }
  return 0;
}

/**
 * The socket's path: the one given (its folder made 0700 if it is new), or
 * a new 0700 folder of its own (removed when the agent stops).
 */
async function socketPlace(
  given: string | undefined,
): Promise<{ socket: string; folder?: string }> {
  if (given) {
    const socket = isAbsolute(given) ? given : resolve(given);
    await Deno.mkdir(join(socket, ".."), { recursive: true, mode: 0o700 });
    return { socket };
  }
  const base = Deno.env.get("XDG_RUNTIME_DIR") || undefined;
  const folder = await Deno.makeTempDir({ dir: base, prefix: "ovtp-agent-" });
  await Deno.chmod(folder, 0o700);
  return { socket: join(folder, "agent.sock"), folder };
}

/** `text` in single quotes for sh, as ssh-agent's output is eval'ed. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** `ovtp agent`. */
export const agent: Command = { usage: USAGE, run };
