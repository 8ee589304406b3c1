/**
 * Network fuzzer shape f: an authorized client that sends records packed
 * with tiny "continued" fragments (0 to 3 body bytes each, up to 9,359 per
 * record) for one to 70 messages at once, none of them finished, or all
 * finished at the end. The 16 MiB message limit counts body bytes, so
 * zero-byte parts cost nothing against it: what must bound the server is a
 * limit on parts (and on what each part pins). The run checks the server's
 * peak RSS after every attack (fuzz/_network.ts).
 */

import fc from "fast-check";
import { type AttackContext, f, type Fragment, RawSession, render } from "./_network_wire.ts";

/** Shape f, as data. */
export interface PartsAttack {
  shape: "f";
  /** The message type of every part (continuation flag added). */
  type: number;
  /** How many messages are in progress at once (ids 1000..). */
  ids: number;
  /** Body bytes per part. */
  partSize: number;
  /** How many records of parts. */
  records: number;
  /** Whether a last record ends every message (an empty final fragment each). */
  finish: boolean;
}

const MAX_RECORD = 65_519;

/**
 * Record counts: mostly a few (the neighbours: types, ids, sizes), one time
 * in four enough to hold a few hundred MiB if each part were kept (about 1
 * MB per record on today's server, see PEAK_RSS_BOUND in _network.ts).
 */
export const partsAttack: fc.Arbitrary<PartsAttack> = fc.record({
  shape: fc.constant("f" as const),
  type: fc.constantFrom(0x10, 0x12, 0x20, 0x23, 0x30, 0x33, 0x40, 0x55),
  ids: fc.oneof(fc.constantFrom(1, 2, 64, 65, 70), fc.integer({ min: 1, max: 70 })),
  partSize: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 3 })),
  records: fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 20 }) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 400 }) },
  ),
  finish: fc.boolean(),
});

/** Sends the parts as `authorized`; stops early once the server closes the connection. */
export async function performParts(context: AttackContext, value: PartsAttack): Promise<void> {
  const session = await RawSession.open(context, context.authorized);
  try {
    const fragments: Fragment[] = [];
    const body = new Uint8Array(value.partSize).fill(0x61);
    for (let size = 0; size + 7 + value.partSize <= MAX_RECORD; size += 7 + value.partSize) {
      fragments.push(f(value.type | 0x80, 1000 + fragments.length % value.ids, body));
    }
    const record = render(fragments);
    for (let i = 0; i < value.records; i++) {
      if (!await session.sendRecord(record)) return;
    }
    if (value.finish) {
      const ends = Array.from({ length: value.ids }, (_, i) => f(value.type, 1000 + i, ""));
      for (let i = 0; i < ends.length; i += 9000) await session.send(ends.slice(i, i + 9000));
    }
    // Time for the server to take in what was sent (or to close).
    await session.until(() => false, 300, 100);
  } finally {
    await session.close();
  }
}
