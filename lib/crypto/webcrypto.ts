/**
 * The primitives that stay on WebCrypto in both backends: Ed25519 key
 * generation, ML-KEM-768 and Argon2id, each called a few times per connection, key file
 * or message, where a native call would not pay. They are newer than
 * Deno's TypeScript types: every cast lives here. Only lib/crypto/mod.ts
 * imports this file; the rest of lib/ imports lib/crypto/mod.ts.
 *
 * @module
 */

// deno-lint-ignore no-explicit-any
const subtle = crypto.subtle as any;

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
