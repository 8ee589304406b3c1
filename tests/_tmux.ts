/**
 * Driving the CLI as a person would: a command in a tmux pane, keys typed
 * with send-keys, the screen read with capture-pane.
 */

/** Whether tmux can run here (POSIX only: the pane runs an sh command line). */
export const HAS_TMUX: boolean = Deno.build.os !== "windows" && tmuxAvailable();
if (!HAS_TMUX) {
  console.log(
    Deno.build.os === "windows"
      ? "tests/_tmux.ts: tmux and its sh command line are POSIX only: the terminal tests are skipped"
      : "tests/_tmux.ts: tmux is not installed (.ci/run installs it): the terminal tests are skipped",
  );
}

function tmuxAvailable(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * This test module's own tmux server, on a socket of its own and with no
 * user config. With --parallel, test files used to share the default server:
 * one file killing its last session made that server exit while another
 * file's new-session was connecting to it ("server exited unexpectedly", a CI
 * failure of stop 23). `exit-empty off` keeps the server up between the
 * sessions of one file too, since a session killed then made a new one raced
 * the same way; the server and its socket go when the module unloads.
 */
const SOCKET = `ovtp-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
let serverStarted: Promise<unknown> | undefined;

function tmuxCommand(args: string[]): Deno.Command {
  return new Deno.Command("tmux", {
    args: ["-L", SOCKET, "-f", "/dev/null", ...args],
    stdout: "piped",
    stderr: "piped",
  });
}

function startServer(): Promise<unknown> {
  globalThis.addEventListener("unload", () => {
    // tmux leaves its socket file behind when killed: ask where it is first.
    const asked = tmuxCommand(["display-message", "-p", "#{socket_path}"]).outputSync();
    tmuxCommand(["kill-server"]).outputSync();
    const path = new TextDecoder().decode(asked.stdout).trim();
    if (asked.success && path.endsWith(SOCKET)) Deno.removeSync(path);
  });
  return tmuxCommand(["start-server", ";", "set-option", "-g", "exit-empty", "off"]).output();
}

/** Runs one tmux command and returns its stdout. */
export async function tmux(...args: string[]): Promise<string> {
  await (serverStarted ??= startServer());
  const output = await tmuxCommand(args).output();
  if (!output.success) {
    throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** Waits until the pane of `session` shows `pattern`, and returns the screen. */
export async function screenShows(session: string, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 15_000;
  while (true) {
    const screen = await tmux("capture-pane", "-p", "-t", session);
    if (pattern.test(screen)) return screen;
    if (Date.now() > deadline) throw new Error(`The screen never showed ${pattern}:\n${screen}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A tmux session name of its own for one test. */
export function sessionName(): string {
  return `ovtp-test-${crypto.randomUUID().slice(0, 8)}`;
}

/** What a child process writes to `stream`, gathered as it comes. */
export function gather(stream: ReadableStream<Uint8Array>): {
  text: () => string;
  shows: (pattern: RegExp) => Promise<void>;
  done: Promise<void>;
} {
  let text = "";
  const done = stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        text += chunk;
      },
    }),
  ).catch(() => {});
  return {
    text: () => text,
    /** Waits until `pattern` was written: a message relayed is not yet delivered. */
    async shows(pattern: RegExp) {
      const deadline = Date.now() + 15_000;
      while (!pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`The output never showed ${pattern}:\n${text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    done,
  };
}
