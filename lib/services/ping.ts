/**
 * Ping (docs/protocol.md section 7.3b): answers with the server's clock, so
 * that a client can check that the server is alive and how far its clock
 * is off. Only the rate limit applies: the answer reveals nothing a key
 * could be denied.
 *
 * @module
 */

import { MessageType } from "../channel/messages.ts";
import { answer, refuseWithResponse } from "./requests.ts";
import type { Service } from "./service.ts";

/** The message type of a Ping; it is answered by a Response. */
export const PING_MESSAGE_TYPE = MessageType.Ping;

/** The ping service; a server always offers it. */
export const pingService: Service = {
  name: "ping",
  types: [PING_MESSAGE_TYPE],
  concurrent: true,
  check: () => ({}),
  refuse: refuseWithResponse,
  open: (session) => ({
    handle: (message) => answer(session, message.id, () => ({ response: String(Date.now()) })),
  }),
};
