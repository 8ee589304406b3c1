/**
 * A relay's connection to the NATS JetStream cluster that relays of one
 * ovtp cluster share: one stream of envelopes kept for members, and
 * key-value buckets for room members, presence and rate-limit buckets.
 * What goes in is what one relay already sees (envelopes stay opaque):
 * docs/security.md says exactly what.
 *
 * The connection is made in the background and remade after a loss (with
 * growing waits), so that a relay starts, and serves requests and files,
 * while NATS cannot be reached; {@linkcode NatsCluster.state} throws an
 * OvtpError of kind "network" meanwhile, which the chat relay turns into an
 * "unavailable" refusal.
 *
 * Loaded only by `ovtp listen --cluster` (commands/listen.ts imports it
 * dynamically): a relay alone never loads the NATS client.
 *
 * @module
 */

import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DiscardPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { OvtpError } from "../errors.ts";
import type { Logger } from "../logger.ts";

/** The stream holding envelopes kept for members, one subject per member and room. */
export const QUEUE_STREAM = "OVTP_QUEUES";
/** Subjects of {@linkcode QUEUE_STREAM}: `ovtp.q.<hex(room)>.<key hash>`. */
export const QUEUE_SUBJECTS = "ovtp.q";
/** Core NATS subjects of presence: `ovtp.presence.<hex(room)>`. */
export const PRESENCE_SUBJECTS = "ovtp.presence";
/** Core subjects of envelopes one relay delivered, for the member's other relays. */
export const LIVE_SUBJECTS = "ovtp.live";

const NS_PER_MS = 1_000_000;
const DAY_MS = 24 * 3600_000;

/** How a relay reaches NATS and what it keeps there. */
export interface NatsClusterOptions {
  /** `nats://HOST:PORT` (or `tls://`) addresses of NATS servers of one cluster. */
  servers: string[];
  /** A NATS credentials file's content (a user JWT and its nkey seed). */
  creds?: Uint8Array;
  /** A user and password, or a token (as `user` alone). */
  user?: string;
  /** The password of `user`. */
  password?: string;
  /** A CA certificate file for `tls://` servers with a private CA. */
  caFile?: string;
  /** Copies JetStream keeps of each stream and bucket. @default 1 */
  replicas?: number;
  /** Envelopes kept per member per room. @default 1000 */
  maxQueued?: number;
  /** Age after which a kept envelope is dropped. @default 7 days */
  maxAgeMs?: number;
  /** Log of the relay (connection losses and returns). */
  logger: Logger;
}

/** What a connected relay uses. */
export interface ClusterState {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  rooms: KV;
  presence: KV;
  rates: KV;
}

/** One relay's connection to the cluster; see the module. */
export class NatsCluster {
  readonly #options: NatsClusterOptions;
  #state: ClusterState | undefined;
  #connected = false;
  #closed = false;
  /** Reconnection attempts since the connection was lost: the wait grows with them. */
  #reconnects = 0;
  readonly #onReady: (() => void)[] = [];

  private constructor(options: NatsClusterOptions) {
    this.#options = options;
  }

  /**
   * Starts connecting; resolves once connected or after the first attempt
   * failed (then it keeps trying in the background).
   */
  static async start(options: NatsClusterOptions): Promise<NatsCluster> {
    const cluster = new NatsCluster(options);
    await cluster.#attempt(0);
    return cluster;
  }

  /** The connection, or an OvtpError "network" while NATS cannot be reached. */
  state(): ClusterState {
    if (!this.#state || !this.#connected) {
      throw new OvtpError("network", "The chat cluster (NATS) cannot be reached now", {
        hint: "try again in a moment",
      });
    }
    return this.#state;
  }

  /** Whether NATS can be reached now. */
  get connected(): boolean {
    return this.#connected && this.#state !== undefined;
  }

  /** Calls `listener` whenever the connection is (re)made. */
  onReady(listener: () => void): void {
    this.#onReady.push(listener);
  }

  /** Closes the connection (stops reconnecting). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#state?.nc.drain().catch(() => {});
  }

  /** One try at connecting; on failure, the next after a growing wait. */
  async #attempt(failures: number): Promise<void> {
    if (this.#closed) return;
    const { logger } = this.#options;
    try {
      const nc = await connect(this.#connectOptions());
      try {
        this.#state = await setUp(nc, this.#options);
      } catch (error) {
        await nc.close().catch(() => {});
        throw error;
      }
      this.#connected = true;
      logger.info(`cluster: connected to NATS ${nc.getServer()}`);
      this.#watch(nc);
      for (const listener of this.#onReady) listener();
    } catch (error) {
      const waitMs = backoffMs(failures);
      logger.warn(
        `cluster: cannot reach NATS (${(error as Error).message}); ` +
          `chat is unavailable, retrying in ${Math.round(waitMs / 1000)} s`,
      );
      setTimeout(() => this.#attempt(failures + 1), waitMs);
    }
  }

  #connectOptions() {
    const { servers, creds, user, password, caFile } = this.#options;
    return {
      servers,
      name: "ovtp-relay",
      // A relay never hears what it published itself: a post it mirrors to
      // the other relays of a member (nats_rooms.ts) is not delivered twice.
      noEcho: true,
      // listen waits this long for the first try before it starts without NATS.
      timeout: 5_000,
      authenticator: creds ? credsAuthenticator(creds) : undefined,
      // A token is a user without a password.
      user: password !== undefined ? user : undefined,
      pass: password,
      token: password === undefined ? user : undefined,
      tls: caFile ? { caFile } : servers.some((s) => s.startsWith("tls://")) ? {} : undefined,
      maxReconnectAttempts: -1,
      // Waits grow while NATS stays away, and start again small after a return.
      reconnectDelayHandler: () => backoffMs(this.#reconnects++),
      // A dead server is noticed within 2 pings.
      pingInterval: 5_000,
      maxPingOut: 2,
    };
  }

  /** Follows the connection's status: a loss and a return are logged once each. */
  async #watch(nc: NatsConnection): Promise<void> {
    const { logger } = this.#options;
    for await (const status of nc.status()) {
      if (status.type === "disconnect" && this.#connected) {
        this.#connected = false;
        logger.warn("cluster: lost NATS; chat is unavailable until it is back (reconnecting)");
      } else if (status.type === "reconnect") {
        this.#connected = true;
        this.#reconnects = 0;
        logger.info(`cluster: reconnected to NATS ${nc.getServer()}`);
        for (const listener of this.#onReady) listener();
      }
    }
    this.#connected = false;
  }
}

/** 250 ms, doubling, at most 10 s. */
function backoffMs(failures: number): number {
  return Math.min(10_000, 250 * 2 ** Math.min(failures, 6)) * (0.8 + Math.random() * 0.4);
}

/** Creates (or finds, unchanged) the stream and the buckets. */
async function setUp(nc: NatsConnection, options: NatsClusterOptions): Promise<ClusterState> {
  const jsm = await jetstreamManager(nc);
  const replicas = options.replicas ?? 1;
  const config = {
    name: QUEUE_STREAM,
    subjects: [`${QUEUE_SUBJECTS}.>`],
    // Each envelope is removed once the relay serving its member acked it.
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_msgs_per_subject: options.maxQueued ?? 1000,
    max_age: (options.maxAgeMs ?? 7 * DAY_MS) * NS_PER_MS,
    num_replicas: replicas,
  };
  // What exists is kept as found: an operator may have made it with more
  // replicas or other bounds (docs/operations.md).
  const exists = (stream: string) => jsm.streams.info(stream).then(() => true, () => false);
  if (!(await exists(QUEUE_STREAM))) await jsm.streams.add(config);
  const kvm = new Kvm(nc);
  const bucket = async (name: string, ttl: number) =>
    await exists(`KV_${name}`)
      ? await kvm.open(name)
      : await kvm.create(name, { history: 1, ttl, replicas, storage: "file" } as never);
  return {
    nc,
    js: jetstream(nc),
    jsm,
    // Members of rooms idle 30 days go with the room, as on one relay.
    rooms: await bucket("ovtp_rooms", 30 * DAY_MS),
    // A relay killed outright leaves its presence entries: they expire.
    presence: await bucket("ovtp_presence", PRESENCE_TTL_MS),
    rates: await bucket("ovtp_rates", 2 * DAY_MS),
  };
}

/** How long a presence entry lives unless its relay renews it. */
export const PRESENCE_TTL_MS = 45_000;

/** The consumer settings of one member's queue in one room. */
export function queueConsumer(name: string, subject: string) {
  return {
    durable_name: name,
    filter_subject: subject,
    ack_policy: AckPolicy.Explicit,
    // Not acked this long after delivery (a relay killed): offered again.
    ack_wait: 10_000 * NS_PER_MS,
    max_ack_pending: 256,
    // A member gone a week loses its consumer, not what is kept for it.
    inactive_threshold: 7 * DAY_MS * NS_PER_MS,
  };
}
