/**
 * The one place ovtp's primitives are called: AEADs (Noise records, bulk
 * records, HPKE, sealed-file chunks), SHA-256, HMAC/HKDF-SHA256, X25519 and
 * Ed25519. ML-KEM-768, Argon2id and key generation stay on WebCrypto
 * (./webcrypto.ts): they are called a few times per connection or key
 * file, where speed does not matter.
 *
 * Two backends implement the same synchronous interface (./types.ts):
 * - native (./native.ts): OpenSSL 3's libcrypto through Deno FFI.
 * - portable (./portable.ts): node:crypto, always available.
 *
 * The backend is chosen once, at the first use, unless
 * {@linkcode selectCryptoBackend} chose it before: "auto" takes native when
 * `--allow-ffi` is granted, libcrypto 3 loads and it passes the
 * known-answer self-test (./self_test.ts), and portable otherwise.
 *
 * Provider per primitive, measured on the project's shared 2-core x86-64
 * machine (Deno 2.9.6, OpenSSL 3.0.19, bench/crypto.ts; native against
 * portable, same run, per call, under load from other processes):
 * - ChaCha20-Poly1305: 1 MiB 2.0 against 0.8 GB/s, 1 KiB 1.7 against
 *   6.0 us, 16 B about even (5-7 us): native, the reason it exists.
 * - AES-256-GCM: 1 MiB 2.5 against 0.1 GB/s: native.
 * - HMAC-SHA256 of 32 B (HKDF, Noise, HPKE): 4.8 against 27 us: native
 *   (one HMAC() call with SHA-256 fetched once).
 * - X25519: 68 against 93 us per DH (native keeps a derive context per
 *   private key; see native.ts): native.
 * - One-shot SHA-256 of a 64 KiB chunk: native (and sha256Pieces() runs it
 *   on other threads).
 * - Streaming SHA-256 of whole files (transfers, sealed-file transcript):
 *   the backend's own. Both do about 1.7 GB/s on 1 MiB updates (SHA-NI;
 *   bench/crypto.ts, same run); native can also hash on a
 *   blocking-task thread, which takes the hash off the transfer's one
 *   JavaScript thread.
 * - Ed25519 verify: node:crypto in both, synchronous, with the imported
 *   keys kept (./ed25519.ts): 31-73 against 82-186 us for libcrypto 3.0
 *   and about 110 us for WebCrypto. Chat verifies every post.
 * - Ed25519 sign, public keys, and the verifications a process makes a
 *   few of (a client checking its server's proof, a sealed file's
 *   signatures; the first 256 in a process): native, in libcrypto
 *   (./_native_ed25519.ts; signing is about even, a verification 118
 *   against 42 us): a client, seal or open then never loads node:crypto,
 *   whose first use costs about 20 ms of `ovtp send`'s start-up and 10 MB
 *   (../io/node_builtin.ts).
 * - ML-KEM-768, Argon2id: WebCrypto in both (a few calls per connection or
 *   key file).
 *
 * @module
 */

import { concat } from "../bytes.ts";
import { loadNative } from "./native.ts";
import { portable } from "./portable.ts";
import { selfTest } from "./self_test.ts";
import type { AeadAlgorithm, Backend, BackendName, Sha256Stream } from "./types.ts";

export type { AeadAlgorithm, Backend, BackendName, Sha256Stream } from "./types.ts";
export { NativeCryptoError } from "./_native_lib.ts";
export {
  argon2id,
  type Argon2idParams,
  generateEd25519,
  generateMlKem768,
  MLKEM768_CIPHERTEXT_SIZE,
  MLKEM768_PUBLIC_KEY_SIZE,
  mlKem768Decapsulate,
  mlKem768Encapsulate,
  type MlKemKeyPair,
} from "./webcrypto.ts";

/** What was chosen, and why. */
export interface BackendInfo {
  /** The backend in use. */
  name: BackendName;
  /** For native, the library and OpenSSL version; for portable, why not native. */
  detail: string;
}

let current: Backend | undefined;
let info: BackendInfo | undefined;

/** The choice {@linkcode selectCryptoBackend} takes. */
export type BackendChoice = BackendName | "auto";

function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

function tryNative(): { backend: Backend; detail: string } | { error: string } {
  if (!ffiGranted()) return { error: "--allow-ffi is not granted" };
  try {
    const loaded = loadNative();
    selfTest(loaded.backend);
    const v = loaded.version;
    const version = `${v >> 28n}.${(v >> 20n) & 0xffn}.${(v >> 4n) & 0xffn}`;
    return { backend: loaded.backend, detail: `OpenSSL ${version}, ${loaded.library}` };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/**
 * Chooses the backend for this process (and can change it, for tests).
 * "native" throws an Error saying why when libcrypto cannot be used;
 * "auto" never throws.
 *
 * @param choice native, portable, or auto (native when it can, else portable).
 * @returns The backend chosen, and why.
 *
 * @example Force the portable backend, then go back to the default
 * ```ts
 * import { cryptoBackendInfo, selectCryptoBackend } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * selectCryptoBackend("portable");
 * assert.equal(cryptoBackendInfo().name, "portable");
 * // Native with --allow-ffi and libcrypto 3, else portable; never throws.
 * const { name } = selectCryptoBackend("auto");
 * assert.ok(name === "native" || name === "portable");
 * ```
 */
export function selectCryptoBackend(choice: BackendChoice): BackendInfo {
  if (choice === "portable") {
    selfTest(portable);
    current = portable;
    info = { name: "portable", detail: "node:crypto, as asked" };
    return info;
  }
  const native = tryNative();
  if ("backend" in native) {
    current = native.backend;
    info = { name: "native", detail: native.detail };
  } else if (choice === "native") {
    throw new Error(`Cannot use the native crypto backend: ${native.error}`);
  } else {
    current = portable;
    info = { name: "portable", detail: `node:crypto; native unavailable: ${native.error}` };
  }
  return info;
}

/** The backend in use, chosen now ("auto") if nothing chose it yet. */
export function backend(): Backend {
  if (current === undefined) selectCryptoBackend("auto");
  return current!;
}

/** Which backend is in use, and why (chosen now if not yet). */
export function cryptoBackendInfo(): BackendInfo {
  backend();
  return info!;
}

const TAG = 16;
const EMPTY = new Uint8Array(0);

/** AEAD encryption into a fresh buffer: ciphertext || 16-byte tag. */
export function aeadSeal(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG);
  backend().aeadSealInto(algorithm, key, nonce, aad, plaintext, out);
  return out;
}

/** AEAD decryption into a fresh buffer; undefined when the tag does not verify. */
export function aeadOpen(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | undefined {
  if (sealed.length < TAG) return undefined;
  const out = new Uint8Array(sealed.length - TAG);
  return backend().aeadOpenInto(algorithm, key, nonce, aad, sealed, out) ? out : undefined;
}

/** See {@linkcode Backend.aeadSealInto}. */
export function aeadSealInto(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  out: Uint8Array,
): void {
  backend().aeadSealInto(algorithm, key, nonce, aad, plaintext, out);
}

/** See {@linkcode Backend.aeadOpenInto}. */
export function aeadOpenInto(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
  out: Uint8Array,
): boolean {
  return backend().aeadOpenInto(algorithm, key, nonce, aad, sealed, out);
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  return backend().sha256(parts.length === 1 ? parts[0] : concat(...parts));
}

/** See {@linkcode Backend.sha256Pieces}. */
export function sha256Pieces(data: Uint8Array, pieceSize: number, out: Uint8Array): Promise<void> {
  return backend().sha256Pieces(data, pieceSize, out);
}

/**
 * A running SHA-256 for large inputs (files). The backend's own: both run
 * at the same speed on one core (SHA-NI), and the native one can hash on
 * another thread (`updateAsync()`), beside the encryption and the writes.
 */
export function sha256Stream(): Sha256Stream {
  return backend().sha256Stream();
}

/** HMAC-SHA256 of the concatenation of `parts`. */
export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return backend().hmacSha256(key, parts.length === 1 ? parts[0] : concat(...parts));
}

/** HKDF-Extract (RFC 5869): an empty salt means 32 zero bytes. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return backend().hmacSha256(salt.length > 0 ? salt : ZERO_SALT, ikm);
}

const ZERO_SALT = new Uint8Array(32);

/** HKDF-Expand (RFC 5869), up to 255 * 32 bytes. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > 255 * 32) throw new RangeError("HKDF-Expand output is too long");
  const b = backend();
  const out = new Uint8Array(length);
  // T(i) = HMAC(PRK, T(i-1) || info || i), built in one reused buffer.
  const input = new Uint8Array(32 + info.length + 1);
  input.set(info, 32);
  let previous: Uint8Array = EMPTY;
  for (let i = 1, offset = 0; offset < length; i++, offset += 32) {
    input.set(previous, 0);
    input[input.length - 1] = i;
    previous = b.hmacSha256(prk, i === 1 ? input.subarray(32) : input);
    out.set(previous.subarray(0, Math.min(32, length - offset)), offset);
  }
  return out;
}

/** HKDF-SHA256 (RFC 5869): Extract, then Expand. */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return hkdfExpand(hkdfExtract(salt, ikm), info, length);
}

/** X25519(private, public); throws for an all-zero result (a low-order point). */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return backend().x25519(privateKey, publicKey);
}

/** See {@linkcode Backend.x25519Static}. */
export function x25519Static(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return backend().x25519Static(privateKey, publicKey);
}

/** The X25519 public key of a 32-byte private key. */
export function x25519PublicOf(privateKey: Uint8Array): Uint8Array {
  return backend().x25519PublicOf(privateKey);
}

/** See {@linkcode Backend.x25519Multi}. */
export function x25519Multi(
  privateKey: Uint8Array,
  peers: readonly Uint8Array[],
): { publicKey: Uint8Array; shared: Uint8Array[] } {
  return backend().x25519Multi(privateKey, peers);
}

/** See {@linkcode Backend.ed25519Sign}. */
export function ed25519Sign(seed: Uint8Array, data: Uint8Array): Uint8Array {
  return backend().ed25519Sign(seed, data);
}

/** See {@linkcode Backend.ed25519Verify}. */
export function ed25519Verify(
  publicKey: Uint8Array,
  signature: Uint8Array,
  data: Uint8Array,
): boolean {
  return backend().ed25519Verify(publicKey, signature, data);
}

/** See {@linkcode Backend.ed25519VerifyOnce}. */
export function ed25519VerifyOnce(
  publicKey: Uint8Array,
  signature: Uint8Array,
  data: Uint8Array,
): boolean {
  return backend().ed25519VerifyOnce(publicKey, signature, data);
}

/** See {@linkcode Backend.ed25519PublicOf}. */
export function ed25519PublicOf(seed: Uint8Array): Uint8Array {
  return backend().ed25519PublicOf(seed);
}

/** A fresh X25519 key pair, both halves raw (the private key from the CSPRNG). */
export function generateX25519(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const privateKey = crypto.getRandomValues(new Uint8Array(32));
  return { privateKey, publicKey: backend().x25519PublicOf(privateKey) };
}
