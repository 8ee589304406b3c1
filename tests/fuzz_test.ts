/**
 * Every fuzz target (fuzz/targets/), for a few hundred cases each: enough to
 * catch a parser that regressed into crashing, cheap enough for every run.
 * `deno task fuzz` runs the same targets for 100,000 cases each. Set
 * OVTP_FUZZ_RUNS to change the count here, OVTP_FUZZ_SEED to replay a seed
 * that `deno task fuzz` reported.
 */

import { ALL_TARGETS } from "../fuzz/targets.ts";

const DEFAULT_RUNS = 300;
const runsOverride = Deno.env.get("OVTP_FUZZ_RUNS");
const seedText = Deno.env.get("OVTP_FUZZ_SEED");
// A fixed seed keeps `deno task test` reproducible: the same cases on every
// machine, so a red run is a regression, not a lucky draw. `deno task fuzz`
// draws new seeds to explore.
const seed = seedText ? Number(seedText) : 20_261_122;

for (const target of ALL_TARGETS) {
  Deno.test(`fuzz: ${target.name}`, async () => {
    const runs = runsOverride ? Number(runsOverride) : target.testRuns ?? DEFAULT_RUNS;
    await target.run(runs, seed);
  });
}

Deno.test("fuzz: every target group has targets", () => {
  // A group whose file exports nothing would pass silently; name them all.
  const groups = new Set(ALL_TARGETS.map((target) => target.name.split("/")[0]));
  for (
    const group of [
      "frames",
      "handshake",
      "messages",
      "key_lines",
      "config",
      "envelopes",
      "sealed",
      "recipients",
    ]
  ) {
    if (!groups.has(group)) throw new Error(`no fuzz target in group ${group}`);
  }
});
