/**
 * Chat through the server's relay (docs/protocol.md section 16): a Join
 * needs the `chat` permission for its room; Posts and Changes count against
 * the key's rate limit; the relay handles each in turn, so that a slow
 * member slows the poster down instead of filling memory.
 *
 * @module
 */

import { ChatMessageType, checkJoin } from "./chat_messages.ts";
import { decodeJson, encodeJson } from "../../channel/messages.ts";
import type { Service } from "../service.ts";

/** The chat service; on when the server has a relay. */
export const chatService: Service = {
  name: "chat",
  types: Object.values(ChatMessageType),
  unsupported: "This server does not relay chat",
  check(message) {
    switch (message.type) {
      case ChatMessageType.Join:
        return { permission: "chat", detail: () => checkJoin(decodeJson(message.body)).room };
      case ChatMessageType.Post:
      case ChatMessageType.Change:
        return {};
    }
    return undefined;
  },
  refuse: (message, refusal) => ({
    type: ChatMessageType.Refused,
    id: message.id,
    body: encodeJson({ code: refusal.code, message: refusal.message }),
  }),
  open(session) {
    const chat = session.options.chat?.connect(
      session.peer,
      session.send,
      session.options.authorize,
    );
    if (!chat) return undefined;
    return { handle: (message) => chat.handle(message), close: () => chat.close() };
  },
};
