/**
 * A hostile ovtp server for the CLI tests, built on the library's channel
 * and message layers: it completes the handshake like a real server, then
 * answers every kind of client message with {@linkcode EVIL} in each string
 * field it controls (the welcome, errors and hints, statuses, responses,
 * file results and listings, chat members, messages and refusals).
 */

import { utf8 } from "../lib/bytes.ts";
import { SecureChannel } from "../lib/channel/channel.ts";
import { ChatMessageType } from "../lib/services/chat/chat_messages.ts";
import { Connection } from "../lib/channel/connection.ts";
import { sealEnvelope } from "../lib/envelope/envelope.ts";
import {
  fingerprint,
  formatPublicKey,
  generateIdentity,
  type PublicKey,
} from "../lib/identity/keys.ts";
import { decodeJson, encodeJson, type Message, MessageType } from "../lib/channel/messages.ts";
import { DownloadMessageType } from "../lib/services/transfer/download_messages.ts";
import { FileMessageType } from "../lib/services/transfer/engine.ts";

/**
 * What the server puts in every string: an OSC window title, an OSC 52
 * clipboard write, CSI (clear screen, colour), C1 CSI and NEL, a bidi
 * override, a Unicode line separator, a CR that would overwrite the line,
 * and a newline followed by a line that imitates ovtp's own output.
 */
export const EVIL = "x\x1b]0;pwned\x07\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b[31m\u009b32m\u0085" +
  "\u202eevil\u2028\rovtp: covered\nFORGED: ovtp: error: fake";

/** The raw characters and sequences of {@linkcode EVIL} that must never be printed. */
export const RAW_PIECES = [
  "\x1b]0;",
  "\x1b]52;",
  "\x1b[2J",
  "\x1b[31m",
  "\x07",
  "\u009b",
  "\u0085",
  "\u202e",
  "\u2028",
];

/**
 * Names what `output` (a command's stdout or stderr) holds that it should
 * not: a raw piece of {@linkcode EVIL}, a CR other than in a CR LF (a
 * terminal's line end), or, unless `payloadLines` (a response body shown
 * with its lines), a line that starts with the forged text.
 */
export function findRaw(output: string, payloadLines = false): string | undefined {
  for (const piece of RAW_PIECES) if (output.includes(piece)) return JSON.stringify(piece);
  if (/\r(?!\n)/.test(output)) return "a lone CR";
  if (!payloadLines && /^FORGED/m.test(output)) return "a forged line";
  return undefined;
}

/**
 * What the hostile server does right after the handshake: a Welcome and
 * hostile answers, a hostile Error, or a Welcome announcing a 3 s idle
 * timeout and then nothing at all (a server gone dead mid-request).
 */
export type Opening = "welcome" | "error" | "silent";

/** A running hostile server. */
export interface HostileServer {
  port: number;
  target: string;
  close(): Promise<void>;
}

/** Starts a hostile server on 127.0.0.1, port 0. */
export async function startHostileServer(opening: Opening = "welcome"): Promise<HostileServer> {
  const identity = await generateIdentity();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections = new Set<Deno.Conn>();
  const done = (async () => {
    for await (const conn of listener) {
      connections.add(conn);
      serveOne(conn, identity, opening).catch(() => {}).finally(() => {
        connections.delete(conn);
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      });
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    target: `127.0.0.1:${port}`,
    async close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await done;
    },
  };
}

async function serveOne(
  conn: Deno.Conn,
  identity: Awaited<ReturnType<typeof generateIdentity>>,
  opening: Opening,
) {
  const channel = await SecureChannel.respond(conn, { identity });
  const client = channel.peer;
  const connection: Connection = new Connection(channel, {
    onMessage: (message) =>
      opening === "silent" ? undefined : answer(message, client, (m) => connection.send(m)),
  });
  const running = connection.run();
  if (opening === "error") {
    await connection.send({
      type: MessageType.Error,
      id: 0,
      body: encodeJson({ code: EVIL, message: EVIL, hint: EVIL }),
    });
  } else if (opening === "silent") {
    await connection.send({
      type: MessageType.Welcome,
      id: 0,
      body: encodeJson({ protocol: 1, software: "ovtp/0.1.0", idle_timeout: 3 }),
    });
  } else {
    await connection.send({
      type: MessageType.Welcome,
      id: 0,
      body: encodeJson({ protocol: 1, software: EVIL }),
    });
  }
  await running;
}

/** A Response body with any status bytes (the library's encoder checks them). */
function rawResponse(status: string, body: string): Uint8Array {
  const statusBytes = utf8(status);
  const bodyBytes = utf8(body);
  const out = new Uint8Array(1 + statusBytes.length + bodyBytes.length);
  out[0] = statusBytes.length;
  out.set(statusBytes, 1);
  out.set(bodyBytes, 1 + statusBytes.length);
  return out;
}

async function answer(
  message: Message,
  client: PublicKey,
  send: (message: Message) => Promise<void>,
): Promise<void> {
  const reply = (type: number, body: Uint8Array) => send({ type, id: message.id, body });
  switch (message.type) {
    case MessageType.Request: {
      // The request's text picks the status: "ok" (the default), "error",
      // "forbidden" (explained by the CLI), or one that breaks the format.
      const asked = new TextDecoder().decode(message.body).trim();
      const status = ["error", "forbidden"].includes(asked)
        ? asked
        : asked === "bad-status"
        ? EVIL
        : "ok";
      return await reply(MessageType.Response, rawResponse(status, EVIL));
    }
    case FileMessageType.Offer: {
      const { name } = decodeJson(message.body);
      if (name === "refuse") {
        return await reply(
          FileMessageType.Result,
          encodeJson({ status: "error", code: EVIL, message: EVIL }),
        );
      }
      return await reply(FileMessageType.Accept, encodeJson({ offset: 0, prefix_sha256: null }));
    }
    case FileMessageType.End: {
      const { size, sha256 } = decodeJson(message.body);
      return await reply(
        FileMessageType.Result,
        encodeJson({ status: "ok", path: EVIL, size, sha256, renamed: false }),
      );
    }
    case DownloadMessageType.List:
      return await reply(
        DownloadMessageType.ListResult,
        encodeJson({
          path: "",
          entries: [
            { name: EVIL, type: "file", size: 1, mode: 0o644 },
            { name: EVIL, type: "dir", size: 0, mode: 0o755 },
          ],
        }),
      );
    case DownloadMessageType.Get:
      return await reply(DownloadMessageType.Error, encodeJson({ code: EVIL, message: EVIL }));
    case ChatMessageType.Join:
      return await joinChat(message, client, reply);
    case ChatMessageType.Post:
      return await reply(ChatMessageType.Refused, encodeJson({ code: EVIL, message: EVIL }));
  }
}

/**
 * Answers a Join with a member whose display name and key name are EVIL
 * (its fingerprint is its key's: the lie is only in the strings), then
 * announces it, delivers a message from it whose text is EVIL, and an
 * envelope that fails to open.
 */
async function joinChat(
  message: Message,
  client: PublicKey,
  reply: (type: number, body: Uint8Array) => Promise<void>,
) {
  const { room, display } = decodeJson(message.body) as { room: string; display: string };
  const mallory = await generateIdentity();
  const member = async (key: PublicKey, name: string, shown: string) => ({
    name,
    display: shown,
    fingerprint: await fingerprint(key),
    key: formatPublicKey(key),
    online: true,
  });
  const self = await member(client, "you", display);
  const evil = await member(mallory.publicKey, EVIL, EVIL);
  await reply(ChatMessageType.Joined, encodeJson({ room, members: [self, evil] }));
  await reply(ChatMessageType.Presence, encodeJson({ event: "join", member: evil }));
  const envelope = await sealEnvelope(mallory, [client], utf8(EVIL), {
    context: `room:${room}`,
  });
  await reply(ChatMessageType.Deliver, envelope);
  // Sealed for another room: dropped, with a reason the CLI shows.
  const stray = await sealEnvelope(mallory, [client], utf8(EVIL), { context: "room:other" });
  await reply(ChatMessageType.Deliver, stray);
}
