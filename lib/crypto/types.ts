/**
 * The interface every crypto backend implements: the primitives ovtp's
 * formats are built from, synchronous, on raw bytes. lib/crypto/mod.ts
 * picks the backend; nothing else in lib/ calls a primitive directly.
 *
 * @module
 */

/** The AEADs used anywhere in ovtp (Noise, bulk records, HPKE, sealed files). */
export type AeadAlgorithm = "chacha20-poly1305" | "aes-256-gcm" | "aes-128-gcm";

/** A backend's name: OpenSSL through FFI, or node:crypto. */
export type BackendName = "native" | "portable";

/** The primitives, all synchronous. */
export interface Backend {
  /** Which backend this is. */
  readonly name: BackendName;
  /**
   * Encrypts `plaintext` with a 12-byte nonce and writes the ciphertext and
   * its 16-byte tag to `out` (which may be `plaintext`'s own buffer at the
   * same offset, to encrypt in place, with 16 bytes to spare).
   */
  aeadSealInto(
    algorithm: AeadAlgorithm,
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
  ): void;
  /**
   * Checks the tag of `sealed` (ciphertext and tag) and writes the plaintext
   * to `out` (which may be `sealed` itself). Returns false, having released
   * nothing, when the tag does not verify.
   */
  aeadOpenInto(
    algorithm: AeadAlgorithm,
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
    out: Uint8Array,
  ): boolean;
  /** SHA-256 of `data`. */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * SHA-256 of each `pieceSize`-byte piece of `data` (the last may be
   * shorter), written back to back into `out`. The native backend hashes
   * on other threads, so the caller can go on meanwhile; `data` and `out`
   * must not change until the promise settles.
   */
  sha256Pieces(data: Uint8Array, pieceSize: number, out: Uint8Array): Promise<void>;
  /** A running SHA-256, for data that comes in pieces (files). */
  sha256Stream(): Sha256Stream;
  /** HMAC-SHA256. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** X25519(private, public); throws for an all-zero result (a low-order point). */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /**
   * X25519(private, public) with a long-lived private key (an identity's,
   * a server's static key), throwing like {@linkcode Backend.x25519}. The
   * native backend keeps each such key imported (the 256 most recently
   * used), so that a chat client opening post after post, or a server
   * answering handshake after handshake, imports it once. Never for an
   * ephemeral key: a kept key stays in memory until it is evicted.
   */
  x25519Static(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** The X25519 public key of a 32-byte private key. */
  x25519PublicOf(privateKey: Uint8Array): Uint8Array;
  /**
   * The public key of `privateKey` and X25519(private, peer) for each of
   * `peers`, from one imported key (HPKE Encap, for one or many recipients);
   * throws like {@linkcode Backend.x25519} if any result is all zeros.
   */
  x25519Multi(
    privateKey: Uint8Array,
    peers: readonly Uint8Array[],
  ): { publicKey: Uint8Array; shared: Uint8Array[] };
  /** The Ed25519 signature (64 bytes) of `data` by the key of a 32-byte seed. */
  ed25519Sign(seed: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * Whether `signature` is `publicKey`'s Ed25519 signature over `data`:
   * false, never an exception, for malformed keys or signatures.
   */
  ed25519Verify(publicKey: Uint8Array, signature: Uint8Array, data: Uint8Array): boolean;
  /**
   * {@linkcode ed25519Verify} for checks a process makes a few of (a client
   * checking its server's identity proof, a sealed file's two signatures):
   * the cheapest to start rather than the fastest per call. The same
   * answers.
   */
  ed25519VerifyOnce(publicKey: Uint8Array, signature: Uint8Array, data: Uint8Array): boolean;
  /** The Ed25519 public key of a 32-byte seed. */
  ed25519PublicOf(seed: Uint8Array): Uint8Array;
}

/**
 * A running SHA-256 (files sent, received and sealed). Its `update()` and
 * `digest()` mirror node:crypto's Hash for the uses ovtp has.
 */
export interface Sha256Stream {
  /** Adds `data`. */
  update(data: Uint8Array): this;
  /**
   * Adds `data` on another thread where the backend can (native), so that
   * the caller can encrypt or write the same bytes meanwhile. `data` must
   * not change, and nothing else may be called on this hash, until the
   * promise settles.
   */
  updateAsync(data: Uint8Array): Promise<void>;
  /** An independent hash holding the same state. */
  copy(): Sha256Stream;
  /** The digest; the hash cannot be used afterwards. */
  digest(): Uint8Array;
  /** The digest in lower-case hex; the hash cannot be used afterwards. */
  digest(encoding: "hex"): string;
}

/**
 * The error for an all-zero X25519 result (a low-order public key from the
 * peer): a DOMException named OperationError, as WebCrypto throws, which
 * the channel reports as invalid key material from the peer.
 */
export function lowOrder(): DOMException {
  return new DOMException(
    "X25519 produced the all-zero value (a low-order public key)",
    "OperationError",
  );
}
