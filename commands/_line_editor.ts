/**
 * A minimal line editor for a terminal in raw mode: the line being typed
 * stays at the bottom, and output printed meanwhile appears above it
 * without mangling it.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads lines from the terminal while other output is printed above them. */
export class LineEditor {
  #prompt: string;
  #buffer = "";

  /** Shows `prompt` before the line being typed. */
  constructor(prompt: string) {
    this.#prompt = prompt;
  }

  /** Prints `text` (one or more lines) above the line being typed. */
  print(text: string): void {
    // Erase the input line, print, then draw the input line again.
    this.#write(`\r\x1b[K${text.endsWith("\n") ? text : text + "\n"}`);
    this.#redraw();
  }

  /** Yields each line entered; ends on Ctrl-D (on an empty line) or Ctrl-C. */
  async *lines(): AsyncGenerator<string> {
    Deno.stdin.setRaw(true);
    this.#redraw();
    const chunk = new Uint8Array(1024);
    try {
      reading: while (true) {
        const n = await Deno.stdin.read(chunk);
        if (n === null) break;
        const text = decoder.decode(chunk.subarray(0, n));
        for (let i = 0; i < text.length; i++) {
          const c = text[i];
          if (c === "\r" || c === "\n") {
            const line = this.#buffer;
            this.#buffer = "";
            this.#write("\r\x1b[K");
            yield line;
            this.#redraw();
          } else if (c === "\x03" || (c === "\x04" && this.#buffer === "")) {
            break reading;
          } else if (c === "\x7f" || c === "\b") {
            this.#buffer = [...this.#buffer].slice(0, -1).join("");
            this.#redraw();
          } else if (c === "\x15") {
            this.#buffer = "";
            this.#redraw();
          } else if (c === "\x1b") {
            // Skip an escape sequence (arrow keys and the like): ESC [ ... letter.
            if (text[i + 1] === "[") {
              i += 2;
              while (i < text.length && !/[A-Za-z~]/.test(text[i])) i++;
            }
          } else if (c >= " ") {
            this.#buffer += c;
            this.#redraw();
          }
        }
      }
    } finally {
      this.#write("\r\x1b[K");
      Deno.stdin.setRaw(false);
    }
  }

  #redraw(): void {
    this.#write(`\r\x1b[K${this.#prompt}${this.#buffer}`);
  }

  #write(text: string): void {
    Deno.stdout.writeSync(encoder.encode(text));
  }
}
