/**
 * The server's services, one line each. Adding a service is a new file in
 * this folder that exports a {@linkcode Service} (see service.ts and ping.ts)
 * and its line here. The server session builds its table of message types
 * from whatever this module exports (lib/server/session.ts), and
 * `deno check` refuses an export that is not a Service.
 *
 * @module
 */

export { requestService } from "./requests.ts";
export { callService } from "./calls.ts";
export { uploadService } from "./transfer/receiver.ts";
export { downloadService } from "./transfer/download_provider.ts";
export { chatService } from "./chat/service.ts";
export { pingService } from "./ping.ts";
