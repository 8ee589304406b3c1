/**
 * Envelope sealing and opening time (lib/envelope/envelope.ts), in this one process,
 * no network.
 *
 * For each recipient count in `BENCH_RECIPIENTS` (1, 10, 50, 200), one
 * `BENCH_BODY_BYTES`-byte body (100) is sealed with `sealEnvelope()` for
 * that many recipients, again and again, and one such envelope is opened
 * with `openEnvelope()` as its last recipient (the one found last), again
 * and again. Each case first runs an untimed warm-up, then repeats for
 * `BENCH_SECONDS` (at least `BENCH_MIN_REPS` and at most `BENCH_MAX_REPS`
 * times), timing every call alone. Seal and open alternate case by case, so
 * a burst of load on the machine spreads over both.
 *
 * Prints a Markdown table per operation (median, p10, p90, min, max in ms,
 * and the targets (issue 17): seal for 50 recipients at most 5 ms, open at most 0.3 ms,
 * judged on the median), the envelope size per recipient count, and the
 * machine's load and stolen CPU meanwhile (this machine is shared: quote
 * figures taken with steal and other CPU near 0%).
 *
 * Run: `deno run -A bench/envelope.ts` (knobs in the environment, see
 * `readConfig`).
 *
 * @module
 */

import {
  applyCryptoEnv,
  cpuSeconds,
  envNumber,
  guardRun,
  initClockTicks,
  loadAverage,
  machineSeconds,
  ms,
  percent,
  quantile,
  runMain,
} from "./_harness.ts";
import {
  generateIdentity,
  type Identity,
  openEnvelope,
  type PublicKey,
  sealEnvelope,
} from "../mod.ts";

const CONTEXT = "room:bench";
const SEAL_TARGET_RECIPIENTS = 50;
const SEAL_TARGET_MS = 5;
const OPEN_TARGET_MS = 0.3;

interface Config {
  recipients: number[];
  bodyBytes: number;
  seconds: number;
  warmupSeconds: number;
  minReps: number;
  maxReps: number;
  timeoutSeconds: number;
  jsonPath: string | undefined;
}

function readConfig(): Config {
  const list = Deno.env.get("BENCH_RECIPIENTS") || "1,10,50,200";
  const recipients = list.split(",").map((s) => Number(s.trim()));
  if (recipients.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) {
    throw new RangeError(
      `Invalid BENCH_RECIPIENTS "${list}": expected counts from 1 to 1024, comma-separated`,
    );
  }
  const minReps = Math.round(envNumber("BENCH_MIN_REPS", 30, 1, 1e6));
  return {
    recipients,
    bodyBytes: Math.round(envNumber("BENCH_BODY_BYTES", 100, 0, 1 << 20)),
    seconds: envNumber("BENCH_SECONDS", 3, 0.01, 600),
    warmupSeconds: envNumber("BENCH_WARMUP_SECONDS", 0.5, 0, 60),
    minReps,
    maxReps: Math.max(minReps, Math.round(envNumber("BENCH_MAX_REPS", 5000, 1, 1e7))),
    timeoutSeconds: envNumber("BENCH_TIMEOUT", 600, 5, 7200),
    jsonPath: Deno.env.get("BENCH_JSON") || undefined,
  };
}

// --- measuring -------------------------------------------------------------------------------

interface Stats {
  reps: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    reps: sorted.length,
    median: quantile(sorted, 0.5),
    p10: quantile(sorted, 0.1),
    p90: quantile(sorted, 0.9),
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/**
 * Calls `step` untimed for `warmupSeconds`, then timed, one call at a time,
 * until `seconds` have passed and at least `minReps` calls were made (never
 * more than `maxReps`). Returns each call's time in ms.
 */
async function measure(
  config: Config,
  step: () => Promise<unknown>,
  stopped: () => boolean,
): Promise<number[]> {
  const warmupEnd = performance.now() + config.warmupSeconds * 1000;
  do {
    await step();
  } while (performance.now() < warmupEnd && !stopped());
  const samples: number[] = [];
  const end = performance.now() + config.seconds * 1000;
  while (
    !stopped() && samples.length < config.maxReps &&
    (samples.length < config.minReps || performance.now() < end)
  ) {
    const start = performance.now();
    await step();
    samples.push(performance.now() - start);
  }
  return samples;
}

interface Case {
  recipients: number;
  envelopeBytes: number;
  seal: Stats;
  open: Stats;
  /** CPU this process used per wall second during the case (100% = one core). */
  selfCpu: number;
  otherCpu: number;
  steal: number;
}

async function runCase(
  config: Config,
  sender: Identity,
  people: Identity[],
  count: number,
  stopped: () => boolean,
): Promise<Case> {
  const recipients: PublicKey[] = people.slice(0, count).map((p) => p.publicKey);
  const reader = people[count - 1];
  const body = new Uint8Array(config.bodyBytes).fill(0x61);
  const seal = () => sealEnvelope(sender, recipients, body, { context: CONTEXT });

  const cpu0 = cpuSeconds("self");
  const machine0 = machineSeconds();
  const wall0 = performance.now();

  const sealSamples = await measure(config, seal, stopped);

  // One envelope, opened again and again: without a replay guard the same
  // message id is accepted each time, and the work is the same as for a
  // fresh envelope. Checked once for the right body.
  const envelope = await seal();
  const opened = await openEnvelope(envelope, reader, { context: CONTEXT });
  if (opened.body.length !== body.length || !opened.body.every((b, i) => b === body[i])) {
    throw new Error(`Opening the envelope for ${count} recipient(s) gave another body`);
  }
  const openSamples = await measure(
    config,
    () => openEnvelope(envelope, reader, { context: CONTEXT }),
    stopped,
  );

  const wall = (performance.now() - wall0) / 1000;
  const selfCpu = (cpuSeconds("self") - cpu0) / wall;
  const machine1 = machineSeconds();
  return {
    recipients: count,
    envelopeBytes: envelope.length,
    seal: stats(sealSamples),
    open: stats(openSamples),
    selfCpu,
    otherCpu: Math.max(0, (machine1.busy - machine0.busy) / wall - selfCpu),
    steal: (machine1.steal - machine0.steal) / wall,
  };
}

// --- reporting -------------------------------------------------------------------------------

function timingTable(
  cases: Case[],
  op: "seal" | "open",
  target: (c: Case) => number | undefined,
): string {
  const lines = [
    `| ${op} | reps | median ms | p10 ms | p90 ms | min ms | max ms | target | met | process CPU | other CPU | steal |`,
    "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
  ];
  for (const c of cases) {
    const s = c[op];
    const goal = target(c);
    lines.push(
      `| ${c.recipients} recipient${c.recipients === 1 ? "" : "s"} | ${s.reps} | ${
        ms(s.median)
      } | ${ms(s.p10)} | ${ms(s.p90)} | ${ms(s.min)} | ${ms(s.max)} | ${
        goal === undefined ? "" : `< ${goal} ms`
      } | ${goal === undefined ? "" : s.median < goal ? "met" : "**missed**"} | ${
        percent(c.selfCpu)
      } | ${percent(c.otherCpu)} | ${percent(c.steal)} |`,
    );
  }
  return lines.join("\n");
}

function sizeTable(cases: Case[], bodyBytes: number): string {
  const lines = [
    "| recipients | envelope bytes | bytes per recipient | overhead over the body |",
    "|---:|---:|---:|---:|",
  ];
  for (const c of cases) {
    lines.push(
      `| ${c.recipients} | ${c.envelopeBytes.toLocaleString("en-US")} | ${
        (c.envelopeBytes / c.recipients).toFixed(1)
      } | ${(c.envelopeBytes - bodyBytes).toLocaleString("en-US")} |`,
    );
  }
  return lines.join("\n");
}

// --- main ------------------------------------------------------------------------------------

/** Runs the benchmark; resolves with the exit code. */
async function main(): Promise<number> {
  const config = readConfig();
  console.error(`bench: ${applyCryptoEnv()}`);
  await initClockTicks();
  // Nothing to clean up (no files, no processes): the watchdog and the signals
  // end the measuring loops, and the figures so far are not printed.
  const guard = guardRun(config.timeoutSeconds);
  const stopped = () => guard.code !== undefined;
  try {
    const loadBefore = loadAverage();
    const most = Math.max(...config.recipients);
    const sender = await generateIdentity();
    const people = await Promise.all(Array.from({ length: most }, () => generateIdentity()));
    console.error(
      `bench: ${config.bodyBytes}-byte body; recipients ${config.recipients.join(", ")}; ` +
        `${config.seconds} s (at least ${config.minReps} reps) per operation after ` +
        `${config.warmupSeconds} s warm-up; load ${loadBefore}`,
    );
    const cases: Case[] = [];
    for (const count of config.recipients) {
      if (stopped()) break;
      const result = await runCase(config, sender, people, count, stopped);
      if (stopped()) break;
      cases.push(result);
      console.error(
        `bench: ${count} recipient(s): seal median ${
          ms(result.seal.median)
        } ms (${result.seal.reps} reps), ` +
          `open median ${ms(result.open.median)} ms (${result.open.reps} reps), ` +
          `${result.envelopeBytes} bytes, steal ${percent(result.steal)}`,
      );
    }
    if (stopped()) return guard.code!;
    const loadAfter = loadAverage();

    console.log(
      `## ovtp envelopes: seal and open (${navigator.hardwareConcurrency} cores, ` +
        `deno ${Deno.version.deno}, ${new Date().toISOString()})\n`,
    );
    console.log(
      `One ${config.bodyBytes}-byte body, context "${CONTEXT}". **seal**: \`sealEnvelope()\` for N ` +
        `recipients (a fresh content key, one HPKE wrap per recipient, one Ed25519 signature). ` +
        `**open**: \`openEnvelope()\` as the last of the N recipients (signature check, HPKE ` +
        `unwrap, body decryption). Each call timed alone, ${config.seconds} s (at least ` +
        `${config.minReps} calls) per row after a ${config.warmupSeconds} s untimed warm-up. ` +
        `Targets are judged on the median. Process CPU: this process's CPU per wall second ` +
        `(100% = one core); other CPU: everything else on the machine meanwhile; steal: CPU the ` +
        `hypervisor gave to other guests (both near 0% for clean figures). Load average before: ` +
        `${loadBefore}; after: ${loadAfter}.\n`,
    );
    console.log(
      timingTable(
        cases,
        "seal",
        (c) => c.recipients === SEAL_TARGET_RECIPIENTS ? SEAL_TARGET_MS : undefined,
      ),
    );
    console.log();
    console.log(timingTable(cases, "open", () => OPEN_TARGET_MS));
    console.log();
    console.log(sizeTable(cases, config.bodyBytes));
    if (config.jsonPath) {
      await Deno.writeTextFile(
        config.jsonPath,
        JSON.stringify({ config, loadBefore, loadAfter, cases }, null, 2) + "\n",
      );
    }
    return 0;
  } finally {
    guard.dispose();
  }
}

if (import.meta.main) await runMain(main);
