/**
 * A running SHA-256 on OpenSSL's EVP_MD_CTX (the native backend's
 * `sha256Stream()`). On one core it runs at node:crypto's
 * speed (both use SHA-NI: about 1.7 GB/s on the project's machine on
 * 1 MiB updates, bench/crypto.ts, same run); what it adds is updateAsync(), which hashes on
 * one of Deno's blocking-task threads, so that a file's hash overlaps its
 * encryption and its socket or disk writes instead of adding to them.
 *
 * @module
 */

import { toHex } from "../bytes.ts";
import { type DigestLib as Lib, NativeCryptoError } from "./_native_lib.ts";
import type { Sha256Stream } from "./types.ts";

// A context that is never digested (a transfer that failed) is freed when
// its hash is collected.
const contexts = new FinalizationRegistry<{ lib: Lib; ctx: Deno.PointerObject }>(
  ({ lib, ctx }) => lib.EVP_MD_CTX_free(ctx),
);
// Hashes with an update on another thread: strongly held until it returns,
// so that the collector cannot free a context that thread is using.
const busy = new Set<NativeSha256>();

/**
 * The known-answer test of a running SHA-256, run when its functions are
 * first bound (the start-up self-test does not bind them): SHA-256("abc")
 * in two pieces, through a copy. Throws an Error when it fails.
 */
export function checkRunningSha256(make: () => Sha256Stream): void {
  const running = make().update(new TextEncoder().encode("a")).copy();
  if (
    running.update(new TextEncoder().encode("bc")).digest("hex") !==
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
  ) throw new Error("the native backend fails its running SHA-256 known-answer test");
}

/** A running SHA-256 in an OpenSSL digest context. */
export class NativeSha256 implements Sha256Stream {
  #lib: Lib;
  #md: Deno.PointerObject;
  #ctx: Deno.PointerObject | null;
  #updating = false;

  /** A new hash; with `from`, a copy of that context's state. */
  constructor(lib: Lib, md: Deno.PointerObject, from?: Deno.PointerObject) {
    this.#lib = lib;
    this.#md = md;
    const ctx = lib.EVP_MD_CTX_new();
    if (ctx === null) throw new NativeCryptoError("create a digest context");
    const ok = from ? lib.EVP_MD_CTX_copy_ex(ctx, from) : lib.EVP_DigestInit_ex(ctx, md, null);
    if (ok !== 1) {
      lib.EVP_MD_CTX_free(ctx);
      throw new NativeCryptoError("start a SHA-256");
    }
    this.#ctx = ctx;
    contexts.register(this, { lib, ctx }, this);
  }

  update(data: Uint8Array): this {
    const ctx = this.#ready();
    if (this.#lib.EVP_DigestUpdate(ctx, data, BigInt(data.length)) !== 1) {
      throw new NativeCryptoError("hash");
    }
    return this;
  }

  async updateAsync(data: Uint8Array): Promise<void> {
    const ctx = this.#ready();
    this.#updating = true;
    busy.add(this);
    try {
      const ok = await this.#lib.EVP_DigestUpdate_async(ctx, data, BigInt(data.length));
      if (ok !== 1) throw new NativeCryptoError("hash");
    } finally {
      this.#updating = false;
      busy.delete(this);
    }
  }

  copy(): Sha256Stream {
    return new NativeSha256(this.#lib, this.#md, this.#ready());
  }

  digest(): Uint8Array;
  digest(encoding: "hex"): string;
  digest(encoding?: "hex"): Uint8Array | string {
    const ctx = this.#ready();
    const out = new Uint8Array(32);
    const length = new Uint32Array(1);
    const ok = this.#lib.EVP_DigestFinal_ex(ctx, out, new Uint8Array(length.buffer));
    this.#ctx = null;
    contexts.unregister(this);
    this.#lib.EVP_MD_CTX_free(ctx);
    if (ok !== 1 || length[0] !== 32) throw new NativeCryptoError("hash");
    if (encoding !== "hex") return out;
    return toHex(out);
  }

  // The context, when no update is running on it and it was not digested.
  #ready(): Deno.PointerObject {
    if (this.#ctx === null) throw new Error("Cannot use a SHA-256 after its digest");
    if (this.#updating) throw new Error("Cannot use a SHA-256 while an update is running");
    return this.#ctx;
  }
}
