import type { PublicKey } from "./keys.ts";

/** An authenticated peer, as the server knows it. */
export interface Peer {
  /** The name from authorized_keys. */
  readonly name: string;
  /** The fingerprint of its key, `SHA256:...`. */
  readonly fingerprint: string;
  /** Its public key. */
  readonly key: PublicKey;
}
