/**
 * The option lines of a command's help, from its option table: the flag,
 * its value's name, then the help text wrapped at a column, with the
 * default the table holds.
 *
 * @module
 */

import type { Option, OptionTable } from "./_options.ts";

/** The width the help's lines are wrapped to. */
const HELP_WIDTH = 80;

/** The help lines of one option, its text starting at `column`. */
export function optionHelp(name: string, option: Option<unknown>, column: number): string {
  const flagText = `  ${option.short ? `-${option.short}, ` : ""}--${name}`;
  const lines = [entry(`${flagText}${option.arg ? ` ${option.arg}` : ""}`, option, column)];
  if (option.also) lines.push(entry(`  --${name} ${option.also.arg}`, option.also, column));
  return lines.join("\n");
}

/** The help lines of `names`, in that order, their texts starting at `column`. */
export function optionsHelp<T extends OptionTable>(
  table: T,
  names: readonly (keyof T & string)[],
  column: number,
): string {
  return names.map((name) => optionHelp(name, table[name], column)).join("\n");
}

function entry(flagText: string, option: { help: string; shown?: string }, column: number) {
  const words = option.help.replaceAll("{default}", option.shown ?? "").split(/\s+/);
  const lines: string[] = [];
  let line = flagText.length < column ? flagText.padEnd(column) : "";
  if (!line) lines.push(flagText);
  for (const word of words) {
    if (line.trim() && line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = "";
    }
    if (!line) line = " ".repeat(column) + word;
    else line += (line.length === column ? "" : " ") + word;
  }
  lines.push(line);
  return lines.join("\n");
}
