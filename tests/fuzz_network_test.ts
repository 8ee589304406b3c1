/**
 * The network fuzzer (fuzz/_network.ts) in small: the real `ovtp listen`,
 * 60 hostile connections covering every attack shape, and a valid client
 * served after each. `deno task fuzz` runs 10,000. Set OVTP_FUZZ_SEED to
 * replay a seed.
 */

import assert from "node:assert/strict";
import { runNetworkFuzz } from "../fuzz/_network.ts";
import { SHAPES } from "../fuzz/_network_attacks.ts";

const seedText = Deno.env.get("OVTP_FUZZ_SEED");

// The run ends with SIGTERM and checks that listen exits 0: Windows has no
// SIGTERM (listen stops on Ctrl-C only; Deno terminates it, exit code 1).
const windows = Deno.build.os === "windows";
if (windows) console.log("Skipping the network fuzz test on Windows: it stops listen with SIGTERM");

Deno.test("network fuzz: ovtp listen serves a valid client after each of 60 attacks", {
  ignore: windows,
}, async () => {
  const result = await runNetworkFuzz({
    connections: 60,
    seed: seedText ? Number(seedText) : 20_251_122,
  });
  assert.deepEqual(result.failures, [], `seed ${result.seed}`);
  assert.equal(result.connections, 60);
  for (const shape of SHAPES) {
    assert.ok(result.counts[shape] > 0, `no attack of shape ${shape}: ${JSON.stringify(result)}`);
  }
  assert.equal(result.exitCode, 0);
  if (Deno.build.os === "linux") {
    // The leak check ran: it is skipped silently where /proc cannot be read.
    assert.ok(result.openFiles.end !== undefined && result.rss.end !== undefined);
  }
});
