/**
 * The fragment flood of issue 11: an authorized client writes records full
 * of zero-length "continued" fragments (BENCH_SHAPE=empty, the default) or
 * of one-byte ones (BENCH_SHAPE=tiny), or of whole empty requests that
 * it never reads the answers of (BENCH_SHAPE=requests), to the real
 * `ovtp listen`, for
 * BENCH_SECONDS (default 10) or until the server closes the connection;
 * prints the server's RSS before and at its peak, the records the server
 * took, and how the connection ended. A server whose assembler bounds what
 * it holds refuses the flood within a few records; one that does not grows
 * until the flood stops (or BENCH_MAX_RSS_MIB, default 2048, is reached:
 * the bench then stops the flood rather than the machine).
 *
 * Usage: deno run -A bench/fragment_flood.ts
 *
 * @module
 */

import { envNumber } from "./_harness.ts";
import { startServer } from "./_listen.ts";
import { SecureChannel } from "../lib/channel/channel.ts";
import { MAX_RECORD_PLAINTEXT } from "../lib/channel/channel.ts";
import { MessageType } from "../lib/channel/messages.ts";
import { FRAGMENT_HEADER_LENGTH } from "../lib/channel/connection.ts";

const seconds = envNumber("BENCH_SECONDS", 10, 1, 600);
const maxRssMiB = envNumber("BENCH_MAX_RSS_MIB", 2048, 64, 65536);
const shape = Deno.env.get("BENCH_SHAPE") ?? "empty";
if (!["empty", "tiny", "requests"].includes(shape)) {
  throw new RangeError(`Invalid BENCH_SHAPE "${shape}": expected empty, tiny or requests`);
}

let nextId = 1;

/**
 * One record of fragments of `bodyLength` bytes: continued fragments of
 * message 1, or whole requests with new ids.
 */
function floodRecord(bodyLength: number, whole: boolean): Uint8Array {
  const size = FRAGMENT_HEADER_LENGTH + bodyLength;
  const count = Math.floor(MAX_RECORD_PLAINTEXT / size);
  const record = new Uint8Array(count * size);
  const view = new DataView(record.buffer);
  for (let at = 0; at < record.length; at += size) {
    view.setUint8(at, whole ? MessageType.Request : MessageType.Request | 0x80);
    view.setUint32(at + 1, whole ? nextId++ : 1);
    view.setUint16(at + 5, bodyLength);
  }
  return record;
}

const server = await startServer();
try {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const channel = await SecureChannel.initiate(conn, { identity: server.clientIdentity });
  const rssBefore = server.rssKiB();
  let peak = rssBefore;
  let records = 0;
  let ending = `stopped after ${seconds} s`;
  const whole = shape === "requests";
  const deadline = performance.now() + seconds * 1000;
  // The server's answer (Welcome, then an Error or the close) is read
  // alongside, so that a refusal ends the flood.
  // With BENCH_SHAPE=requests only the Welcome is read.
  const closed = (async () => {
    do {
      if (await channel.receive().catch(() => null) === null) return;
    } while (!whole);
    await new Promise(() => {});
  })();
  let open = true;
  closed.then(() => open = false);
  while (open && performance.now() < deadline) {
    try {
      // A server that stops reading blocks the send: the deadline ends it.
      const left = deadline - performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const sent = await Promise.race([
        channel.send(floodRecord(shape === "tiny" ? 1 : 0, whole)).then(() => true),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), left)),
      ]);
      clearTimeout(timer);
      if (!sent) {
        ending = `the server stopped reading; stopped after ${seconds} s`;
        break;
      }
    } catch (error) {
      ending = `closed by the server (${(error as Error).message})`;
      break;
    }
    records++;
    if (records % 64 === 0) {
      peak = Math.max(peak, server.rssKiB());
      if (peak > maxRssMiB * 1024) {
        ending = `stopped at ${maxRssMiB} MiB`;
        break;
      }
    }
  }
  if (!open) ending = "closed by the server";
  peak = Math.max(peak, server.rssKiB());
  channel.close();
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  console.log(
    `| shape | records sent | server RSS before | server RSS peak | end |
|---|---|---|---|---|
| ${shape} | ${records} | ${mib(rssBefore)} | ${mib(peak)} | ${ending} |`,
  );
} finally {
  await server.stop();
}
