/**
 * The network fuzzer's attacks: what one hostile TCP connection to `ovtp
 * listen` does, as data that fast-check generates ({@linkcode attack}), and
 * the code that performs it over a real socket ({@linkcode performAttack}).
 *
 * The shapes:
 * - a: a genuine handshake message 1, mutated (its frame, or its body re-framed);
 * - b: genuine message 1, the server's message 2, then a mutated message 3;
 * - c: a complete handshake as an authorized client, then records: valid
 *   records of mutated fragments, tampered ciphertexts, replays, bulk records
 *   of the wrong size, truncated and oversized frames, a half-close;
 * - d: a complete handshake as an unauthorized (or expired) client, which must
 *   get exactly the Error message and a closed connection;
 * - e: raw bytes: junk, bare length prefixes, a message 1 dribbled out slowly,
 *   half-closes, connections that say nothing; half of them are held open
 *   while the server is checked;
 * - f: tiny "continued" fragments by the thousand (fuzz/_attack_parts.ts);
 * - g: chat posts with repeated or foreign recipients (fuzz/_attack_chat.ts);
 * - h: uploads that fight over a name or a held file, from keys with hostile
 *   names (fuzz/_attack_uploads.ts).
 *
 * Every wait is capped by a short timer: an attack never waits for a server
 * timeout, it closes its socket and moves on.
 */

import fc from "fast-check";
import { concat, utf8 } from "../lib/bytes.ts";
import { PROLOGUE, SecureChannel } from "../lib/channel/channel.ts";
import { encodeFrame } from "../lib/channel/framing.ts";
import type { Identity } from "../lib/identity/keys.ts";
import { decodeJson, MessageType } from "../lib/channel/messages.ts";
import { HandshakeState } from "../lib/channel/noise/handshake_state.ts";
import { XX_HFS } from "../lib/channel/noise/patterns.ts";
import { encodeCall } from "../lib/services/function_call.ts";
import { applyMutations, mutations } from "./_mutate.ts";
import {
  type AttackContext,
  AttackFailure,
  bulkNotice,
  f,
  type Fragment,
  handshake,
  ignore,
  json,
  receiveWithin,
  render,
  sleep,
  TappedConn,
} from "./_network_wire.ts";

import { type PartsAttack, partsAttack, performParts } from "./_attack_parts.ts";
import { type ChatAttack, chatAttack, performChat } from "./_attack_chat.ts";
import { performUploads, type UploadsAttack, uploadsAttack } from "./_attack_uploads.ts";
import { MessageAssembler } from "../lib/channel/connection.ts";

export { type AttackContext, AttackFailure, type Ledger } from "./_network_wire.ts";

type Mutation = typeof mutations extends fc.Arbitrary<(infer M)[]> ? M : never;

/**
 * A position in [0, 1), uniform. (fc.double is uniform over the doubles,
 * most of which are tiny: 93% of its draws in [0, 1) are below 0.01.)
 */
const position = fc.integer({ min: 0, max: 0xffff }).map((n) => n / 0x10000);

/**
 * Mutation lists from _mutate.ts, three times in four with their positions
 * redrawn uniformly: its own positions come from fc.double, so nearly all of
 * them hit the first bytes (length prefixes and headers, which the fourth
 * case keeps hitting) and almost none reach keys, tags or JSON bodies.
 */
const damageList: fc.Arbitrary<Mutation[]> = fc.oneof(
  { weight: 1, arbitrary: mutations },
  {
    weight: 3,
    arbitrary: fc.tuple(mutations, fc.array(position, { minLength: 8, maxLength: 8 })).map((
      [list, at],
    ) =>
      list.map((m, i) =>
        m.kind === "swap" ? { ...m, at: at[i], other: at[i + 4] } : { ...m, at: at[i] }
      )
    ),
  },
);

/** The attack shapes, as named in reports. */
export const SHAPES = ["a", "b", "c", "d", "e", "f", "g", "h"] as const;
/** One attack shape. */
export type Shape = typeof SHAPES[number];

// ---------------------------------------------------------------------------
// Seeds: the plaintexts of valid records, one or more fragments each.

const HELLO_SHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
/** SHA-256 of "he", the first 2 bytes of the served hello.txt (a resumed download). */
const HE_SHA256 = "372f7e2fd2d01ce2a1d71dc072acbba4c6fd25a1087cd7f153f4ec0ce37e1ede";

const offer = (name: string, size: number | null, mode: number | null, resumable: boolean) =>
  json({ name, size, mode, resumable });

/**
 * Valid record plaintexts, one record each, that reach every service:
 * requests, calls, uploads, downloads, chat; and a few the server must refuse.
 */
const SEEDS: readonly (readonly Fragment[])[] = [
  [f(0x10, 1, "hello")],
  [f(0x90, 2, "hel"), f(0x10, 2, "lo")],
  [f(0x10, 3, "a"), f(0x10, 4, "b")],
  [f(0x10, 0, "id zero")],
  [f(0x10, 0xffffffff, "")],
  [f(0x12, 5, encodeCall({ function: "echo", params: { when: "now" }, message: utf8("x") }))],
  [f(0x12, 5, encodeCall({ function: "missing", params: {}, message: utf8("") }))],
  [f(0x20, 6, offer("fuzz.txt", 5, 0o644, true))],
  [f(0x22, 6, json({ offset: 0 }))],
  [f(0x23, 6, "hello")],
  [f(0x24, 6, json({ size: 5, sha256: HELLO_SHA256 }))],
  [f(0x26, 6, json({}))],
  // A whole upload, a whole chat session: mutations then reach their later steps.
  [
    f(0x20, 6, offer("fuzz.txt", 5, 0o644, true)),
    f(0x22, 6, json({ offset: 0 })),
    f(0x23, 6, "hello"),
    f(0x24, 6, json({ size: 5, sha256: HELLO_SHA256 })),
  ],
  [
    f(0x20, 17, offer("big.bin", 100_000, null, true)),
    f(0x22, 17, json({ offset: 0 })),
    f(0x23, 17, new Uint8Array(60_000)),
    f(0x23, 17, new Uint8Array(5_000)),
  ],
  [f(0x30, 7, json({ room: "fuzz", display: "fuzzer" }))],
  [
    f(0x30, 7, json({ room: "fuzz", display: "fuzzer" })),
    f(0x33, 7, new Uint8Array(100).fill(0x42)),
    f(0x36, 7, json({})),
  ],
  [f(0x33, 7, new Uint8Array(200).fill(0x41))],
  [f(0x40, 8, json({ path: "hello.txt", offset: 0, prefix_sha256: null }))],
  [f(0x40, 8, json({ path: "hello.txt", offset: 2, prefix_sha256: HE_SHA256 }))],
  [f(0x45, 9, json({ path: "" }))],
  // Paths that must not escape the inbox or the served folder (the server's
  // home, with its private key, is ../server from the served folder).
  [f(0x20, 13, offer("../escape.txt", 2, null, false)), f(0x22, 13, json({ offset: 0 }))],
  [f(0x20, 13, offer("/tmp/abs.txt", null, null, false))],
  [f(0x20, 13, offer("a/../../up.txt", 2, 0o7777, true))],
  [f(0x40, 14, json({ path: "../server/id_ovtp", offset: 0, prefix_sha256: null }))],
  [f(0x40, 14, json({ path: "/etc/passwd", offset: 0, prefix_sha256: null }))],
  [f(0x45, 15, json({ path: "../server" }))],
  [f(0x30, 16, json({ room: "..", display: "x" }))],
  // Messages only a server sends, an unknown type, a bulk notice with no bulk record.
  [f(0x01, 0, json({ protocol: 1 }))],
  [f(0x11, 1, new Uint8Array([2, 0x6f, 0x6b]))],
  [f(0x55, 10, "unknown type")],
  [bulkNotice(11, 0x10, 5)],
];

/** A structured change to one fragment of a record (`which` picks it). */
type FragmentEdit =
  | { part: "body"; which: number; mutations: Mutation[] }
  | { part: "type"; which: number; type: number }
  | { part: "id"; which: number; id: number }
  | { part: "continues"; which: number };

function edit(fragments: readonly Fragment[], edits: readonly FragmentEdit[]): Fragment[] {
  const out = fragments.map((fragment) => ({ ...fragment }));
  for (const change of edits) {
    const target = out[Math.floor(change.which * out.length)];
    if (change.part === "body") {
      const body = applyMutations(target.body, change.mutations);
      target.body = body.subarray(0, 0xffff);
    } else if (change.part === "type") target.type = change.type;
    else if (change.part === "id") target.id = change.id;
    else target.type ^= 0x80;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The attacks as data.

/** One thing an attacker does on an established channel. */
export type RecordStep =
  /** A correctly encrypted record of any plaintext (mutated fragments). */
  | { kind: "record"; plaintext: Uint8Array }
  /** A record whose frame (or re-framed ciphertext) is mutated after encryption. */
  | { kind: "tampered"; plaintext: Uint8Array; mutations: Mutation[]; bodyOnly: boolean }
  /** One of the frames written earlier on this connection, again. */
  | { kind: "replay"; which: number }
  /** A bulk notice announcing `announced` bytes, then a bulk record of `actual`. */
  | {
    kind: "bulk";
    type: number;
    announced: number;
    actual: number;
    /** Mutates one of the three writes: 0 the record, 1 the bulk ciphertext, 2 its tag. */
    damage?: { chunk: number; mutations: Mutation[] };
  }
  /** Bytes written straight to the socket, outside any record. */
  | { kind: "raw"; bytes: Uint8Array }
  /** A genuine record's frame cut short; nothing more is written. */
  | { kind: "truncated"; plaintext: Uint8Array; keep: number }
  /** Shuts the write side; the server sees the end of the stream. */
  | { kind: "half-close" };

/** One hostile connection. */
export type Attack =
  | { shape: "a"; bodyOnly: boolean; mutations: Mutation[] }
  | { shape: "b"; bodyOnly: boolean; mutations: Mutation[]; as: "authorized" | "stranger" }
  | { shape: "c"; steps: RecordStep[] }
  | { shape: "d"; who: "stranger" | "expired"; read: boolean; steps: RecordStep[] }
  | { shape: "e"; raw: RawAttack; hold: boolean }
  | PartsAttack
  | ChatAttack
  | UploadsAttack;

/** Shape e: a connection that never completes a handshake. */
export type RawAttack =
  | { kind: "junk"; bytes: Uint8Array }
  | { kind: "prefix"; length: number; bodyBytes: number }
  | { kind: "slow"; pieces: number; delayMs: number; stopAt: number; halfClose: boolean }
  | { kind: "half-close"; keep: number }
  | { kind: "silent"; ms: number };

const seedRecords = fc.array(fc.constantFrom(...SEEDS), { minLength: 1, maxLength: 3 })
  .map((list) => list.flat());
const fragmentEdit: fc.Arbitrary<FragmentEdit> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      part: fc.constant("body" as const),
      which: position,
      mutations: damageList,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      part: fc.constant("type" as const),
      which: position,
      type: fc.oneof(fc.constantFrom(0, 0x10, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 255 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      part: fc.constant("id" as const),
      which: position,
      id: fc.constantFrom(0, 1, 2, 4, 6, 7, 17, 0xffffffff),
    }),
  },
  { weight: 1, arbitrary: fc.record({ part: fc.constant("continues" as const), which: position }) },
);
// Intact records, records with structured edits (bodies mutated, headers
// changed but consistent), byte-level mutations (headers broken), noise.
const plaintext: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: seedRecords.map(render) },
  {
    weight: 4,
    arbitrary: fc.tuple(seedRecords, fc.array(fragmentEdit, { minLength: 1, maxLength: 3 }))
      .map(([fragments, edits]) => render(edit(fragments, edits))),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(seedRecords, damageList).map(([fragments, list]) =>
      applyMutations(render(fragments), list)
    ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
);
const bulkSize = fc.oneof(
  fc.constantFrom(0, 1, 5, 16, 65_512, 65_536, 1_048_576),
  fc.integer({ min: 0, max: 70_000 }),
);
// Raw frames inside the encrypted stream: bare headers, bodies shorter than a
// tag, the largest frame, a header promising more than follows.
const rawRecordBytes = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 300 }),
  fc.constantFrom(
    new Uint8Array([0, 0]),
    new Uint8Array([0, 5, 1, 2, 3, 4, 5]),
    new Uint8Array([0, 15, ...new Uint8Array(15)]),
    new Uint8Array([0xff, 0xff]),
    concat(new Uint8Array([0xff, 0xff]), new Uint8Array(1000)),
    concat(new Uint8Array([0xff, 0xff]), new Uint8Array(65_535).fill(0xa5)),
  ),
);

const bulkTypes = fc.constantFrom(0x10, 0x12, 0x23, 0x33, 0x55);

/** Steps the server may well survive: records of any plaintext, matching bulk records. */
const openingStep: fc.Arbitrary<RecordStep> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("record" as const), plaintext }) },
  {
    weight: 1,
    arbitrary: fc.tuple(bulkTypes, bulkSize).map(([type, size]) => ({
      kind: "bulk" as const,
      type,
      announced: size,
      actual: size,
    })),
  },
);

/** Steps that break the channel: the server must close the connection. */
const breakingStep: fc.Arbitrary<RecordStep> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("tampered" as const),
      plaintext: seedRecords.map(render),
      mutations: damageList,
      bodyOnly: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("replay" as const), which: position }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("bulk" as const),
      type: bulkTypes,
      announced: bulkSize,
      actual: bulkSize,
      damage: fc.option(
        fc.record({ chunk: fc.integer({ min: 0, max: 2 }), mutations: damageList }),
        { nil: undefined },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("raw" as const), bytes: rawRecordBytes }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("truncated" as const), plaintext, keep: position }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "half-close" as const }) },
);

/**
 * Records first, then (three times in four) one step that breaks the
 * channel: a broken step ends the connection, so anything after it would
 * never be read.
 */
const recordSteps: fc.Arbitrary<RecordStep[]> = fc.tuple(
  fc.array(openingStep, { minLength: 1, maxLength: 5 }),
  fc.option(breakingStep, { freq: 4, nil: undefined }),
).map(([opening, last]) => last ? [...opening, last] : opening);

const rawAttack: fc.Arbitrary<RawAttack> = fc.oneof(
  fc.record({ kind: fc.constant("junk" as const), bytes: fc.uint8Array({ maxLength: 4096 }) }),
  fc.record({
    kind: fc.constant("prefix" as const),
    length: fc.constantFrom(0, 1, 15, 16, 1215, 1216, 1217, 65_535),
    bodyBytes: fc.constantFrom(0, 1, 100, 1216, 65_535),
  }),
  fc.record({
    kind: fc.constant("slow" as const),
    pieces: fc.integer({ min: 2, max: 12 }),
    delayMs: fc.integer({ min: 0, max: 10 }),
    stopAt: position,
    halfClose: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("half-close" as const), keep: position }),
  fc.record({ kind: fc.constant("silent" as const), ms: fc.integer({ min: 0, max: 30 }) }),
);

/** One arbitrary per shape, in the order of SHAPES. */
const ALL_SHAPES: fc.Arbitrary<Attack>[] = [
  fc.record({ shape: fc.constant("a" as const), bodyOnly: fc.boolean(), mutations: damageList }),
  fc.record({
    shape: fc.constant("b" as const),
    bodyOnly: fc.boolean(),
    mutations: damageList,
    as: fc.constantFrom("authorized" as const, "stranger" as const),
  }),
  fc.record({
    shape: fc.constant("c" as const),
    steps: recordSteps,
  }),
  fc.record({
    shape: fc.constant("d" as const),
    who: fc.constantFrom("stranger" as const, "expired" as const),
    read: fc.boolean(),
    steps: fc.array(fc.oneof(openingStep, breakingStep), { maxLength: 2 }),
  }),
  fc.record({ shape: fc.constant("e" as const), raw: rawAttack, hold: fc.boolean() }),
  partsAttack,
  chatAttack,
  uploadsAttack,
];

/** Any attack of the given shapes, each shape equally likely. */
export function attackOf(shapes: readonly Shape[] = SHAPES): fc.Arbitrary<Attack> {
  return fc.oneof(...ALL_SHAPES.filter((_, i) => shapes.includes(SHAPES[i])));
}

/** Any attack, the shapes equally likely. */
export const attack: fc.Arbitrary<Attack> = attackOf();

/** An attack as one line of JSON, bytes in hex, for failure reports. */
export function describeAttack(value: Attack): string {
  return JSON.stringify(value, (_key, v) => v instanceof Uint8Array ? hex(v) : v);
}

/** Bytes as `hex:...`; long runs of one byte value are shortened to `{N x BB}`. */
function hex(bytes: Uint8Array): string {
  let out = "hex:";
  for (let i = 0; i < bytes.length;) {
    let run = 1;
    while (i + run < bytes.length && bytes[i + run] === bytes[i]) run++;
    const byte = bytes[i].toString(16).padStart(2, "0");
    out += run >= 8 ? `{${run} x ${byte}}` : byte.repeat(run);
    i += run;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Performing them.

/** How long an attack waits for the server's reaction before it closes. */
const REACTION_MS = 100;
/** How long a record attack waits for more after the server went quiet. */
const QUIET_MS = 30;
/** How long the server may take to close a refused client's connection. */
const REFUSAL_CLOSE_MS = 2_000;

/**
 * Performs one attack on a fresh connection. Returns a function that closes
 * it: at once, except for a raw attack with `hold` set, whose connection
 * stays open (a stalled handshake) until the caller has checked that the
 * server serves others meanwhile.
 */
export async function performAttack(
  context: AttackContext,
  value: Attack,
): Promise<() => void> {
  // These open connections of their own, and close them.
  if (value.shape === "f" || value.shape === "g" || value.shape === "h") {
    if (value.shape === "f") await performParts(context, value);
    else if (value.shape === "g") await performChat(context, value);
    else await performUploads(context, value);
    return ignore;
  }
  const conn = await Deno.connect({ hostname: context.hostname, port: context.port });
  conn.setNoDelay(true);
  const tap = new TappedConn(conn);
  let hold = false;
  try {
    switch (value.shape) {
      case "a":
        await mutatedFirstMessage(context, tap, value);
        break;
      case "b":
        await mutatedThirdMessage(context, tap, value);
        break;
      case "c":
        await afterHandshake(tap, await handshake(tap, context.authorized), value.steps);
        break;
      case "d":
        await unauthorized(context, tap, value);
        break;
      case "e":
        await raw(context, tap, value.raw);
        hold = value.hold;
        break;
    }
  } finally {
    if (!hold) tap.close();
  }
  return () => tap.close();
}

async function mutatedFirstMessage(
  context: AttackContext,
  tap: TappedConn,
  value: { bodyOnly: boolean; mutations: Mutation[] },
): Promise<void> {
  const frame = await firstMessage(context.authorized);
  await tap.writeRaw(damage(frame, value.bodyOnly, value.mutations)).catch(ignore);
  // Message 2 is 1298 bytes: no need to wait once it is here.
  await tap.drainRaw(REACTION_MS, 1298);
}

async function mutatedThirdMessage(
  context: AttackContext,
  tap: TappedConn,
  value: { bodyOnly: boolean; mutations: Mutation[]; as: "authorized" | "stranger" },
): Promise<void> {
  // The channel writes message 1, then message 3: damage the second write.
  tap.rewrite = (chunk, index) =>
    index === 1 ? damage(chunk, value.bodyOnly, value.mutations) : chunk;
  const identity = value.as === "authorized" ? context.authorized : context.stranger;
  const channel = await SecureChannel.initiate(tap, {
    identity,
    handshakeTimeoutMs: 2_000,
  }).catch(() => undefined);
  tap.rewrite = undefined;
  // The server closes, or (when the damage happened to be harmless) welcomes.
  if (channel) await receiveWithin(channel, REACTION_MS);
}

async function unauthorized(
  context: AttackContext,
  tap: TappedConn,
  value: { who: "stranger" | "expired"; read: boolean; steps: RecordStep[] },
): Promise<void> {
  const channel = await handshake(tap, context[value.who]);
  if (value.read) {
    const expected = value.who === "stranger" ? "not-authorized" : "key-expired";
    const record = await receiveWithin(channel, REFUSAL_CLOSE_MS);
    if (!(record instanceof Uint8Array)) {
      throw new AttackFailure(`Expected an Error "${expected}" record, got ${String(record)}`);
    }
    const messages = new MessageAssembler(1 << 20).push(record);
    const first = messages[0];
    if (
      messages.length !== 1 || !("body" in first) || first.type !== MessageType.Error ||
      first.id !== 0 || decodeJson(first.body).code !== expected
    ) {
      throw new AttackFailure(`Expected one Error "${expected}", got ${describeRecord(record)}`);
    }
    const after = await receiveWithin(channel, REFUSAL_CLOSE_MS);
    if (after instanceof Uint8Array || after === "timeout") {
      throw new AttackFailure(
        `The server did not close a refused client's connection: ${
          after === "timeout" ? `still open after ${REFUSAL_CLOSE_MS} ms` : "it sent more"
        }`,
      );
    }
  }
  await afterHandshake(tap, channel, value.steps);
}

async function afterHandshake(
  tap: TappedConn,
  channel: SecureChannel,
  steps: RecordStep[],
): Promise<void> {
  // Read whatever the server sends, concurrently, until it closes.
  let lastActivity = Date.now();
  let closed = false;
  let leaked = false;
  const reading = (async () => {
    try {
      for (let record; (record = await channel.receive()) !== null;) {
        lastActivity = Date.now();
        if (includes(record, PRIVATE_KEY_LABEL)) leaked = true;
      }
    } catch {
      // A record this side cannot read (a bulk record): stop reading.
    }
    closed = true;
  })();
  try {
    for (const step of steps) {
      if (closed) break;
      await performStep(tap, channel, step);
      lastActivity = Date.now();
    }
  } catch {
    // The server closed the connection under a write: expected.
  }
  const deadline = Date.now() + 8 * REACTION_MS;
  while (!closed && Date.now() < deadline && Date.now() - lastActivity < QUIET_MS) {
    await sleep(5);
  }
  channel.close();
  await reading;
  if (leaked) throw new AttackFailure("The server sent its private key file");
}

/** What the server's id_ovtp starts with; no record may ever carry it. */
const PRIVATE_KEY_LABEL = utf8("ovtp1-private");

function includes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

async function performStep(
  tap: TappedConn,
  channel: SecureChannel,
  step: RecordStep,
): Promise<void> {
  switch (step.kind) {
    case "record":
      return await channel.send(clip(step.plaintext));
    case "tampered":
      tap.rewrite = (chunk) => damage(chunk, step.bodyOnly, step.mutations);
      try {
        return await channel.send(clip(step.plaintext));
      } finally {
        tap.rewrite = undefined;
      }
    case "replay": {
      const earlier = tap.written[Math.floor(step.which * (tap.written.length - 1))];
      return await tap.writeRaw(earlier);
    }
    case "bulk": {
      const start = tap.writes;
      const { damage: hurt } = step;
      tap.rewrite = (chunk, index) =>
        hurt && index - start === hurt.chunk ? applyMutations(chunk, hurt.mutations) : chunk;
      try {
        const body = new Uint8Array(Math.min(step.actual, 1_048_576)).fill(0x5a);
        return await channel.send(render([bulkNotice(12, step.type, step.announced)]), [body]);
      } finally {
        tap.rewrite = undefined;
      }
    }
    case "raw":
      return await tap.writeRaw(step.bytes);
    case "truncated": {
      tap.rewrite = (chunk) => chunk.subarray(0, Math.floor(step.keep * chunk.length));
      try {
        await channel.send(clip(step.plaintext));
      } finally {
        tap.rewrite = undefined;
      }
      // The peer must see the stream stop inside the frame.
      return tap.stopWriting();
    }
    case "half-close":
      return await tap.closeWrite();
  }
}

async function raw(context: AttackContext, tap: TappedConn, value: RawAttack): Promise<void> {
  switch (value.kind) {
    case "junk":
      await tap.writeRaw(value.bytes).catch(ignore);
      return void await tap.drainRaw(REACTION_MS);
    case "prefix": {
      const header = new Uint8Array([value.length >> 8, value.length & 0xff]);
      const body = new Uint8Array(Math.min(value.bodyBytes, value.length)).fill(0x42);
      await tap.writeRaw(concat(header, body)).catch(ignore);
      return void await tap.drainRaw(REACTION_MS, 1298);
    }
    case "slow": {
      const frame = await firstMessage(context.authorized);
      const end = Math.floor(value.stopAt * frame.length);
      const piece = Math.ceil(frame.length / value.pieces);
      try {
        for (let at = 0; at < end; at += piece) {
          await tap.writeRaw(frame.subarray(at, Math.min(at + piece, end)));
          await sleep(value.delayMs);
        }
        if (value.halfClose) await tap.closeWrite();
      } catch {
        // Closed by the server.
      }
      return void await tap.drainRaw(REACTION_MS, 1298);
    }
    case "half-close": {
      const frame = await firstMessage(context.authorized);
      await tap.writeRaw(frame.subarray(0, Math.ceil(value.keep * frame.length))).catch(ignore);
      await tap.closeWrite().catch(ignore);
      // The server must notice the end of the stream and close its side.
      return void await tap.drainRaw(4 * REACTION_MS);
    }
    case "silent":
      return await sleep(value.ms);
  }
}

/** A genuine message 1 frame (fresh ephemeral keys). */
async function firstMessage(identity: Identity): Promise<Uint8Array> {
  const state = await HandshakeState.create({
    pattern: XX_HFS,
    initiator: true,
    cipher: "ChaChaPoly",
    prologue: PROLOGUE,
    staticKey: { privateKey: identity.x25519Private, publicKey: identity.publicKey.x25519 },
  });
  return encodeFrame(await state.writeMessage(new Uint8Array(0)));
}

/** Mutates a frame whole, or only its body and frames the result again. */
function damage(frame: Uint8Array, bodyOnly: boolean, list: Mutation[]): Uint8Array {
  if (!bodyOnly) return applyMutations(frame, list);
  return encodeFrame(clip(applyMutations(frame.subarray(2), list), 65_535));
}

/** At most one record's plaintext. */
function clip(bytes: Uint8Array, max = 65_519): Uint8Array {
  return bytes.length > max ? bytes.subarray(0, max) : bytes;
}

function describeRecord(record: Uint8Array): string {
  const hex = Array.from(record.subarray(0, 64), (b) => b.toString(16).padStart(2, "0"));
  return `${record.length} bytes: ${hex.join("")}${record.length > 64 ? "..." : ""}`;
}
