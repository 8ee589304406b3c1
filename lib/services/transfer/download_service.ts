/**
 * Downloads from the server's served folder (Get and List): each needs the
 * `download` permission, then streams in the background while reading goes
 * on. The server's own download messages are not registered, so a client
 * that sends one is a protocol error.
 *
 * @module
 */

import { encodeJson } from "../../channel/messages.ts";
import { DownloadMessageType } from "./download_messages.ts";
import { DownloadProvider } from "./download_provider.ts";
import type { Service } from "../service.ts";

/** The download service; on when the server serves a folder. */
export const downloadService: Service = {
  name: "download",
  types: [DownloadMessageType.Get, DownloadMessageType.List],
  unsupported: "This server serves no files",
  check: () => ({ permission: "download" }),
  refuse: (message, refusal) => ({
    type: DownloadMessageType.Error,
    id: message.id,
    body: encodeJson({ code: refusal.code, message: refusal.message }),
  }),
  open(session) {
    const { served } = session.options;
    if (!served) return undefined;
    const downloads = new DownloadProvider(served, session.send);
    return {
      handle(message) {
        session.working(() => downloads.handle(message)).catch((error) => {
          session.logger.warn(`download failed: ${(error as Error).message}`, {
            remote: session.remote,
            name: session.peer.name,
          });
        });
      },
      close: () => downloads.close(),
    };
  },
};
