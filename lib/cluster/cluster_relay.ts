/**
 * A chat relay and a rate limiter that share rooms and budgets with the
 * other relays of a cluster through NATS JetStream; see nats_cluster.ts.
 *
 * @module
 */

import { ChatRelay } from "../services/chat/relay.ts";
import type { Logger } from "../logger.ts";
import type { Limiter } from "../server/rate_limiter.ts";
import { NatsCluster, type NatsClusterOptions } from "./nats_cluster.ts";
import { NatsLimiter } from "./nats_limiter.ts";
import { NatsRooms } from "./nats_rooms.ts";

/** A relay's part of a cluster. */
export interface ClusterRelay {
  /** The chat relay (give it to serve as `chat`). */
  relay: ChatRelay;
  /** The shared limiter (give it to serve as `limiter`). */
  limiter: Limiter;
  /** Stops reading for local members and closes the NATS connection. */
  close(): Promise<void>;
}

/**
 * Connects to NATS (or starts trying to: chat is refused as unavailable
 * until it is reached) and builds the relay and the limiter on it.
 */
export async function startClusterRelay(
  options: NatsClusterOptions,
  logger: Logger,
): Promise<ClusterRelay> {
  const cluster = await NatsCluster.start(options);
  const rooms = new NatsRooms(cluster, logger);
  return {
    relay: new ChatRelay(rooms, logger, rooms),
    limiter: new NatsLimiter(cluster, logger),
    async close() {
      rooms.close();
      await cluster.close();
    },
  };
}
