import { isValidDisplay, type Member, ROOM_PATTERN } from "../lib/chat/chat_messages.ts";
import { type ChatEvents, type ChatMessage, ChatSession } from "../lib/chat/chat_session.ts";
import { ReplayGuard } from "../lib/envelope.ts";
import { fingerprint, parsePublicKey } from "../lib/keys.ts";
import type { Keystore } from "../lib/keystore.ts";
import {
  type Command,
  HOME_OPTION,
  openKeystore,
  parseFlags,
  readStdinLines,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { isStdoutClosed, StdoutClosed } from "./_stdout.ts";
import { CONNECT_HELP, CONNECT_OPTIONS, connectTo } from "./_connect.ts";
import { CHAT_HELP, type ChatInput, parseChatInput } from "./_chat_input.ts";
import { LineEditor } from "./_line_editor.ts";
import { RoomLink } from "./_room_link.ts";
import { jsonLine, printable } from "./_printable.ts";

const USAGE = `Usage: ovtp chat HOST[:PORT] [--room NAME] [--name DISPLAY] [--json]
                 [--strict] [--timeout SECONDS] [--home DIR]

Chats in a room that the server relays but cannot read: every message is
sealed for the room's other members and signed by you; members who are
offline get it when they come back.

On a terminal, incoming messages appear above the line you type, edited as
at a shell prompt (cursor keys, Home/End, Up/Down for history); /help lists
the chat commands, /who the members with their fingerprints, /quit or Ctrl-D
leaves. Any other line starting with / is refused, never sent: //text sends
/text. When the server goes away, chat on a terminal reconnects (delays
doubling up to 30 s) and joins again; lines typed meanwhile are not sent.
Without a terminal, each line of stdin is sent as a message (even one
starting with /) and each message received is printed as one line (--json:
one JSON object per line); a lost connection ends chat (exit 3).

Every fingerprint shown is computed from the key your messages are sealed
to: a member the server lists with another fingerprint is left out, with a
warning. A member whose display name was seen before with another key is
shown with a warning, as ssh warns of a changed host key (~/.ovtp/chat_names).

Options:
  --room NAME       the room (letters, digits, . _ -; default: lobby)
  --name DISPLAY    your display name (default: your key's comment up to
                    its "@", else $USER)
  --json            print messages and presence as JSON objects
${CONNECT_HELP}
  --home DIR        use DIR instead of $OVTP_HOME or ~/.ovtp
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...HOME_OPTION,
    ...CONNECT_OPTIONS,
    room: { type: "string", default: "lobby" },
    name: { type: "string" },
    json: { type: "boolean" },
  }, "chat");
  if (positionals.length !== 1) usageError("chat", "Give one HOST to chat on");
  if (!ROOM_PATTERN.test(values.room) || values.room.startsWith(".")) {
    usageError("chat", `Invalid room name "${values.room}"`);
  }
  const keystore = openKeystore(values.home);
  const display = values.name ?? await defaultDisplay(keystore);
  if (!isValidDisplay(display)) {
    usageError("chat", `Invalid display name "${display}"`);
  }
  const { client, identity, reconnect } = await connectTo(
    "chat",
    keystore,
    positionals[0],
    values,
  );
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal() && !values.json;
  const editor = interactive ? new LineEditor(`${display}> `) : undefined;
  // A closed stdout (`chat ... | head -1`) ends chat quietly, as main.ts ends other commands.
  const stdoutClosed = Promise.withResolvers<never>();
  stdoutClosed.promise.catch(() => {});
  const show = (line: string) =>
    editor ? editor.print(line) : writeOut(line + "\n").catch((error) => {
      if (isStdoutClosed(error)) stdoutClosed.reject(new StdoutClosed());
    });
  const notice = (line: string) =>
    editor ? editor.print(line) : writeErr(`ovtp: ${line}\n`).catch(() => {});
  const pins = new NamePins(keystore, await fingerprint(identity.publicKey), notice);

  // Envelope ids seen across reconnections: one the relay delivers again
  // (kept for us while we were away, and also sent before the cut) shows once.
  const seen = new ReplayGuard(10_000);
  const join = (connection: typeof client) =>
    ChatSession.join(connection, identity, { room: values.room, display }, events);
  const events: ChatEvents = {
    onMessage(message) {
      if (!seen.remember(message.messageId)) return;
      pins.after(() =>
        show(values.json ? messageJson(values.room, message) : messageLine(message, pins))
      );
    },
    onPresence(event, member) {
      pins.check(member);
      if (values.json) {
        show(jsonLine({
          event,
          time: new Date().toISOString(),
          room: values.room,
          from: member.display,
          name: member.name,
          fingerprint: member.fingerprint,
        }));
      } else {
        const line = `* ${clean(member.display)} ${event === "join" ? "joined" : "left"} (${
          clean(member.fingerprint)
        })`;
        editor ? editor.print(line) : notice(line.slice(2));
      }
    },
    onDropped(claimed, reason) {
      notice(
        `warning: dropped a message claiming to come from ${clean(claimed)}: ${clean(reason)}`,
      );
    },
    onWarning(message) {
      notice(`warning: ${clean(message)}`);
    },
  };
  const joined = (session: ChatSession, how: string) => {
    pins.checkAll(session.members);
    const online = session.members.filter((m) => m.online).length;
    notice(
      `${how} room ${values.room} as ${display}: ${session.members.length} member(s), ${online} online; /who lists them`,
    );
  };
  const first = await join(client);
  joined(first, "joined");
  // A person at a terminal keeps the prompt when the server goes away; a
  // script's chat ends with the error, for whatever runs it to decide.
  const link = new RoomLink(client, first, {
    connect: reconnect,
    join,
    reconnect: Deno.stdin.isTerminal(),
    status: (line) => notice(`* ${line}`),
    onOffline: () => editor?.setPrompt(`${display} (offline)> `),
    onRejoin(session) {
      editor?.setPrompt(`${display}> `);
      joined(session, "reconnected: back in");
    },
  });

  const input = editor ? editor.lines() : readStdinLines();
  let failed = true;
  try {
    for await (const line of raceInput(input, Promise.race([link.failed, stdoutClosed.promise]))) {
      // Slash commands exist on a terminal only: piped lines are all messages.
      const typed: ChatInput = editor ? parseChatInput(line) : { kind: "message", text: line };
      if (typed.kind === "quit") break;
      if (typed.kind === "help") {
        editor?.print(CHAT_HELP);
        continue;
      }
      if (typed.kind === "who") {
        editor?.print(whoList(link.lastSession.members));
        continue;
      }
      if (typed.kind === "unknown") {
        notice(
          `unknown command ${
            clean(typed.command)
          } (not sent): /help lists them, //text sends /text`,
        );
        continue;
      }
      const text = typed.text;
      if (!text.trim()) continue;
      const recipients = await sendLine(link, text);
      if (typeof recipients === "string") notice(recipients);
      else if (recipients === 0) {
        notice("nobody else is in this room yet: the message went to no one");
      } else if (editor) editor.print(`[${clock(Date.now())}] ${display}: ${clean(text)}`);
    }
    failed = false;
  } finally {
    // A failure ends the chat while a line is awaited: the terminal goes back first.
    if (failed) editor?.close();
    await link.close();
    // Exiting during a check would leave chat_names' lock file behind.
    await pins.settled();
  }
  return 0;
}

/**
 * Sends `text`; resolves with the number of recipients, or with why it was
 * not sent while the connection is down. Lines typed meanwhile are refused
 * rather than kept: sent minutes later, to members who may have changed,
 * they could say what the person no longer means.
 */
async function sendLine(link: RoomLink, text: string): Promise<number | string> {
  const retry = "not sent: the connection to the server is down";
  const session = link.session;
  if (!session) return `${retry}, ${link.retryText} (Up recalls the line)`;
  try {
    return await session.send(text);
  } catch (error) {
    if (!link.lost(error)) throw error;
    return `${retry} (Up recalls the line)`;
  }
}

/** Ends the input loop as soon as the chat fails for good. */
async function* raceInput(
  input: AsyncIterator<string> | AsyncIterable<string>,
  closed: Promise<never>,
) {
  const iterator = Symbol.asyncIterator in input ? input[Symbol.asyncIterator]() : input;
  while (true) {
    const next = await Promise.race([iterator.next(), closed]);
    if (next.done) return;
    yield next.value;
  }
}

/**
 * Remembers which key each display name had, and warns when it changes.
 * Checks and the messages shown after them go through one queue, so a
 * message from a member is never shown before the check of its name.
 *
 * The user's own key is never warned about (a new key of one's own is no
 * news), and is pinned first, so a member taking the user's name is the one
 * flagged. A name held by two keys in the list given on joining is
 * reported as that, not as a change from a "before" the user never saw.
 */
class NamePins {
  #keystore: Keystore;
  #warn: (line: string) => void;
  #own: string;
  #queue: Promise<void> = Promise.resolve();
  /** The key each name was seen with in this session, first come first kept. */
  #seen = new Map<string, string>();
  /** Fingerprints whose display name belongs to another key, with the flag shown. */
  readonly suspicious = new Map<string, string>();

  constructor(keystore: Keystore, ownFingerprint: string, warn: (line: string) => void) {
    this.#keystore = keystore;
    this.#own = ownFingerprint;
    this.#warn = warn;
  }

  /** Checks the members of the room as joined, the user's own entry first. */
  checkAll(members: Member[]): void {
    const own = members.filter((m) => m.fingerprint === this.#own);
    for (const member of [...own, ...members.filter((m) => m.fingerprint !== this.#own)]) {
      this.check(member, true);
    }
  }

  /** `listed`: the member comes from the list given on joining. */
  check(member: Member, listed = false): void {
    this.after(async () => {
      const pinned = await this.#keystore.pinChatName(member.display, member.fingerprint);
      if (!this.#seen.has(member.display)) this.#seen.set(member.display, member.fingerprint);
      if (!pinned || member.fingerprint === this.#own) return;
      const name = clean(member.display);
      const where = `line ${pinned.line} of ${this.#keystore.path("chatNames")}`;
      if (pinned.fingerprint === this.#own) {
        this.suspicious.set(member.fingerprint, "[name taken!]");
        this.#warn(
          `WARNING: another key, ${clean(member.fingerprint)}, uses your name "${name}": ` +
            `its messages are flagged [name taken!]`,
        );
        return;
      }
      if (listed && this.#seen.get(member.display) === pinned.fingerprint) {
        this.suspicious.set(member.fingerprint, "[name taken!]");
        this.#warn(
          `WARNING: two keys in this room use the name "${name}": ${clean(pinned.fingerprint)} ` +
            `(${where}) and ${clean(member.fingerprint)}, whose messages are flagged [name taken!]`,
        );
        return;
      }
      this.suspicious.set(member.fingerprint, "[key changed!]");
      this.#warn(
        `WARNING: "${name}" now has the key ${clean(member.fingerprint)}, not ${
          clean(pinned.fingerprint)
        } as before: it may be someone else (${where})`,
      );
    });
  }

  /** Resolves once the checks asked for so far are done. */
  settled(): Promise<void> {
    return this.#queue;
  }

  /** Runs `work` once the checks asked for so far are done. */
  after(work: () => void | Promise<void>): void {
    this.#queue = this.#queue.then(work).catch((error) =>
      this.#warn(`warning: cannot check chat names: ${clean((error as Error).message)}`)
    );
  }
}

function messageLine(message: ChatMessage, pins: NamePins): string {
  const name = clean(message.member ? message.member.display : message.fingerprint);
  const flag = pins.suspicious.has(message.fingerprint)
    ? ` ${pins.suspicious.get(message.fingerprint)}`
    : "";
  return `[${clock(message.timestamp)}] ${name}${flag}: ${clean(message.text)}`;
}

function messageJson(room: string, message: ChatMessage): string {
  return jsonLine({
    event: "message",
    time: new Date(message.timestamp).toISOString(),
    room,
    from: message.member?.display ?? null,
    name: message.member?.name ?? null,
    fingerprint: message.fingerprint,
    message: message.text,
    id: message.messageId,
  });
}

function whoList(members: Member[]): string {
  return members
    .map((m) =>
      `  ${m.online ? "●" : "○"} ${clean(m.display)} (${clean(m.name)}) ${clean(m.fingerprint)}`
    )
    .join("\n");
}

function clock(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}

/** One line of text from a peer, in the printable form (./_printable.ts). */
function clean(text: string): string {
  return printable(text);
}

async function defaultDisplay(keystore: Keystore): Promise<string> {
  try {
    const { comment } = parsePublicKey(await keystore.readPublicLine());
    if (comment) return comment.split("@")[0];
  } catch {
    // Fall back to the user name.
  }
  return Deno.env.get("USER") ?? Deno.env.get("USERNAME") ?? "me";
}

/** `ovtp chat`. */
export const chat: Command = {
  usage: USAGE,
  run,
  json: true,
};
