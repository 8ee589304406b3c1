/**
 * Runs a test once per crypto backend. The native one must load: where
 * libcrypto 3 is missing the native run fails (CI has it), rather than
 * skipping silently. The backend in use before is restored afterwards.
 *
 * @module
 */

import { type BackendName, cryptoBackendInfo, selectCryptoBackend } from "../lib/crypto/mod.ts";

/** Both backends, portable first. */
export const BACKENDS: readonly BackendName[] = ["portable", "native"];

/** Registers `fn` as one test per backend, named `[backend] name`. */
export function testEachBackend(name: string, fn: (backend: BackendName) => void | Promise<void>) {
  for (const backend of BACKENDS) {
    Deno.test(`[${backend}] ${name}`, async () => {
      await withBackend(backend, () => fn(backend));
    });
  }
}

/** Runs `fn` with `backend` selected, then selects the previous one again. */
export async function withBackend<T>(backend: BackendName, fn: () => T | Promise<T>): Promise<T> {
  const before = cryptoBackendInfo().name;
  selectCryptoBackend(backend);
  try {
    return await fn();
  } finally {
    selectCryptoBackend(before);
  }
}
