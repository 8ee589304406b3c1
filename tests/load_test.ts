import assert from "node:assert/strict";
import { runLoad } from "../bench/_load.ts";

// The small version of bench/load.ts (200 connections for 20 s).
Deno.test("50 connections at once each get their own answers, and the server's memory stays bounded", async () => {
  const result = await runLoad({ connections: 50, seconds: 2 });
  assert.equal(result.wrong, 0);
  assert.ok(result.answered >= 50, `only ${result.answered} requests were answered`);
  if (Deno.build.os === "linux") {
    // Generous: about 100 MiB of runtime plus per-connection buffers.
    assert.ok(result.rssPeakKiB < 512 * 1024, `server RSS reached ${result.rssPeakKiB} KiB`);
  }
});
