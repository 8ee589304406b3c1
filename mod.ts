/**
 * ovtp: end-to-end encrypted messages between machines that know each
 * other's keys. This module is the library under the `ovtp` CLI.
 *
 * @example Answer messages
 * ```ts ignore
 * import { authorizedKeysAuthorizer, Keystore, serve } from "./mod.ts";
 *
 * const keystore = new Keystore(`${Deno.env.get("HOME")}/.ovtp`);
 * const identity = await keystore.loadIdentity(() => Promise.resolve(""));
 * serve({
 *   identity,
 *   authorize: authorizedKeysAuthorizer(keystore),
 *   handler: (request) => ({ status: "ok", response: `got ${request.body.length} bytes` }),
 * });
 * ```
 *
 * @module
 */

export * from "./lib/errors.ts";
export { concat, constantTimeEqual, fromHex, toHex } from "./lib/bytes.ts";
export * from "./lib/keys.ts";
export * from "./lib/keystore.ts";
export * from "./lib/authorized_keys.ts";
export * from "./lib/known_hosts.ts";
export * from "./lib/authorizer.ts";
export * from "./lib/host_trust.ts";
export * from "./lib/logger.ts";
export * from "./lib/peer.ts";
export * from "./lib/channel.ts";
export * from "./lib/connection.ts";
export * from "./lib/framing.ts";
export * from "./lib/messages.ts";
export * from "./lib/server.ts";
export * from "./lib/client.ts";
export { VERSION } from "./lib/version.ts";
export * from "./lib/exec_handler.ts";
export * from "./lib/transfer/file_messages.ts";
export * from "./lib/transfer/safe_name.ts";
export * from "./lib/transfer/inbox.ts";
export * from "./lib/transfer/receiver.ts";
export * from "./lib/transfer/sources.ts";
export * from "./lib/transfer/sender.ts";
export * from "./lib/hpke.ts";
export * from "./lib/envelope.ts";
export * from "./lib/chat/chat_messages.ts";
export * from "./lib/chat/room_store.ts";
export * from "./lib/chat/relay.ts";
export * from "./lib/chat/chat_session.ts";
export * from "./lib/key_options.ts";
export * from "./lib/rate_limiter.ts";
export * from "./lib/function_call.ts";
export * from "./lib/transfer/download_messages.ts";
export * from "./lib/transfer/served_folder.ts";
export * from "./lib/transfer/download_provider.ts";
export * from "./lib/transfer/fetcher.ts";
export * from "./lib/sealed/mod.ts";
