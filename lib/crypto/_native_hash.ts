/**
 * The native backend's SHA-256 and HMAC-SHA-256 on OpenSSL's EVP_Digest
 * and HMAC.
 *
 * @module
 */

import {
  DIGEST_SYMBOLS,
  type DigestLib,
  type Lib,
  NativeCryptoError,
  OutLengths,
} from "./_native_lib.ts";
import { checkRunningSha256, NativeSha256 } from "./native_sha256.ts";
import type { Backend } from "./types.ts";

const ONE_BYTE = new Uint8Array(1);

/**
 * The backend's hash functions over `lib` (loaded from `path`), with
 * `sha256md`, SHA-256 as fetched once.
 */
export function nativeHashes(
  lib: Lib,
  path: string,
  sha256md: Deno.PointerObject,
): Pick<Backend, "sha256" | "sha256Pieces" | "sha256Stream" | "hmacSha256"> {
  const length = new OutLengths();
  let digestLib: DigestLib | undefined;
  return {
    sha256(data) {
      const out = new Uint8Array(32);
      if (
        lib.EVP_Digest(data, BigInt(data.length), out, length.intBytes, sha256md, null) !== 1 ||
        length.int[0] !== 32
      ) throw new NativeCryptoError("hash");
      return out;
    },
    async sha256Pieces(data, pieceSize, out) {
      const calls: Promise<number>[] = [];
      for (let i = 0, offset = 0; offset < data.length; i++, offset += pieceSize) {
        const piece = data.subarray(offset, offset + pieceSize);
        const digest = out.subarray(i * 32, i * 32 + 32);
        calls.push(lib.EVP_Digest_async(piece, BigInt(piece.length), digest, null, sha256md, null));
      }
      if ((await Promise.all(calls)).some((ok) => ok !== 1)) throw new NativeCryptoError("hash");
    },
    sha256Stream() {
      if (digestLib === undefined) {
        const bound = Deno.dlopen(path, DIGEST_SYMBOLS).symbols;
        checkRunningSha256(() => new NativeSha256(bound, sha256md));
        digestLib = bound;
      }
      return new NativeSha256(digestLib, sha256md);
    },
    hmacSha256(key, data) {
      const out = new Uint8Array(32);
      // A NULL key means "the previous key" to HMAC(): an empty key must be
      // a real (empty) buffer.
      if (key.length === 0) key = ONE_BYTE;
      if (
        lib.HMAC(
            sha256md,
            key,
            key === ONE_BYTE ? 0 : key.length,
            data,
            BigInt(data.length),
            out,
            length.intBytes,
          ) ===
          null || length.int[0] !== 32
      ) throw new NativeCryptoError("compute an HMAC");
      return out;
    },
  };
}
