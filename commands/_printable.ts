/**
 * The one neutralizer for text that a peer chose (a server's messages,
 * names, file names, a client's messages) on its way to a terminal, stdout
 * or a log: nothing in it can drive the terminal (escape sequences, C1
 * controls), split a line (so forge a line of a log), or reorder what is
 * shown (bidi overrides). Every character that could is replaced by a
 * visible escape; everything else is kept as it is.
 *
 * The printable form (docs/security.md, "Peer text on terminals and in
 * logs"):
 *
 * | Character                                        | Shown as                  |
 * | ------------------------------------------------ | ------------------------- |
 * | LF, CR, TAB                                      | `\n`, `\r`, `\t`          |
 * | other C0 controls U+0000–U+001F (ESC is U+001B)  | caret: `^@` … `^[` … `^_` |
 * | DEL U+007F                                       | `^?`                      |
 * | C1 controls U+0080–U+009F                        | `\u{80}` … `\u{9f}`       |
 * | line and paragraph separators U+2028, U+2029     | `\u{2028}`, `\u{2029}`    |
 * | format characters (Unicode category Cf): bidi    | `\u{202e}`, `\u{200b}`…   |
 * | marks and overrides U+061C, U+200E, U+200F,      |                           |
 * | U+202A–U+202E, U+2066–U+2069; zero-width space,  |                           |
 * | word joiner, BOM, soft hyphen, tag characters    |                           |
 * | lone surrogates                                  | `\u{d800}` …              |
 *
 * The zero-width joiner and non-joiner (U+200D, U+200C) are kept: emoji and
 * several scripts need them, and they neither move the cursor nor reorder
 * text. The form is for reading, not for parsing back (a peer may send a
 * literal `^[`): where the exact value matters, `--json` output carries it,
 * written by {@linkcode jsonLine}.
 *
 * @module
 */

/** Options of {@linkcode printable}. */
export interface PrintableOptions {
  /**
   * Keep line feeds, CR LF line ends and tabs as they are: for a payload
   * shown on a terminal (the body of a response), never for a log line or
   * one line of line-oriented output. A lone CR is still escaped (it would
   * let text overwrite the start of its line).
   * @default false
   */
  keepLines?: boolean;
}

// Every character that may need escaping (CR LF first, as a pair); the
// callbacks keep ZWJ and ZWNJ, and line breaks where asked.
const UNSAFE = /\r\n|[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const JOINERS = new Set(["\u200c", "\u200d"]);
const LINE_BREAKS = new Set(["\n", "\r\n", "\t"]);

/**
 * Returns `text` in its printable form: one line (unless `keepLines`) that
 * a terminal shows as text, whatever `text` holds.
 *
 * @param text Text a peer chose.
 * @param options Whether line breaks are kept.
 * @returns The text with every control, separator and format character
 * replaced by its visible escape.
 *
 * @example A title-setting sequence and a forged second line
 * ```ts
 * import { printable } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(printable("hi\x1b]0;pwned\x07\nalice: ok"), "hi^[]0;pwned^G\\nalice: ok");
 * assert.equal(printable("a\u202eb\u009bc"), "a\\u{202e}b\\u{9b}c");
 * assert.equal(printable("one\ntwo\r\n", { keepLines: true }), "one\ntwo\r\n");
 * ```
 */
export function printable(text: string, options: PrintableOptions = {}): string {
  const keepLines = options.keepLines ?? false;
  return text.replace(UNSAFE, (c) => keepLines && LINE_BREAKS.has(c) ? c : escape(c));
}

function escape(c: string): string {
  if (c === "\r\n") return "\\r\\n";
  if (JOINERS.has(c)) return c;
  const named = NAMED[c];
  if (named) return named;
  const code = c.codePointAt(0)!;
  if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
  if (code === 0x7f) return "^?";
  return `\\u{${code.toString(16)}}`;
}

// What JSON.stringify leaves raw but a terminal may act on.
const UNSAFE_IN_JSON = /[\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}]/gu;

/**
 * Returns `value` as one line of JSON (without the line end) that is safe
 * on a terminal and keeps every string exactly: JSON.stringify escapes C0
 * controls and lone surrogates, and this escapes the rest of what
 * {@linkcode printable} escapes (DEL, C1, separators, format characters) as
 * `\uXXXX`, which JSON.parse reads back to the same string.
 *
 * @param value What to print.
 * @returns The JSON text.
 *
 * @example The exact value, in a form a terminal does not act on
 * ```ts
 * import { jsonLine } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * const line = jsonLine({ message: "a\x1b[2J\u009b\u202e\nb" });
 * assert.equal(line, '{"message":"a\\u001b[2J\\u009b\\u202e\\nb"}');
 * assert.equal(JSON.parse(line).message, "a\x1b[2J\u009b\u202e\nb");
 * ```
 */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    UNSAFE_IN_JSON,
    // An astral format character (a tag) is written as its surrogate pair.
    (c) => Array.from({ length: c.length }, (_, i) => `\\u${hex4(c.charCodeAt(i))}`).join(""),
  );
}

function hex4(code: number): string {
  return code.toString(16).padStart(4, "0");
}
