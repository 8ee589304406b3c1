import { isValidDisplay, type Member, ROOM_PATTERN } from "../lib/services/chat/chat_messages.ts";
import {
  type ChatEvents,
  type ChatMessage,
  ChatSession,
} from "../lib/services/chat/chat_session.ts";
import type { InviteOnlyOptions } from "../lib/services/chat/membership.ts";
import { RoomHeads } from "../lib/services/chat/room_heads.ts";
import type { OvtpClient } from "../lib/client/client.ts";
import { ReplayGuard } from "../lib/envelope/envelope.ts";
import { OvtpError } from "../lib/errors.ts";
import { fingerprint, parsePublicKey, type PublicKey } from "../lib/identity/keys.ts";
import type { Keystore } from "../lib/identity/keystore.ts";
import {
  type Command,
  openKeystore,
  readStdinLines,
  usageError,
  writeErr,
  writeOut,
} from "./_cli.ts";
import { isStdoutClosed, StdoutClosed } from "./_stdout.ts";
import { CONNECT, CONNECT_HELP, connectTo } from "./_connect.ts";
import { flag, HOME, parsed, parseOptions, text } from "./_options.ts";
import { optionsHelp } from "./_option_help.ts";
import { CHAT_HELP, type ChatInput, parseChatInput } from "./_chat_input.ts";
import { NamePins } from "./_chat_pins.ts";
import { inviteTarget, membershipLine, removeTarget, whoInviteOnly } from "./_chat_rooms.ts";
import { LineEditor } from "./_line_editor.ts";
import { RoomLink } from "./_room_link.ts";
import { jsonLine, printable } from "./_printable.ts";

const OPTIONS = {
  room: parsed({
    arg: "NAME",
    default: "lobby",
    help: "the room (letters, digits, . _ -; default: {default})",
  }, (room) => {
    if (!ROOM_PATTERN.test(room) || room.startsWith(".")) {
      throw new Error(`Invalid room name "${room}"`);
    }
    return room;
  }),
  name: text({
    arg: "DISPLAY",
    help: 'your display name (default: your key\'s comment up to its "@", else $USER)',
  }),
  json: flag({ help: "print messages and presence as JSON objects" }),
  "invite-only": flag({ help: "a room whose membership only its members can change" }),
  ...CONNECT,
  home: HOME,
};

const USAGE = `Usage: ovtp chat HOST[:PORT] [--room NAME] [--name DISPLAY] [--json]
                 [--invite-only] [--strict] [--timeout SECONDS] [--home DIR]

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

--invite-only creates (or joins) a room whose members are a list the
members sign: the creator first, then each /invite or /remove typed by a
member. Messages are sealed only to members whose signed addition this
client verified; every change is shown with its fingerprints, and a log the
server altered, rolled back or forked is refused (~/.ovtp/room_heads keeps
the newest change seen). A room joined so once is always joined so.

Options:
${optionsHelp(OPTIONS, ["room", "name", "json", "invite-only"], 20)}
${CONNECT_HELP}
`;

async function run(args: string[]): Promise<number> {
  const parsed = parseOptions(OPTIONS, args, "chat");
  const { positionals } = parsed;
  const values = parsed.values();
  if (positionals.length !== 1) usageError("chat", "Give one HOST to chat on");
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
  const screen = new ChatScreen(values.room, display, values.json, interactive);
  const pins = new NamePins(keystore, await fingerprint(identity.publicKey), screen.notice);
  await pins.trustContacts();
  const inviteOnly = await inviteOnlyOptions(keystore, client.serverKey, values, screen.notice);

  const events = chatEvents(screen, pins);
  const join = (connection: OvtpClient) =>
    ChatSession.join(connection, identity, { room: values.room, display, inviteOnly }, events);
  const joined = (session: ChatSession, how: string) => {
    pins.checkAll(session.members);
    const online = session.members.filter((m) => m.online).length;
    screen.notice(
      `${how} room ${values.room} as ${display}: ${session.members.length} member(s), ${online} online; /who lists them`,
    );
    if (isOutsider(session, pins)) {
      screen.notice(
        `you are not a member of invite-only room ${values.room} yet: ` +
          "a member must /invite your public line (ovtp id prints it)",
      );
    }
  };
  const first = await join(client);
  joined(first, "joined");
  // A person at a terminal keeps the prompt when the server goes away; a
  // script's chat ends with the error, for whatever runs it to decide.
  const link = new RoomLink(client, first, {
    connect: reconnect,
    join,
    reconnect: Deno.stdin.isTerminal(),
    status: (line) => screen.notice(`* ${line}`),
    onOffline: () => screen.editor?.setPrompt(`${display} (offline)> `),
    onRejoin(session) {
      screen.editor?.setPrompt(`${display}> `);
      joined(session, "reconnected: back in");
    },
  });
  let failed = true;
  try {
    await readLines(link, screen, pins);
    failed = false;
  } finally {
    // A failure ends the chat while a line is awaited: the terminal goes back first.
    if (failed) screen.editor?.close();
    await link.close();
    // Exiting during a check would leave chat_names' lock file behind.
    await pins.settled();
  }
  return 0;
}

/** Where chat writes: the line editor on a terminal, else stdout and stderr. */
class ChatScreen {
  readonly editor: LineEditor | undefined;
  /** Rejects once stdout is closed (`chat ... | head -1`): chat then ends quietly. */
  readonly stdoutClosed = Promise.withResolvers<never>();

  constructor(
    readonly room: string,
    readonly display: string,
    readonly json: boolean,
    interactive: boolean,
  ) {
    this.editor = interactive ? new LineEditor(`${display}> `) : undefined;
    this.stdoutClosed.promise.catch(() => {});
  }

  /** A message or event: stdout without a terminal. */
  show = (line: string): void => {
    if (this.editor) return this.editor.print(line);
    writeOut(line + "\n").catch((error) => {
      if (isStdoutClosed(error)) this.stdoutClosed.reject(new StdoutClosed());
    });
  };

  /** A status line or warning: stderr without a terminal. */
  notice = (line: string): void => {
    if (this.editor) return this.editor.print(line);
    writeErr(`ovtp: ${line}\n`).catch(() => {});
  };
}

/** What chat does with what the room sends: every line goes through the name checks first. */
function chatEvents(screen: ChatScreen, pins: NamePins): ChatEvents {
  const { room, json } = screen;
  // Envelope ids seen across reconnections: one the relay delivers again
  // (kept for us while we were away, and also sent before the cut) shows once.
  const seen = new ReplayGuard(10_000);
  return {
    onMessage(message) {
      if (!seen.remember(message.messageId)) return;
      pins.after(() => screen.show(json ? messageJson(room, message) : messageLine(message, pins)));
    },
    onPresence(event, member) {
      pins.check(member);
      if (json) {
        screen.show(jsonLine({
          event,
          time: new Date().toISOString(),
          room,
          from: member.display,
          name: member.name,
          fingerprint: member.fingerprint,
        }));
        return;
      }
      const line = `* ${clean(member.display)} ${event === "join" ? "joined" : "left"} (${
        clean(member.fingerprint)
      })`;
      screen.editor ? screen.editor.print(line) : screen.notice(line.slice(2));
    },
    onDropped(claimed, reason) {
      screen.notice(
        `warning: dropped a message claiming to come from ${clean(claimed)}: ${clean(reason)}`,
      );
    },
    onWarning(message) {
      screen.notice(`warning: ${clean(message)}`);
    },
    onMembership(change) {
      if (json) screen.show(jsonLine({ event: "membership", room, ...change }));
      else screen.notice(`${screen.editor ? "* " : ""}${membershipLine(room, change)}`);
    },
  };
}

/** Whether the room is invite-only and this key is not on its signed list. */
function isOutsider(session: ChatSession, pins: NamePins): boolean {
  return session.roomMembers !== undefined &&
    !session.roomMembers.some((m) => m.fingerprint === pins.own);
}

/** Reads typed (or piped) lines until /quit, the end of input, or a failure for good. */
async function readLines(link: RoomLink, screen: ChatScreen, pins: NamePins): Promise<void> {
  const { editor, notice } = screen;
  const input = editor ? editor.lines() : readStdinLines();
  const ended = Promise.race([link.failed, screen.stdoutClosed.promise]);
  for await (const line of raceInput(input, ended)) {
    // Slash commands exist on a terminal only: piped lines are all messages.
    const typed: ChatInput = editor ? parseChatInput(line) : { kind: "message", text: line };
    if (typed.kind === "quit") return;
    if (typed.kind === "help") {
      editor?.print(CHAT_HELP);
    } else if (typed.kind === "who") {
      const { members, roomMembers } = link.lastSession;
      editor?.print(roomMembers ? whoInviteOnly(roomMembers, members) : whoList(members));
    } else if (typed.kind === "invite" || typed.kind === "remove") {
      const session = link.session;
      if (session) await changeMembership(session, typed, notice);
      else notice(`cannot ${typed.kind}: the connection to the server is down`);
    } else if (typed.kind === "unknown") {
      notice(
        `unknown command ${clean(typed.command)} (not sent): /help lists them, //text sends /text`,
      );
    } else if (typed.text.trim()) {
      await sendTyped(link, screen, pins, typed.text);
    }
  }
}

async function sendTyped(link: RoomLink, screen: ChatScreen, pins: NamePins, text: string) {
  if (isOutsider(link.lastSession, pins)) {
    return screen.notice("not sent: you are not a member of this invite-only room");
  }
  const recipients = await sendLine(link, text);
  if (typeof recipients === "string") screen.notice(recipients);
  else if (recipients === 0) {
    screen.notice("nobody else is in this room yet: the message went to no one");
  } else screen.editor?.print(`[${clock(Date.now())}] ${screen.display}: ${clean(text)}`);
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

/**
 * What to join with when the room is invite-only: asked with --invite-only,
 * or a room this home saw as one on this server (never joined otherwise,
 * where the server could pass it off as an ordinary room).
 */
async function inviteOnlyOptions(
  keystore: Keystore,
  serverKey: PublicKey,
  values: { room: string; "invite-only": boolean },
  notice: (line: string) => void,
): Promise<InviteOnlyOptions | undefined> {
  const heads = new RoomHeads(keystore.path("roomHeads"));
  const relay = await fingerprint(serverKey);
  const seen = await heads.get(relay, values.room);
  if (!seen && !values["invite-only"]) return undefined;
  if (!values["invite-only"]) notice(`room ${values.room} is invite-only (as seen before)`);
  // One object for every join of this run: a join after a reconnection
  // checks the log against the newest head seen, not the one at start.
  const options: InviteOnlyOptions = {
    seen,
    onHead: async (head) => {
      options.seen = head;
      await heads.set(relay, values.room, head);
    },
  };
  return options;
}

/** `/invite` or `/remove`: refused here, with the reason shown, when it cannot be signed. */
async function changeMembership(
  session: ChatSession,
  typed: { kind: "invite" | "remove"; target: string },
  notice: (line: string) => void,
): Promise<void> {
  try {
    if (typed.kind === "invite") {
      const { key, name, fingerprint } = await inviteTarget(session, typed.target);
      notice(`inviting ${clean(name)} (${fingerprint})`);
      await session.invite(key, name);
    } else {
      const member = removeTarget(session, typed.target);
      notice(`removing ${clean(member.name)} (${member.fingerprint})`);
      await session.remove(parsePublicKey(member.key).key);
    }
  } catch (error) {
    if (!(error instanceof OvtpError) || error.kind !== "usage") throw error;
    notice(`cannot ${typed.kind}: ${clean(error.message)}`);
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
