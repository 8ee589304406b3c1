/**
 * The portable backend: node:crypto, which Deno implements on its own
 * bundled crypto code, so it works wherever Deno runs, with no library to
 * find and no `--allow-ffi`. Synchronous, unlike WebCrypto, whose per-call
 * promise and thread hops cost 35-70 us each (a handshake makes ~40 calls,
 * an envelope for 50 recipients several hundred).
 *
 * @module
 */

import type { CipherGCM, DecipherGCM, Hash, KeyObject } from "node:crypto";
import { nodeCrypto } from "../io/node_builtin.ts";
import { pkcs8, spki, X25519_OID } from "./_der.ts";
import { ed25519PublicOf, ed25519Sign, ed25519Verify } from "./ed25519.ts";
import { type Backend, lowOrder, type Sha256Stream } from "./types.ts";

const TAG = 16;

// GCM would take any nonce length; ovtp's formats all use 12 bytes, and
// both backends refuse anything else alike.
function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== 12) throw new RangeError("Wrong AEAD key or nonce length");
}

function privateKeyObject(raw: Uint8Array) {
  if (raw.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
  return nodeCrypto().createPrivateKey({
    key: pkcs8(X25519_OID, raw) as never,
    format: "der",
    type: "pkcs8",
  });
}

function publicOf(key: KeyObject): Uint8Array {
  const spki = nodeCrypto().createPublicKey(key).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

function derive(key: KeyObject, publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
  const peer = nodeCrypto().createPublicKey({
    key: spki(X25519_OID, publicKey) as never,
    format: "der",
    type: "spki",
  });
  let shared: Uint8Array;
  try {
    shared = new Uint8Array(nodeCrypto().diffieHellman({ privateKey: key, publicKey: peer }));
  } catch {
    // node:crypto refuses the all-zero result itself (a low-order point).
    throw lowOrder();
  }
  if (shared.every((b) => b === 0)) throw lowOrder();
  return shared;
}

/** node:crypto's Hash, synchronous: updateAsync() hashes before it returns. */
class NodeSha256 implements Sha256Stream {
  #hash: Hash;

  constructor(hash: Hash = nodeCrypto().createHash("sha256")) {
    this.#hash = hash;
  }

  update(data: Uint8Array): this {
    this.#hash.update(data);
    return this;
  }

  updateAsync(data: Uint8Array): Promise<void> {
    this.#hash.update(data);
    return Promise.resolve();
  }

  copy(): Sha256Stream {
    return new NodeSha256(this.#hash.copy());
  }

  digest(): Uint8Array;
  digest(encoding: "hex"): string;
  digest(encoding?: "hex"): Uint8Array | string {
    return encoding === "hex" ? this.#hash.digest("hex") : new Uint8Array(this.#hash.digest());
  }
}

/** The node:crypto backend. */
export const portable: Backend = {
  name: "portable",
  aeadSealInto(algorithm, key, nonce, aad, plaintext, out) {
    checkNonce(nonce);
    // Node's types know the GCM interface; ChaCha20-Poly1305 has the same.
    const cipher = nodeCrypto().createCipheriv(algorithm, key, nonce, {
      authTagLength: TAG,
    } as never) as unknown as CipherGCM;
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    cipher.final();
    out.set(body);
    out.set(cipher.getAuthTag(), body.length);
  },
  aeadOpenInto(algorithm, key, nonce, aad, sealed, out) {
    checkNonce(nonce);
    if (sealed.length < TAG) return false;
    const length = sealed.length - TAG;
    const decipher = nodeCrypto().createDecipheriv(algorithm, key, nonce, {
      authTagLength: TAG,
    } as never) as unknown as DecipherGCM;
    decipher.setAuthTag(sealed.slice(length));
    decipher.setAAD(aad, { plaintextLength: length });
    // update() returns unauthenticated bytes; they are copied out only
    // after final() has checked the tag.
    const body = decipher.update(sealed.subarray(0, length));
    try {
      decipher.final();
    } catch {
      return false;
    }
    out.set(body);
    return true;
  },
  sha256(data) {
    return new Uint8Array(nodeCrypto().createHash("sha256").update(data).digest());
  },
  sha256Pieces(data, pieceSize, out) {
    for (let i = 0, offset = 0; offset < data.length; i++, offset += pieceSize) {
      const piece = data.subarray(offset, offset + pieceSize);
      out.set(nodeCrypto().createHash("sha256").update(piece).digest(), i * 32);
    }
    return Promise.resolve();
  },
  sha256Stream() {
    return new NodeSha256();
  },
  hmacSha256(key, data) {
    return new Uint8Array(nodeCrypto().createHmac("sha256", key).update(data).digest());
  },
  x25519(privateKey, publicKey) {
    return derive(privateKeyObject(privateKey), publicKey);
  },
  // Importing a raw private key costs node:crypto about a tenth of the DH:
  // not worth keeping.
  x25519Static(privateKey, publicKey) {
    return derive(privateKeyObject(privateKey), publicKey);
  },
  x25519Multi(privateKey, peers) {
    const key = privateKeyObject(privateKey);
    return { publicKey: publicOf(key), shared: peers.map((peer) => derive(key, peer)) };
  },
  x25519PublicOf(privateKey) {
    return publicOf(privateKeyObject(privateKey));
  },
  ed25519Sign,
  ed25519Verify,
  ed25519VerifyOnce: ed25519Verify,
  ed25519PublicOf,
};
