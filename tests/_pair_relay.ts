/**
 * A man in the middle of a pairing, built on the library: it accepts the
 * client's pairing connection with its own identity, opens its own pairing
 * connection to the real server, and relays every pairing record between
 * the two as it is. Both Noise sessions succeed (each with the relay), so
 * only the PAKE's binding to each connection's handshake hash and keys can
 * stop it.
 */

import { type ByteStream, SecureChannel } from "../lib/channel/channel.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import { PAIR_INTENT } from "../lib/pair/wire.ts";

/** A running relay. */
export interface PairRelay {
  /** `127.0.0.1:PORT`, to give `ovtp pair`. */
  target: string;
  /** Records relayed in each direction so far. */
  relayed: { toServer: number; toClient: number };
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Starts a relay in front of the server at `port`. */
export async function startPairRelay(port: number): Promise<PairRelay> {
  const identity = await generateIdentity();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<ByteStream>();
  const relayed = { toServer: 0, toClient: 0 };
  const pump = async (from: SecureChannel, to: SecureChannel, count: "toServer" | "toClient") => {
    try {
      for (let record = await from.receive(); record; record = await from.receive()) {
        await to.send(record);
        relayed[count]++;
      }
    } catch {
      // Either side gave up: so does the relay.
    }
    from.close();
    to.close();
  };
  const serveOne = async (client: Deno.Conn) => {
    open.add(client);
    const server = await Deno.connect({ hostname: "127.0.0.1", port });
    open.add(server);
    try {
      const [toClient, toServer] = await Promise.all([
        SecureChannel.respond(client, { identity }),
        SecureChannel.initiate(server, { identity, intent: PAIR_INTENT }),
      ]);
      await Promise.all([
        pump(toClient, toServer, "toServer"),
        pump(toServer, toClient, "toClient"),
      ]);
    } catch {
      client.close();
      server.close();
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) serveOne(conn).catch(() => {});
  })().catch(() => {});
  return {
    target: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    relayed,
    async close() {
      listener.close();
      await accepting;
      for (const stream of open) {
        try {
          stream.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}
