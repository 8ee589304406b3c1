/**
 * Sealing and opening one file in this process, as `ovtp seal`/`open` do
 * (the file read in 1 MiB pieces, the output written to /dev/null through
 * the same two-buffer writer), with a chosen number of worker threads and
 * the backend OVTP_CRYPTO names: does native crypto on one thread still
 * need the worker pool?
 *
 * Run: `deno run -A bench/sealed_threads.ts FILE WORKERS` (WORKERS 0: this
 * thread only). Prints one line: MB/s, CPU seconds and peak RSS (of this
 * process, threads included) for seal and for open.
 *
 * @module
 */

import { generateIdentity, openSealed, sealStream } from "../mod.ts";
import { readerStream, writeAll } from "../lib/sealed/files.ts";
import { applyCryptoEnv, cpuSeconds, initClockTicks, peakRssKib } from "./_harness.ts";

const [path, workersArg] = Deno.args;
const workers = Number(workersArg ?? "0");
const crypto = applyCryptoEnv();
await initClockTicks();
const [alice, bob] = [await generateIdentity(), await generateIdentity()];
const size = (await Deno.stat(path)).size;
const sealedPath = `${path}.bench.ovtp`;

async function timed(run: () => Promise<void>) {
  const cpu = cpuSeconds("self");
  const start = performance.now();
  await run();
  const seconds = (performance.now() - start) / 1000;
  return { mbs: size / seconds / 1e6, cpu: cpuSeconds("self") - cpu };
}

const seal = await timed(async () => {
  const input = await Deno.open(path);
  const out = await Deno.open(sealedPath, { write: true, create: true, truncate: true });
  await writeAll(
    out,
    sealStream(readerStream(input, { onClose: () => input.close() }), alice, {
      recipients: [bob.publicKey],
      workers,
    }),
  );
  out.close();
});
const open = await timed(async () => {
  const input = await Deno.open(sealedPath);
  const opened = await openSealed(readerStream(input, { onClose: () => input.close() }), bob, {
    workers,
  });
  using out = await Deno.open("/dev/null", { write: true });
  await writeAll(out, opened.plaintext);
});
await Deno.remove(sealedPath);
console.log(
  `${crypto}, workers ${workers}, ${size} bytes: seal ${seal.mbs.toFixed(0)} MB/s ` +
    `(${seal.cpu.toFixed(2)} s CPU), open ${open.mbs.toFixed(0)} MB/s (${
      open.cpu.toFixed(2)
    } s CPU), ` +
    `peak RSS ${((peakRssKib("self")) / 1024).toFixed(0)} MiB`,
);
