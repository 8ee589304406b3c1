/**
 * `deno task fuzz`: runs every parser target for many cases (100,000 by
 * default) and reports each one's count and time.
 *
 *   deno run fuzz/main.ts [--runs N] [--seed=S] [FILTER...]
 *
 * (`--seed=S` with the equals sign: fast-check seeds are often negative.)
 *
 * A FILTER keeps the targets whose name contains it. A failing target prints
 * fast-check's report (seed, path and shrunk counterexample: add it to
 * a tests/fuzz_regressions_*_test.ts once fixed) and the exit code is 1.
 */

import { parseArgs } from "node:util";
import { ALL_TARGETS } from "./targets.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "100000" }, seed: { type: "string" } },
  allowPositionals: true,
});
const runs = Number(values.runs);
const seed = values.seed === undefined ? undefined : Number(values.seed);
const chosen = ALL_TARGETS.filter((target) =>
  positionals.length === 0 || positionals.some((filter) => target.name.includes(filter))
);
if (!Number.isSafeInteger(runs) || runs < 1 || chosen.length === 0) {
  console.error("usage: deno run fuzz/main.ts [--runs N] [--seed S] [FILTER...]");
  Deno.exit(2);
}

let failed = 0;
let cases = 0;
const started = performance.now();
for (const target of chosen) {
  const begin = performance.now();
  try {
    await target.run(runs, seed);
    cases += runs;
    console.log(
      `${target.name.padEnd(36)} ${runs} cases ok  ${
        ((performance.now() - begin) / 1000).toFixed(1)
      } s`,
    );
  } catch (error) {
    failed++;
    console.log(`${target.name.padEnd(36)} FAILED`);
    console.log(error instanceof Error ? error.message : String(error));
    // fast-check keeps the property's own exception as the cause.
    if (error instanceof Error && error.cause) console.log("Caused by:", error.cause);
  }
}
const seconds = ((performance.now() - started) / 1000).toFixed(0);
console.log(
  `${chosen.length - failed} of ${chosen.length} targets passed, ${cases} cases, ${seconds} s`,
);
Deno.exit(failed === 0 ? 0 : 1);
