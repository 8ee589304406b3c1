/**
 * The native backend: OpenSSL 3's libcrypto through Deno FFI (needs
 * `--allow-ffi`). Only lib/crypto/mod.ts loads it, and only uses it
 * after the known-answer self-test in lib/crypto/self_test.ts has passed.
 *
 * Every call checks OpenSSL's return value and throws on failure: a native
 * call that fails is an error, never a silent fallback that could send
 * plaintext. An authentication failure on open is the one expected failure
 * and is reported as `false`.
 *
 * @module
 */

import { nativeAead } from "./_native_aead.ts";
import { nativeHashes } from "./_native_hash.ts";
import { type Lib, nonNull, SYMBOLS } from "./_native_lib.ts";
import { nativeX25519 } from "./_native_x25519.ts";
import { nativeEd25519 } from "./_native_ed25519.ts";
import { ed25519Verify } from "./ed25519.ts";
import type { Backend } from "./types.ts";

export { type DigestLib, NativeCryptoError } from "./_native_lib.ts";

/**
 * Where libcrypto 3 is looked for, in order. On macOS only Homebrew's and
 * MacPorts' versioned libraries: the unversioned system
 * /usr/lib/libcrypto.dylib aborts the process when it is loaded.
 */
export function libraryCandidates(os: typeof Deno.build.os = Deno.build.os): string[] {
  switch (os) {
    case "darwin":
      return [
        "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
        "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
        "/opt/local/lib/libcrypto.3.dylib",
      ];
    case "windows":
      return [
        "libcrypto-3-x64.dll",
        "libcrypto-3-arm64.dll",
        "C:\\Program Files\\OpenSSL-Win64\\bin\\libcrypto-3-x64.dll",
        "C:\\Program Files\\OpenSSL\\bin\\libcrypto-3-x64.dll",
        "C:\\Program Files\\Git\\mingw64\\bin\\libcrypto-3-x64.dll",
      ];
    default:
      return [
        "libcrypto.so.3",
        "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
        "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
        "/usr/lib64/libcrypto.so.3",
        "/usr/lib/libcrypto.so.3",
        "/usr/local/lib/libcrypto.so.3",
        "/usr/local/lib64/libcrypto.so.3",
      ];
  }
}

/** The loaded library and where it was found. */
export interface NativeLoad {
  /** The backend. */
  backend: Backend;
  /** The path or name it was loaded from. */
  library: string;
  /** OpenSSL's version number, e.g. 0x30000130. */
  version: bigint;
}

/**
 * Opens libcrypto 3 from the first candidate that loads and exports every
 * symbol. Throws an Error naming what was tried when none does.
 */
export function loadNative(candidates: string[] = libraryCandidates()): NativeLoad {
  const reasons: string[] = [];
  for (const path of candidates) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (error) {
      reasons.push(`${path}: ${(error as Error).message.split("\n")[0]}`);
      continue;
    }
    const version = BigInt(lib.symbols.OpenSSL_version_num());
    // 0xMNN00PP0L: major 3 or later.
    if (version < 0x30000000n) {
      lib.close();
      reasons.push(`${path}: OpenSSL ${version.toString(16)} is older than 3.0`);
      continue;
    }
    return { backend: makeBackend(lib.symbols, path), library: path, version };
  }
  throw new Error(`no usable libcrypto 3 (${reasons.join("; ")})`);
}

function makeBackend(lib: Lib, path: string): Backend {
  // Fetched once: EVP_sha256() would make every HMAC() and EVP_Digest()
  // look the algorithm up again (about 3 us a call in OpenSSL 3.0).
  const sha256md = nonNull(
    lib.EVP_MD_fetch(null, new TextEncoder().encode("SHA256\0"), null),
    "load SHA-256",
  );
  return {
    name: "native",
    ...nativeAead(lib),
    ...nativeHashes(lib, path, sha256md),
    ...nativeX25519(lib, sha256md),
    ...nativeEd25519(lib),
    // node:crypto's Ed25519 verification is two to three times faster than
    // libcrypto 3.0's: see ./ed25519.ts and ./_native_ed25519.ts.
    ed25519Verify,
  };
}
