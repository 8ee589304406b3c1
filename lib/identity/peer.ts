import type { PublicKey } from "./keys.ts";

/**
 * An authenticated peer, as the server knows it: a request handler finds it
 * in `request.peer`.
 *
 * @example Answer by the sender's name
 * ```ts
 * import {
 *   fingerprint,
 *   generateIdentity,
 *   OvtpClient,
 *   type Peer,
 *   responseText,
 *   serve,
 * } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: ({ peer }: { peer: Peer }) => ({ response: `${peer.name} ${peer.fingerprint}` }),
 * });
 * const alice = await generateIdentity();
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: alice,
 * });
 * const answer = responseText(await client.request("who am I?"));
 * client.close();
 * await server.close();
 * assert.equal(answer, `alice ${await fingerprint(alice.publicKey)}`);
 * ```
 */
export interface Peer {
  /** The name from authorized_keys. */
  readonly name: string;
  /** The fingerprint of its key, `SHA256:...`. */
  readonly fingerprint: string;
  /** Its public key. */
  readonly key: PublicKey;
}
