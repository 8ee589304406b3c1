/**
 * Load test: 200 connections at once (BENCH_CONNECTIONS), each sending
 * requests back to back for 20 s (BENCH_SECONDS), against the real
 * `ovtp listen`; prints requests per second, wrong answers (must be 0) and
 * the server's RSS before and at its peak.
 *
 * Usage: deno run -A bench/load.ts
 *
 * @module
 */

import { runLoad } from "./_load.ts";

const connections = Number(Deno.env.get("BENCH_CONNECTIONS") ?? 200);
const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 20);
const result = await runLoad({ connections, seconds });
console.log(
  `| connections | seconds | answered | wrong | req/s | server RSS before | server RSS peak |
|---|---|---|---|---|---|---|
| ${connections} | ${seconds} | ${result.answered} | ${result.wrong} | ${
    result.perSecond.toFixed(0)
  } | ${(result.rssBeforeKiB / 1024).toFixed(1)} MiB | ${
    (result.rssPeakKiB / 1024).toFixed(1)
  } MiB |`,
);
if (result.wrong > 0) Deno.exit(1);
