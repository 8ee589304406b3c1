/**
 * `ovtp chat` as a child process with piped streams: lines written to its
 * stdin are messages, and what it prints is gathered as it comes.
 */
import { CLI_ENV, MAIN } from "./_cli.ts";
import { gather } from "./_tmux.ts";

/** A running piped chat. */
export interface ChatChild {
  /** What it printed on stdout and stderr so far, with waits for a pattern. */
  out: ReturnType<typeof gather>;
  err: ReturnType<typeof gather>;
  /** Sends one line (a message). */
  say(line: string): Promise<void>;
  /** Closes stdin (the chat leaves) and resolves with the exit code. */
  stop(): Promise<number>;
}

/** Starts `ovtp chat TARGET ARGS...` in `home`. */
export function chatChild(home: string, target: string, args: string[]): ChatChild {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, "chat", target, ...args],
    env: { ...CLI_ENV, OVTP_HOME: home, HOME: `${home}.user` },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const out = gather(child.stdout);
  const err = gather(child.stderr);
  return {
    out,
    err,
    say: (line) => writer.write(new TextEncoder().encode(line + "\n")),
    async stop() {
      await writer.close().catch(() => {});
      const { code } = await child.status;
      await Promise.all([out.done, err.done]);
      return code;
    },
  };
}
