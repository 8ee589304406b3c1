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

/** Runs one tmux command and returns its stdout. */
export async function tmux(...args: string[]): Promise<string> {
  const output = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" })
    .output();
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
