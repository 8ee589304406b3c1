/**
 * Plain requests (docs/protocol.md section 7.3): each one goes to the
 * server's request handler, and its reply back as a Response (section
 * 7.4). The other services answered by a Response (calls, ping) use the
 * helpers here.
 *
 * @module
 */

import { utf8 } from "../bytes.ts";
import { encodeResponse, type Message, MessageType } from "../channel/messages.ts";
import type { Reply } from "../server/types.ts";
import type { Refusal, Service, SessionApi } from "./service.ts";

/** The request service; a server always offers it. */
export const requestService: Service = {
  name: "request",
  types: [MessageType.Request],
  concurrent: true,
  check: () => ({ permission: "message" }),
  refuse: refuseWithResponse,
  open: (session) => ({
    handle: (message) =>
      answer(session, message.id, () =>
        session.options.handler({
          requestId: message.id,
          body: message.body,
          peer: session.peer,
          signal: session.signal,
        })),
  }),
};

/** The Response (docs/protocol.md section 7.4) carrying `reply` for request `id`. */
export function responseMessage(id: number, reply: Reply): Message {
  const response = typeof reply.response === "string"
    ? utf8(reply.response)
    : reply.response ?? new Uint8Array(0);
  return {
    type: MessageType.Response,
    id,
    body: encodeResponse({ status: reply.status ?? "ok", response }),
  };
}

/** A refusal as a Response: its code is the status, its message the response. */
export function refuseWithResponse(message: Message, refusal: Refusal): Message {
  return responseMessage(message.id, { status: refusal.code, response: refusal.message });
}

/**
 * Runs a handler and sends its reply. A handler that throws is answered
 * `error` (its message stays in the server's log, not sent to the client);
 * a reply that cannot be sent is dropped with the connection it was for.
 */
export async function answer(
  session: SessionApi,
  id: number,
  run: () => Reply | Promise<Reply>,
): Promise<void> {
  let reply: Reply;
  try {
    reply = await run();
  } catch (error) {
    session.logger.warn(`handler failed: ${(error as Error).message}`, {
      remote: session.remote,
      name: session.peer.name,
    });
    reply = { status: "error", response: "The server failed to handle the request" };
  }
  await session.send(responseMessage(id, reply)).catch(() => {});
}
