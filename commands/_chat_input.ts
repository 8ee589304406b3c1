/**
 * What a line typed at the chat prompt means: a message, or one of the
 * chat's own commands. A typo like `/qiut` must never reach the room, so
 * every other line starting with `/` is refused here; `//text` sends
 * `/text`.
 *
 * @module
 */

/** The commands understood at the chat prompt, as `/help` lists them. */
export const CHAT_HELP = `Chat commands:
  /help       this list
  /who        the members, online (●) or not (○), with their fingerprints
  /quit       leave the room (Ctrl-D on an empty line does too)
  /invite NAME|LINE   in an invite-only room: add a member, by the display
              name of someone in the room or by their public line (ovtp id)
  /remove NAME|FINGERPRINT   in an invite-only room: remove a member
  //text      send "/text" (a message starting with / needs one more /)
Keys: Left/Right, Home/End (Ctrl-A/Ctrl-E), Backspace/Delete, Ctrl-U,
Ctrl-W, Up/Down for the lines typed before.`;

/** A typed line: a message to send, a command, or an unknown command. */
export type ChatInput =
  | { kind: "message"; text: string }
  | { kind: "help" }
  | { kind: "who" }
  | { kind: "quit" }
  | { kind: "invite"; target: string }
  | { kind: "remove"; target: string }
  | { kind: "unknown"; command: string };

/** Reads one line typed at the prompt (never used for stdin that is not a terminal). */
export function parseChatInput(line: string): ChatInput {
  if (line.startsWith("//")) return { kind: "message", text: line.slice(1) };
  if (!line.startsWith("/")) return { kind: "message", text: line };
  const command = line.trim();
  if (command === "/help" || command === "/?") return { kind: "help" };
  if (command === "/who") return { kind: "who" };
  if (command === "/quit" || command === "/exit") return { kind: "quit" };
  const [, verb, target] = command.match(/^\/(invite|remove)\s+(.+)$/) ?? [];
  if (verb === "invite" || verb === "remove") return { kind: verb, target };
  return { kind: "unknown", command: command.split(/\s/, 1)[0] };
}
