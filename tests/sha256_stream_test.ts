import assert from "node:assert/strict";
import { sha256, sha256Stream } from "../lib/crypto/mod.ts";
import { toHex } from "../lib/bytes.ts";
import { testEachBackend, withBackend } from "./_backends.ts";

const data = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 31) >> 3);

testEachBackend(
  "sha256Stream() in pieces, sync and async, equals the one-shot SHA-256",
  async () => {
    const hash = sha256Stream();
    hash.update(data.subarray(0, 1000));
    await hash.updateAsync(data.subarray(1000, 2 * 1024 * 1024));
    const prefix = hash.copy();
    await hash.updateAsync(data.subarray(2 * 1024 * 1024));
    assert.equal(hash.digest("hex"), toHex(sha256(data)));
    // The copy goes on alone.
    assert.deepEqual(prefix.digest(), sha256(data.subarray(0, 2 * 1024 * 1024)));
    assert.equal(sha256Stream().digest("hex"), toHex(sha256(new Uint8Array(0))));
  },
);

Deno.test("[native] sha256Stream() refuses use after its digest and during an update", async () => {
  await withBackend("native", async () => {
    const hash = sha256Stream();
    const running = hash.updateAsync(data);
    assert.throws(() => hash.update(data), {
      message: "Cannot use a SHA-256 while an update is running",
    });
    assert.throws(() => hash.digest(), {
      message: "Cannot use a SHA-256 while an update is running",
    });
    await running;
    hash.digest();
    assert.throws(() => hash.update(data), { message: "Cannot use a SHA-256 after its digest" });
  });
});
