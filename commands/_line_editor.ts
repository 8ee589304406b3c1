/**
 * The chat's input line on a terminal, on node:readline (built into Deno):
 * cursor movement, Home/End, deletion, history, and the wrapping of long
 * and wide (emoji, CJK) lines are readline's, not ours. Output printed
 * meanwhile appears above the line being typed without mangling it.
 *
 * @module
 */
import process from "node:process";
import readline from "node:readline";

/** Reads lines from the terminal while other output is printed above them. */
export class LineEditor {
  #rl: readline.Interface;
  /** Rows from the prompt's first row to the end of the line just entered. */
  #enteredRows = 0;

  /** Shows `prompt` before the line being typed. */
  constructor(prompt: string) {
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      prompt,
      terminal: true,
      historySize: 500,
      removeHistoryDuplicates: true,
    });
    // Ctrl-C leaves, as Ctrl-D does (readline would only pause).
    this.#rl.on("SIGINT", () => this.#rl.close());
    // Before readline handles Enter, note how many rows the whole line
    // takes, as readline itself counts them (wide characters, wrapping), to
    // erase it afterwards: the line comes back with its time, as sent.
    process.stdin.prependListener("keypress", (_text: string, key?: { name?: string }) => {
      if (key?.name !== "return" && key?.name !== "enter") return;
      const rl = this.#rl as unknown as { cursor: number; line: string };
      const cursor = rl.cursor;
      rl.cursor = rl.line.length;
      this.#enteredRows = this.#rl.getCursorPos().rows;
      rl.cursor = cursor;
    });
  }

  /** Prints `text` (one or more lines) above the line being typed. */
  print(text: string): void {
    const out = process.stdout;
    // Up to the prompt's first row, erase the input, print, draw it again.
    readline.moveCursor(out, 0, -this.#rl.getCursorPos().rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
    out.write(text.endsWith("\n") ? text : text + "\n");
    this.#redraw();
  }

  /** Shows `prompt` instead, keeping the line being typed (an offline chat says so). */
  setPrompt(prompt: string): void {
    if (this.#rl.getPrompt() === prompt) return;
    const out = process.stdout;
    readline.moveCursor(out, 0, -this.#rl.getCursorPos().rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
    this.#rl.setPrompt(prompt);
    this.#redraw();
  }

  /**
   * Erases the line being typed and gives the terminal back at once (a
   * failure ends the chat while a line is awaited: main.ts prints it next).
   */
  close(): void {
    readline.moveCursor(process.stdout, 0, -this.#rl.getCursorPos().rows);
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
    this.#rl.close();
  }

  /**
   * Draws the prompt and the line on the row the cursor is on. readline
   * would first go up as many rows as the line took when it last drew it,
   * over what was printed since: it is told the line is not on screen.
   */
  #redraw(keepCursor = true): void {
    (this.#rl as unknown as { prevRows: number }).prevRows = 0;
    this.#rl.prompt(keepCursor);
  }

  /** Yields each line entered; ends on Ctrl-D (on an empty line) or Ctrl-C. */
  async *lines(): AsyncGenerator<string> {
    this.#rl.prompt();
    try {
      for await (const line of this.#rl) {
        // readline moved below the entered line: erase it, so the prompt is
        // back where it was for whatever is printed next.
        readline.moveCursor(process.stdout, 0, -(this.#enteredRows + 1));
        readline.cursorTo(process.stdout, 0);
        readline.clearScreenDown(process.stdout);
        this.#enteredRows = 0;
        yield line;
        this.#redraw(false);
      }
    } finally {
      this.#rl.close();
      readline.cursorTo(process.stdout, 0);
      readline.clearScreenDown(process.stdout);
    }
  }
}
