/**
 * Per-primitive cost on each crypto backend (lib/crypto/), in this one
 * process: the measurements behind the provider choices commented in
 * lib/crypto/mod.ts and docs/security.md section 5.8.
 *
 * For each backend: ChaCha20-Poly1305 and AES-256-GCM seal and open of
 * 16 B, 1 KiB, 64 KiB and 1 MiB records (one reused output buffer), one-shot
 * SHA-256 and HMAC-SHA256 of 32 bytes, a 1 MiB update of the running SHA-256, HKDF-SHA256 to 64 bytes, and X25519
 * (derive, public key, and both from one import). Each case runs for
 * `BENCH_SECONDS` (0.3) after a short warm-up; the table gives the median
 * of 5 timed slices. The machine is shared: compare the two backends
 * within one run, not across runs.
 *
 * Run: `deno run -A bench/crypto.ts`
 *
 * @module
 */

import { type BackendName, hkdfSha256, selectCryptoBackend } from "../lib/crypto/mod.ts";
import { backend } from "../lib/crypto/mod.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "0.3");

function time(fn: () => void): number {
  for (let i = 0; i < 50; i++) fn();
  const slices: number[] = [];
  for (let s = 0; s < 5; s++) {
    let n = 0;
    const start = performance.now();
    const end = start + (SECONDS * 1000) / 5;
    while (performance.now() < end) {
      for (let i = 0; i < 10; i++) fn();
      n += 10;
    }
    slices.push(((performance.now() - start) * 1000) / n);
  }
  return slices.sort((a, b) => a - b)[2];
}

const rows: Record<string, Record<BackendName, string>> = {};
function record(name: string, b: BackendName, us: number, bytes = 0) {
  rows[name] ??= { native: "", portable: "" };
  rows[name][b] = bytes > 0
    ? `${us.toFixed(2)} us (${(bytes / us / 1000).toFixed(2)} GB/s)`
    : `${us.toFixed(2)} us`;
}

for (const name of ["portable", "native"] as const) {
  selectCryptoBackend(name);
  const b = backend();
  const key = new Uint8Array(32).fill(1);
  const nonce = new Uint8Array(12);
  const empty = new Uint8Array(0);
  for (const size of [16, 1024, 65536, 1 << 20]) {
    const plaintext = new Uint8Array(size);
    const out = new Uint8Array(size + 16);
    for (const algorithm of ["chacha20-poly1305", "aes-256-gcm"] as const) {
      record(
        `${algorithm} seal ${size} B`,
        name,
        time(() => b.aeadSealInto(algorithm, key, nonce, empty, plaintext, out)),
        size,
      );
      const sealed = out.slice();
      record(
        `${algorithm} open ${size} B`,
        name,
        time(() => b.aeadOpenInto(algorithm, key, nonce, empty, sealed, plaintext)),
        size,
      );
    }
  }
  const small = new Uint8Array(32).fill(3);
  record("SHA-256 32 B", name, time(() => b.sha256(small)));
  // The running hash of files: one 1 MiB update, on this thread.
  const mib = new Uint8Array(1024 * 1024);
  const running = b.sha256Stream();
  record("running SHA-256 update 1 MiB", name, time(() => running.update(mib)), mib.length);
  record("HMAC-SHA256 32 B", name, time(() => b.hmacSha256(key, small)));
  record("HKDF-SHA256 to 64 B", name, time(() => hkdfSha256(small, key, empty, 64)));
  const peer = b.x25519PublicOf(new Uint8Array(32).fill(9));
  record("X25519 derive (key cached)", name, time(() => b.x25519(small, peer)));
  record("X25519 public key", name, time(() => b.x25519PublicOf(small)));
  record("X25519 public + derive", name, time(() => b.x25519Multi(small, [peer])));
}

console.log("| primitive | portable (node:crypto) | native (OpenSSL FFI) |");
console.log("|---|---|---|");
for (const [name, r] of Object.entries(rows)) {
  console.log(`| ${name} | ${r.portable} | ${r.native} |`);
}
