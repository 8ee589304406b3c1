/**
 * Ed25519 in libcrypto, for the native backend: public keys, signatures,
 * and the verifications a process makes a few of (a client checking its
 * server's identity proof, a sealed file's signatures). Verifications by
 * the thousand (chat posts, a server's handshakes) stay node:crypto's
 * (./ed25519.ts): 42 against 118 us each, kept keys against a fresh
 * EVP_PKEY (both measured in one process on the project's 2-core
 * machine), and so do one-off checks past the first 256 in a process.
 * Signing is about even (libcrypto 43 us, `openssl speed ed25519`).
 * Doing these here spares a client loading node:crypto, about 20 ms of
 * `ovtp send`'s start-up and 10 MB (../io/node_builtin.ts).
 *
 * @module
 */

import { constantTimeEqual } from "../bytes.ts";
import {
  EVP_PKEY_ED25519,
  type Lib,
  NativeCryptoError,
  nonNull,
  OutLengths,
  rawPublicKey,
} from "./_native_lib.ts";
import { ed25519Verify } from "./ed25519.ts";
import type { Backend } from "./types.ts";

const KEY_LENGTH = 32;
const SIGNATURE_LENGTH = 64;
/**
 * One-off checks made in libcrypto before a process that makes more (a
 * client opening many connections) turns to node:crypto: past this many,
 * its 76 us less per check repay the about 20 ms it costs to load.
 */
const ONE_OFF_CHECKS = 256;

/** Ed25519 on `lib`. */
export function nativeEd25519(
  lib: Lib,
): Pick<Backend, "ed25519Sign" | "ed25519VerifyOnce" | "ed25519PublicOf"> {
  const out = new OutLengths();
  let oneOffChecks = 0;
  // The last key signed with stays imported: an identity signs with one
  // key for its life (chat signs every post).
  let last: { seed: Uint8Array; key: Deno.PointerObject } | undefined;

  const importSeed = (seed: Uint8Array) => {
    if (seed.length !== KEY_LENGTH) throw new RangeError("Ed25519 seeds are 32 bytes");
    return nonNull(
      lib.EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, null, seed, BigInt(KEY_LENGTH)),
      "import an Ed25519 private key",
    );
  };

  // Runs `use` with a fresh digest context (Ed25519 takes one per call).
  const withContext = <T>(use: (ctx: Deno.PointerObject) => T): T => {
    const ctx = nonNull(lib.EVP_MD_CTX_new(), "create an Ed25519 context");
    try {
      return use(ctx);
    } finally {
      lib.EVP_MD_CTX_free(ctx);
    }
  };

  return {
    ed25519PublicOf(seed) {
      const key = importSeed(seed);
      try {
        return rawPublicKey(lib, out, key, "an Ed25519 public key");
      } finally {
        lib.EVP_PKEY_free(key);
      }
    },
    ed25519Sign(seed, data) {
      if (!last || !constantTimeEqual(last.seed, seed)) {
        const key = importSeed(seed);
        if (last) lib.EVP_PKEY_free(last.key);
        last = { seed: seed.slice(), key };
      }
      const key = last.key;
      return withContext((ctx) => {
        const signature = new Uint8Array(SIGNATURE_LENGTH);
        out.size[0] = BigInt(SIGNATURE_LENGTH);
        if (
          lib.EVP_DigestSignInit(ctx, null, null, null, key) !== 1 ||
          lib.EVP_DigestSign(ctx, signature, out.sizeBytes, data, BigInt(data.length)) !== 1 ||
          out.size[0] !== BigInt(SIGNATURE_LENGTH)
        ) throw new NativeCryptoError("sign with Ed25519");
        return signature;
      });
    },
    ed25519VerifyOnce(publicKey, signature, data) {
      if (++oneOffChecks > ONE_OFF_CHECKS) return ed25519Verify(publicKey, signature, data);
      if (publicKey.length !== KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false;
      const key = lib.EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519,
        null,
        publicKey,
        BigInt(KEY_LENGTH),
      );
      // libcrypto refuses no 32 bytes here; a key that is no point fails below.
      if (key === null) return false;
      try {
        const length = BigInt(SIGNATURE_LENGTH);
        return withContext((ctx) =>
          lib.EVP_DigestVerifyInit(ctx, null, null, null, key) === 1 &&
          lib.EVP_DigestVerify(ctx, signature, length, data, BigInt(data.length)) === 1
        );
      } finally {
        lib.EVP_PKEY_free(key);
      }
    },
  };
}
