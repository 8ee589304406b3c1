/**
 * The one place that talks to WebCrypto algorithms newer than Deno's
 * TypeScript types (X25519, Ed25519, ML-KEM-768, ChaCha20-Poly1305 and
 * Argon2id). Every cast lives here, so the rest of lib/ stays typed.
 *
 * @module
 */

// deno-lint-ignore no-explicit-any
const subtle = crypto.subtle as any;

/** PKCS#8 v1 prefixes: WebCrypto imports raw private keys only this way. */
const X25519_PKCS8_PREFIX = hex("302e020100300506032b656e04220420");
const ED25519_PKCS8_PREFIX = hex("302e020100300506032b657004220420");

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
}

function withPrefix(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix);
  out.set(key, prefix.length);
  return out;
}

/** Imports a raw 32-byte X25519 private key. */
export function importX25519Private(raw: Uint8Array): Promise<CryptoKey> {
  return subtle.importKey(
    "pkcs8",
    withPrefix(X25519_PKCS8_PREFIX, raw),
    { name: "X25519" },
    false,
    ["deriveBits"],
  );
}

/** Imports a raw 32-byte X25519 public key. */
export function importX25519Public(raw: Uint8Array): Promise<CryptoKey> {
  return subtle.importKey("raw", raw, { name: "X25519" }, true, []);
}

/** Generates an X25519 key pair and returns both halves raw. */
export async function generateX25519(): Promise<
  { privateKey: Uint8Array; publicKey: Uint8Array }
> {
  const pair = await subtle.generateKey({ name: "X25519" }, true, [
    "deriveBits",
  ]);
  const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", pair.privateKey));
  const publicKey = new Uint8Array(
    await subtle.exportKey("raw", pair.publicKey),
  );
  return { privateKey: pkcs8.slice(-32), publicKey };
}

/** Derives the X25519 public key of a raw private key. */
export async function x25519PublicOf(raw: Uint8Array): Promise<Uint8Array> {
  const key = await subtle.importKey(
    "pkcs8",
    withPrefix(X25519_PKCS8_PREFIX, raw),
    { name: "X25519" },
    true,
    ["deriveBits"],
  );
  const jwk = await subtle.exportKey("jwk", key);
  return base64urlDecode(jwk.x);
}

/**
 * X25519(private, public). Throws when the result is all zeros (a low-order
 * public key), which Noise and HPKE both treat as an error.
 */
export async function x25519(
  privateKey: Uint8Array | CryptoKey,
  publicKey: Uint8Array,
): Promise<Uint8Array> {
  const priv = privateKey instanceof Uint8Array
    ? await importX25519Private(privateKey)
    : privateKey;
  const pub = await importX25519Public(publicKey);
  return new Uint8Array(
    await subtle.deriveBits({ name: "X25519", public: pub }, priv, 256),
  );
}

/** Generates an Ed25519 key pair: a 32-byte seed and the public key. */
export async function generateEd25519(): Promise<
  { privateKey: Uint8Array; publicKey: Uint8Array }
> {
  const pair = await subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]);
  const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", pair.privateKey));
  const publicKey = new Uint8Array(
    await subtle.exportKey("raw", pair.publicKey),
  );
  return { privateKey: pkcs8.slice(-32), publicKey };
}

/** Derives the Ed25519 public key of a 32-byte seed. */
export async function ed25519PublicOf(seed: Uint8Array): Promise<Uint8Array> {
  const key = await subtle.importKey(
    "pkcs8",
    withPrefix(ED25519_PKCS8_PREFIX, seed),
    { name: "Ed25519" },
    true,
    ["sign"],
  );
  const jwk = await subtle.exportKey("jwk", key);
  return base64urlDecode(jwk.x);
}

/** Signs `data` with an Ed25519 seed. */
export async function ed25519Sign(
  seed: Uint8Array,
  data: Uint8Array,
): Promise<Uint8Array> {
  const key = await subtle.importKey(
    "pkcs8",
    withPrefix(ED25519_PKCS8_PREFIX, seed),
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return new Uint8Array(await subtle.sign({ name: "Ed25519" }, key, data));
}

/** Verifies an Ed25519 signature; false for any malformed input. */
export async function ed25519Verify(
  publicKey: Uint8Array,
  signature: Uint8Array,
  data: Uint8Array,
): Promise<boolean> {
  try {
    const key = await subtle.importKey(
      "raw",
      publicKey,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return await subtle.verify({ name: "Ed25519" }, key, signature, data);
  } catch {
    return false;
  }
}

/** An ML-KEM-768 key pair as WebCrypto keys plus the encoded public key. */
export interface MlKemKeyPair {
  privateKey: CryptoKey;
  publicKey: Uint8Array;
}

/** Size in bytes of an ML-KEM-768 encapsulation key (FIPS 203). */
export const MLKEM768_PUBLIC_KEY_SIZE = 1184;
/** Size in bytes of an ML-KEM-768 ciphertext (FIPS 203). */
export const MLKEM768_CIPHERTEXT_SIZE = 1088;

/** Generates an ML-KEM-768 key pair. */
export async function generateMlKem768(): Promise<MlKemKeyPair> {
  const pair = await subtle.generateKey({ name: "ML-KEM-768" }, true, [
    "encapsulateBits",
    "decapsulateBits",
  ]);
  const publicKey = new Uint8Array(
    await subtle.exportKey("raw-public", pair.publicKey),
  );
  return { privateKey: pair.privateKey, publicKey };
}

/** Encapsulates to an encoded ML-KEM-768 public key. */
export async function mlKem768Encapsulate(
  publicKey: Uint8Array,
): Promise<{ ciphertext: Uint8Array; sharedSecret: Uint8Array }> {
  const key = await subtle.importKey(
    "raw-public",
    publicKey,
    { name: "ML-KEM-768" },
    false,
    ["encapsulateBits"],
  );
  const result = await subtle.encapsulateBits({ name: "ML-KEM-768" }, key);
  return {
    ciphertext: new Uint8Array(result.ciphertext),
    sharedSecret: new Uint8Array(result.sharedKey),
  };
}

/** Decapsulates an ML-KEM-768 ciphertext. */
export async function mlKem768Decapsulate(
  privateKey: CryptoKey,
  ciphertext: Uint8Array,
): Promise<Uint8Array> {
  return new Uint8Array(
    await subtle.decapsulateBits(
      { name: "ML-KEM-768" },
      privateKey,
      ciphertext,
    ),
  );
}

/** Argon2id parameters, as stored beside a protected key. */
export interface Argon2idParams {
  /** Memory in KiB. */
  memory: number;
  /** Number of passes. */
  passes: number;
  /** Degree of parallelism. */
  parallelism: number;
}

/** Derives `length` bytes from a passphrase with Argon2id. */
export async function argon2id(
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: Argon2idParams,
  length = 32,
): Promise<Uint8Array> {
  const key = await subtle.importKey(
    "raw-secret",
    passphrase,
    { name: "Argon2id" },
    false,
    ["deriveBits"],
  );
  return new Uint8Array(
    await subtle.deriveBits(
      { name: "Argon2id", nonce: salt, ...params },
      key,
      length * 8,
    ),
  );
}

/** HKDF-SHA256 with an arbitrary (possibly empty) salt and info. */
export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, [
    "deriveBits",
  ]);
  return new Uint8Array(
    await subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt, info },
      key,
      length * 8,
    ),
  );
}

/** SHA-256 of `data`. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

function base64urlDecode(s: string): Uint8Array {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** The AEADs HPKE (RFC 9180) names, by their ids. */
export type AeadAlgorithm = "AES-128-GCM" | "AES-256-GCM" | "ChaCha20-Poly1305";

/** One-shot AEAD encryption through WebCrypto (tag appended). */
export async function aeadSeal(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const name = algorithm === "ChaCha20-Poly1305" ? algorithm : "AES-GCM";
  const format = algorithm === "ChaCha20-Poly1305" ? "raw-secret" : "raw";
  const cryptoKey = await subtle.importKey(format, key, { name }, false, ["encrypt"]);
  return new Uint8Array(
    await subtle.encrypt({ name, iv: nonce, additionalData: aad }, cryptoKey, plaintext),
  );
}

/** One-shot AEAD decryption through WebCrypto; throws on a bad tag. */
export async function aeadOpen(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Uint8Array> {
  const name = algorithm === "ChaCha20-Poly1305" ? algorithm : "AES-GCM";
  const format = algorithm === "ChaCha20-Poly1305" ? "raw-secret" : "raw";
  const cryptoKey = await subtle.importKey(format, key, { name }, false, ["decrypt"]);
  return new Uint8Array(
    await subtle.decrypt({ name, iv: nonce, additionalData: aad }, cryptoKey, ciphertext),
  );
}
