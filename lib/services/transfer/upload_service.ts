/**
 * Uploads into the server's inbox (docs/protocol.md section 14): an Offer
 * needs the `upload` permission; the transfer's later messages go straight
 * to the receiver, one at a time, so that a slow disk slows the sender.
 *
 * @module
 */

import { encodeJson } from "../../channel/messages.ts";
import { FileMessageType } from "./file_messages.ts";
import { FileReceiver, type ReceivedFile } from "./receiver.ts";
import type { Service, SessionApi } from "../service.ts";

/** The upload service; on when the server has an inbox. */
export const uploadService: Service = {
  name: "upload",
  types: Object.values(FileMessageType),
  unsupported: "This server does not accept files",
  check: (message) => message.type === FileMessageType.Offer ? { permission: "upload" } : undefined,
  refuse: (message, refusal) => ({
    type: FileMessageType.Result,
    id: message.id,
    body: encodeJson({ status: "error", code: refusal.code, message: refusal.message }),
  }),
  open(session) {
    const { inbox } = session.options;
    if (!inbox) return undefined;
    const files = new FileReceiver(
      inbox,
      session.peer,
      session.send,
      (file) => onFile(session, file),
    );
    return {
      handle: (message) => session.working(() => files.handle(message)),
      close: () => files.close(),
    };
  },
};

// The sender already has its answer when the hook runs: a hook that throws
// is the server program's problem, logged here, not the client's.
async function onFile(session: SessionApi, file: ReceivedFile): Promise<void> {
  try {
    await session.options.onFile?.(file);
  } catch (error) {
    session.logger.warn("onFile hook failed", {
      path: file.path,
      error: (error as Error).message,
    });
  }
}
