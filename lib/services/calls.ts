/**
 * Calls of named functions (docs/protocol.md section 7.3a): the call is
 * decoded before its permission is checked (`allow` may name the function),
 * then handed to the function of that name, if the server has one.
 *
 * @module
 */

import { CALL_MESSAGE_TYPE, type CallBody, decodeCall } from "./function_call.ts";
import type { Message } from "../channel/messages.ts";
import { answer, refuseWithResponse, responseMessage } from "./requests.ts";
import type { Check, Service, SessionApi } from "./service.ts";

/** The call service; a server always offers it (with no functions by default). */
export const callService: Service = {
  name: "call",
  types: [CALL_MESSAGE_TYPE],
  concurrent: true,
  check(message) {
    try {
      const call = decodeCall(message.body);
      return { permission: "call", detail: call.function, decoded: call };
    } catch (error) {
      return { refused: { code: "error", message: (error as Error).message } };
    }
  },
  refuse: refuseWithResponse,
  open: (session) => ({ handle: (message, check) => callFunction(session, message, check!) }),
};

async function callFunction(session: SessionApi, message: Message, check: Check): Promise<void> {
  const call = check.decoded as CallBody;
  const functions = session.options.functions ?? {};
  const handler = Object.hasOwn(functions, call.function) ? functions[call.function] : undefined;
  if (!handler) {
    const known = Object.keys(functions).sort();
    return await session.send(responseMessage(message.id, {
      status: "unknown-function",
      response: `Unknown function "${call.function}"; known: ${
        known.length ? known.join(", ") : "none"
      }`,
    })).catch(() => {});
  }
  await answer(session, message.id, () =>
    handler({
      requestId: message.id,
      body: call.message,
      peer: session.peer,
      name: call.function,
      params: call.params,
      signal: session.signal,
    }));
}
