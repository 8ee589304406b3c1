/**
 * `deno task fuzz` (second half): the network fuzzer. Starts the real `ovtp
 * listen` with temporary homes, makes N hostile attacks on it (10,000 by
 * default; see fuzz/_network_attacks.ts for the eight attack shapes), and
 * checks after each that a valid client is still served, that the server's
 * peak memory stays under its bound, and that the files it stored and the
 * chat messages it keeps are what it promised (fuzz/_network.ts).
 *
 *   deno run fuzz/network.ts [--connections N] [--seed S] [--shapes a,b,...]
 *
 * Prints progress every 1000 connections and a summary line. On a failure it
 * prints the seed, the attack that broke the server (bytes in hex) and the
 * ones before it, and exits 1.
 */

import { parseArgs } from "node:util";
import { mib, runNetworkFuzz } from "./_network.ts";
import { type Shape, SHAPES } from "./_network_attacks.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    connections: { type: "string", default: "10000" },
    seed: { type: "string" },
    shapes: { type: "string", default: SHAPES.join(",") },
  },
});
const connections = Number(values.connections);
const seed = values.seed === undefined ? undefined : Number(values.seed);
const shapes = values.shapes.split(",") as Shape[];
if (
  !Number.isSafeInteger(connections) || connections < 1 ||
  (seed !== undefined && !Number.isSafeInteger(seed)) ||
  shapes.some((shape) => !SHAPES.includes(shape))
) {
  console.error(
    `usage: deno run fuzz/network.ts [--connections N] [--seed S] [--shapes ${SHAPES.join(",")}]`,
  );
  Deno.exit(2);
}

const result = await runNetworkFuzz({
  connections,
  seed,
  shapes,
  log: (line) => console.log(line),
});
const counts = SHAPES.map((shape) => `${shape}: ${result.counts[shape]}`).join(", ");
const files = result.openFiles.start === undefined
  ? ""
  : `, open files ${result.openFiles.start} -> ${result.openFiles.end ?? "?"}`;
console.log(
  `network: ${result.connections} connections (${counts}), ${result.failures.length} failures, ` +
    `${result.seconds.toFixed(0)} s, server RSS ${mib(result.rss.end)} (start ${
      mib(result.rss.start)
    }, max ${mib(result.rss.max)}, peak ${mib(result.rss.peak)})${files}, ${result.files} ` +
    `stored files checked, seed ${result.seed}`,
);
for (const failure of result.failures) {
  console.log(`\nFAILED after connection ${failure.connection} (seed ${result.seed})`);
  if (failure.attack) console.log(`attack: ${failure.attack}`);
  if (failure.previous.length > 0) {
    console.log(`previous attacks, oldest first:\n  ${failure.previous.join("\n  ")}`);
  }
  console.log(failure.message);
}
Deno.exit(result.failures.length === 0 ? 0 : 1);
