/**
 * Application messages: decrypted record plaintext is authenticated, but
 * only as coming from the peer, who may be hostile (any client a server
 * authorized, any server a client connects to). Reassembly must follow
 * docs/protocol.md section 6 exactly, and every decoder and body check must
 * return a well-formed value or throw MessageError, never crash or pass on a
 * value of the wrong shape for the caller to trip over.
 */

import fc from "fast-check";
import { posix } from "node:path";
import { MAX_BULK_PLAINTEXT } from "../../lib/channel/channel.ts";
import {
  checkJoin,
  checkJoined,
  checkPresence,
  isValidDisplay,
  type Member,
  ROOM_PATTERN,
} from "../../lib/services/chat/chat_messages.ts";
import { type CallBody, decodeCall, encodeCall } from "../../lib/services/function_call.ts";
import {
  decodeJson,
  decodeResponse,
  encodeJson,
  encodeResponse,
  type Message,
  MessageError,
} from "../../lib/channel/messages.ts";
import {
  checkDownloadEnd,
  checkGet,
  checkInfo,
  checkListResult,
} from "../../lib/services/transfer/download_messages.ts";
import {
  checkAccept,
  checkEnd,
  checkOffer,
  checkResult,
  checkStart,
} from "../../lib/services/transfer/engine.ts";
import { type FuzzTarget, fuzzTarget, parsesOrRejects } from "../_target.ts";
import { applyMutations, mutatedText, mutations } from "../_mutate.ts";
import {
  MAX_COMPONENT_LENGTH,
  MAX_DEPTH,
  safeRelativePath,
} from "../../lib/services/transfer/inbox.ts";
import {
  type BulkNotice,
  FRAGMENT_HEADER_LENGTH,
  isBulkNotice,
  MessageAssembler,
  writeBulkNotice,
  writeFragment,
} from "../../lib/channel/connection.ts";

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

// Bodies are views of one patterned block: generating their bytes one by one
// would dominate the run time, and reassembly only moves them.
const BLOCK = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 13 + (i >> 9)) & 0xff);

function blockBody(min: number, max: number): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.integer({ min, max }), fc.nat(BLOCK.length - max))
    .map(([n, from]) => BLOCK.subarray(from, from + n));
}

// ---------------------------------------------------------------------------
// Reassembly
// ---------------------------------------------------------------------------

type Item = Message | BulkNotice;

/**
 * docs/protocol.md section 6, written from the text: what a receiver makes
 * of each record, or null where the record is a protocol error (after
 * which nothing more is read).
 */
class ReferenceAssembler {
  #partial = new Map<number, { type: number; parts: Uint8Array[]; size: number }>();
  #held = 0;
  constructor(readonly maxSize: number, readonly maxPartial: number) {}

  push(record: Uint8Array): Item[] | null {
    if (record.length === 0) return null;
    const items: Item[] = [];
    let at = 0;
    while (at < record.length) {
      if (record.length - at < 7) return null;
      const raw = record[at];
      const id = ((record[at + 1] << 24) >>> 0) + (record[at + 2] << 16) + (record[at + 3] << 8) +
        record[at + 4];
      const length = (record[at + 5] << 8) + record[at + 6];
      if (at + 7 + length > record.length) return null;
      const body = record.subarray(at + 7, at + 7 + length);
      at += 7 + length;
      const type = raw & 0x7f;
      const continues = raw >= 0x80;
      const partial = this.#partial.get(id);
      if (type === 0) return null;
      if (type === 0x7f) {
        if (partial || continues || length !== 5) return null;
        const size = ((body[1] << 24) >>> 0) + (body[2] << 16) + (body[3] << 8) + body[4];
        if (body[0] === 0 || body[0] >= 0x7f) return null;
        if (size > Math.min(this.maxSize, MAX_BULK_PLAINTEXT)) return null;
        items.push({ type: body[0], id, bulkSize: size });
        continue;
      }
      if (partial && partial.type !== type) return null;
      const size = (partial?.size ?? 0) + length;
      if (size > this.maxSize) return null;
      if (continues) {
        // A continued fragment carries at least one byte (issue 11).
        if (length === 0) return null;
        if (!partial && this.#partial.size >= this.maxPartial) return null;
        // All messages in progress together hold at most one message's limit.
        if (this.#held + length > this.maxSize) return null;
        this.#held += length;
        if (partial) {
          partial.parts.push(body);
          partial.size = size;
        } else this.#partial.set(id, { type, parts: [body], size });
        continue;
      }
      this.#partial.delete(id);
      this.#held -= partial?.size ?? 0;
      const parts = [...(partial?.parts ?? []), body];
      const joined = new Uint8Array(size);
      let offset = 0;
      for (const part of parts) {
        joined.set(part, offset);
        offset += part.length;
      }
      items.push({ type, id, body: joined });
    }
    return items;
  }
}

function sameItem(a: Item, b: Item): boolean {
  if (a.type !== b.type || a.id !== b.id) return false;
  if (isBulkNotice(a) || isBulkNotice(b)) {
    return isBulkNotice(a) && isBulkNotice(b) && a.bulkSize === b.bulkSize;
  }
  return equalBytes(a.body, b.body);
}

function describe(item: Item): string {
  return isBulkNotice(item)
    ? `notice ${item.type}/${item.id}/${item.bulkSize}`
    : `message ${item.type}/${item.id}/${item.body.length}`;
}

/** A message as a sender might split it: fragments of arbitrary sizes, or a bulk notice. */
interface Planned {
  message: Message;
  bulk: boolean;
  fragments: Uint8Array[];
}

function fragmentsOf(message: Message, bulk: boolean, cuts: number[]): Uint8Array[] {
  if (bulk) {
    const notice = new Uint8Array(FRAGMENT_HEADER_LENGTH + 5);
    writeBulkNotice(notice, 0, message);
    return [notice];
  }
  // writeFragment() takes as much of the body as fits its record: records
  // cut to the chosen piece sizes make the pieces.
  const points = [...new Set(cuts.map((c) => Math.floor(c * message.body.length)))]
    .filter((p) => p > 0).sort((a, b) => a - b);
  const fragments: Uint8Array[] = [];
  let offset = 0;
  for (const end of [...points, message.body.length]) {
    // A piece above MAX_FRAGMENT_BODY takes several fragments.
    do {
      const fragment = new Uint8Array(FRAGMENT_HEADER_LENGTH + end - offset);
      const taken = writeFragment(fragment, 0, message, offset);
      fragments.push(fragment.subarray(0, FRAGMENT_HEADER_LENGTH + taken));
      offset += taken;
    } while (offset < end);
  }
  return fragments;
}

const plannedMessage = fc.record({
  type: fc.integer({ min: 1, max: 0x7e }),
  body: fc.oneof({ weight: 6, arbitrary: blockBody(0, 200) }, {
    weight: 1,
    arbitrary: blockBody(0, 70_000),
  }),
  bulk: fc.boolean(),
  cuts: fc.array(fraction, { maxLength: 4 }),
});

/**
 * A valid conversation: messages with distinct ids, split into fragments,
 * interleaved (each message's fragments in order), and packed into records.
 * Returns the records and the items a receiver must yield, in order.
 */
const conversation = fc.tuple(
  fc.uniqueArray(fc.oneof(fc.nat(8), fc.constant(0xffffffff), fc.nat()), {
    minLength: 1,
    maxLength: 6,
  }),
  fc.array(plannedMessage, { minLength: 6, maxLength: 6 }),
  fc.array(fc.nat(), { maxLength: 40 }),
  fc.array(fraction, { maxLength: 8 }),
).map(([ids, specs, picks, recordCuts]) => {
  const planned: Planned[] = ids.map((id, i) => {
    const { type, body, bulk, cuts } = specs[i];
    const message = { type, id, body };
    return { message, bulk, fragments: fragmentsOf(message, bulk, cuts) };
  });
  // Interleave: repeatedly take the next fragment of a message still going.
  const queues = planned.map((p) => ({ p, next: 0 }));
  const order: Uint8Array[] = [];
  const expected: Item[] = [];
  let open = 0;
  let peakOpen = 0;
  // Bytes held in continued fragments of every message in progress.
  let held = 0;
  let peakHeld = 0;
  for (let k = 0; queues.length > 0; k++) {
    const q = queues[(picks[k] ?? 0) % queues.length];
    const fragment = q.p.fragments[q.next++];
    order.push(fragment);
    if (q.next === 1 && q.p.fragments.length > 1) peakOpen = Math.max(peakOpen, ++open);
    if (q.next < q.p.fragments.length) {
      held += fragment.length - FRAGMENT_HEADER_LENGTH;
      peakHeld = Math.max(peakHeld, held);
    }
    if (q.next === q.p.fragments.length) {
      if (q.p.fragments.length > 1) open--;
      held -= q.p.fragments.slice(0, -1)
        .reduce((n, f) => n + f.length - FRAGMENT_HEADER_LENGTH, 0);
      const { type, id, body } = q.p.message;
      expected.push(q.p.bulk ? { type, id, bulkSize: body.length } : q.p.message);
      queues.splice(queues.indexOf(q), 1);
    }
  }
  // Pack whole fragments into records (each at least one).
  const records: Uint8Array[] = [];
  const cutPoints = new Set(recordCuts.map((c) => 1 + Math.floor(c * (order.length - 1))));
  let from = 0;
  for (let i = 1; i <= order.length; i++) {
    if (i === order.length || cutPoints.has(i)) {
      const parts = order.slice(from, i);
      const record = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const part of parts) {
        record.set(part, at);
        at += part.length;
      }
      records.push(record);
      from = i;
    }
  }
  const maxSize = Math.max(peakHeld, ...planned.map((p) => p.message.body.length));
  return { records, expected, maxSize, peakOpen };
});

function pushAll(assembler: MessageAssembler, records: Uint8Array[]): Item[] {
  return records.flatMap((record) => assembler.push(record));
}

// Valid input, with both limits set as tight as the conversation allows:
// the messages come out whole, in the order their last fragments arrived.
const assemblerValid = fuzzTarget(
  "messages/assembler-valid",
  fc.property(conversation, ({ records, expected, maxSize, peakOpen }) => {
    const actual = pushAll(new MessageAssembler(maxSize, Math.max(1, peakOpen)), records);
    check(actual.length === expected.length, `${actual.length} items, expected ${expected.length}`);
    actual.forEach((item, i) =>
      check(sameItem(item, expected[i]), `${describe(item)}, expected ${describe(expected[i])}`)
    );
  }),
);

// Damaged records and random limits: the same items as the reference, record
// by record, and a MessageError exactly where the reference finds a
// protocol error.
const assemblerDamaged = fuzzTarget(
  "messages/assembler-damaged",
  fc.property(
    conversation,
    fc.array(fc.tuple(fraction, fc.oneof(mutations, fc.uint8Array({ maxLength: 40 }))), {
      minLength: 1,
      maxLength: 3,
    }),
    fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 80_000 })),
    fc.integer({ min: 0, max: 4 }),
    ({ records, maxSize, peakOpen }, damage, sizeLimit, partialLimit) => {
      const wire = records.slice();
      for (const [at, change] of damage) {
        const i = Math.floor(at * wire.length);
        if (change instanceof Uint8Array) wire.splice(i, 0, change);
        else wire[i] = applyMutations(wire[i], change);
      }
      const max = sizeLimit ?? maxSize;
      const maxPartial = partialLimit || Math.max(1, peakOpen);
      const assembler = new MessageAssembler(max, maxPartial);
      const reference = new ReferenceAssembler(max, maxPartial);
      for (const [n, record] of wire.entries()) {
        const expected = reference.push(record);
        const actual = parsesOrRejects(() => assembler.push(record), MessageError);
        check(
          (actual === undefined) === (expected === null),
          `Record ${n}: ${actual ? "accepted" : "refused"}, the reference ${
            expected ? "accepts" : "refuses"
          }`,
        );
        if (!actual || !expected) return;
        check(actual.length === expected.length, `Record ${n}: ${actual.length} items`);
        actual.forEach((item, i) =>
          check(sameItem(item, expected[i]), `${describe(item)}, expected ${describe(expected[i])}`)
        );
      }
    },
  ),
);

// ---------------------------------------------------------------------------
// Response and Call bodies
// ---------------------------------------------------------------------------

const status = fc.stringMatching(/^[a-z][a-z0-9-]{0,63}$/);

// decodeResponse(): the encoding is canonical, so any body it accepts must
// re-encode to the same bytes; a valid one must round-trip.
const responses = fuzzTarget(
  "messages/response",
  fc.property(
    status,
    fc.uint8Array({ maxLength: 40 }),
    fc.option(mutations, { freq: 6 }),
    (s, response, damage) => {
      const valid = encodeResponse({ status: s, response });
      const body = damage ? applyMutations(valid, damage) : valid;
      const decoded = parsesOrRejects(() => decodeResponse(body), MessageError);
      if (!damage) {
        check(decoded?.status === s && equalBytes(decoded.response, response), "Round trip");
      }
      if (decoded) {
        check(equalBytes(encodeResponse(decoded), body), "Accepted a non-canonical body");
      }
    },
  ),
);

const FUNCTION_NAME = /^[A-Za-z0-9._-]{1,64}$/;

function isCall(value: CallBody, body: Uint8Array): boolean {
  return typeof value.function === "string" && FUNCTION_NAME.test(value.function) &&
    typeof value.params === "object" && value.params !== null && !Array.isArray(value.params) &&
    Object.values(value.params).every((v) => typeof v === "string") &&
    value.message instanceof Uint8Array &&
    equalBytes(value.message, body.subarray(body.length - value.message.length));
}

/** A Call body with `header` as its JSON text. */
function callWithHeader(header: string, message: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(2 + json.length + message.length);
  out[0] = json.length >> 8;
  out[1] = json.length & 0xff;
  out.set(json, 2);
  out.set(message, 2 + json.length);
  return out;
}

const callBody = fc.record({
  function: fc.stringMatching(FUNCTION_NAME),
  params: fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 4 }).map((entries) =>
    Object.fromEntries(entries)
  ),
  message: fc.uint8Array({ maxLength: 32 }),
});

// decodeCall(): a valid Call round-trips; a damaged one, or one whose header
// is any JSON at all, decodes to a well-formed call or throws MessageError.
const calls = fuzzTarget(
  "messages/call",
  fc.property(
    fc.oneof(
      callBody.map((call) => ({ call, body: encodeCall(call) })),
      fc.tuple(callBody, mutations).map(([call, list]) => ({
        call: undefined,
        body: applyMutations(encodeCall(call), list),
      })),
      fc.tuple(fc.jsonValue(), fc.uint8Array({ maxLength: 8 })).map(([header, message]) => ({
        call: undefined,
        body: callWithHeader(JSON.stringify(header) ?? "", message),
      })),
    ),
    ({ call, body }) => {
      const decoded = parsesOrRejects(() => decodeCall(body), MessageError);
      if (decoded) check(isCall(decoded, body), "Decoded a malformed call");
      if (call) {
        check(
          decoded !== undefined && decoded.function === call.function &&
            JSON.stringify(decoded.params) === JSON.stringify(call.params) &&
            equalBytes(decoded.message, call.message),
          "A valid call did not round-trip",
        );
      }
    },
  ),
);

// ---------------------------------------------------------------------------
// JSON control bodies
// ---------------------------------------------------------------------------

const HEX64 = /^[0-9a-f]{64}$/;
const hex64 = fc.stringMatching(HEX64);
const count = fc.oneof(fc.nat(1000), fc.maxSafeNat());

function isCount(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}
function isString(v: unknown): v is string {
  return typeof v === "string";
}
function optional(v: unknown, test: (v: unknown) => boolean): boolean {
  return v === undefined || test(v);
}
function isHexOrNull(v: unknown): boolean {
  return v === null || (isString(v) && HEX64.test(v));
}
function isMember(v: unknown): v is Member {
  const m = v as Record<string, unknown>;
  return typeof m === "object" && m !== null && isString(m.name) && isString(m.display) &&
    isString(m.fingerprint) && isString(m.key) && typeof m.online === "boolean";
}

// Validators read fields of values of any shape, testing each field they read.
// deno-lint-ignore no-explicit-any
type Fields = any;

/**
 * One body check: the function, what its declared return type promises
 * (callers read those fields without looking again), and valid bodies.
 */
interface BodyCheck {
  name: string;
  check: (v: Record<string, unknown>) => unknown;
  valid: (v: unknown) => boolean;
  sample: fc.Arbitrary<Record<string, unknown>>;
  /** What `check` returns for a valid body, when not the body itself (a renamed field). */
  parsed?: (v: Fields) => unknown;
}

const member = fc.record({
  name: fc.string(),
  display: fc.string(),
  fingerprint: fc.string(),
  key: fc.string(),
  online: fc.boolean(),
});
const entry = fc.record({
  name: fc.string(),
  type: fc.constantFrom("file", "dir"),
  size: count,
  mode: fc.nat(0o7777),
});

const BODY_CHECKS: BodyCheck[] = [
  {
    name: "checkOffer",
    check: checkOffer,
    valid: (v: Fields) =>
      isString(v.name) && v.name.length > 0 && v.name.length <= 4096 &&
      (v.size === null || isCount(v.size)) &&
      (v.mode === null || (isCount(v.mode) && v.mode <= 0o7777)) &&
      typeof v.resumable === "boolean",
    sample: fc.record({
      name: fc.string({ minLength: 1, maxLength: 100 }),
      size: fc.option(count),
      mode: fc.option(fc.nat(0o7777)),
      resumable: fc.boolean(),
    }),
  },
  {
    name: "checkAccept",
    check: checkAccept,
    valid: (v: Fields) => isCount(v.offset) && isHexOrNull(v.prefix_sha256),
    sample: fc.record({ offset: count, prefix_sha256: fc.option(hex64) }),
  },
  {
    name: "checkStart",
    check: (v) => ({ offset: checkStart(v) }),
    valid: (v: Fields) => isCount(v.offset),
    sample: fc.record({ offset: count }),
  },
  {
    name: "checkEnd",
    check: checkEnd,
    valid: (v: Fields) => isCount(v.size) && isString(v.sha256) && HEX64.test(v.sha256),
    sample: fc.record({ size: count, sha256: hex64 }),
  },
  {
    name: "checkResult",
    check: checkResult,
    valid: (v: Fields) =>
      (v.status === "ok" || v.status === "error") && optional(v.code, isString) &&
      optional(v.message, isString) && optional(v.path, isString) &&
      optional(v.size, isCount) && optional(v.sha256, isString) &&
      optional(v.renamed, (r) => typeof r === "boolean"),
    sample: fc.record({
      status: fc.constantFrom("ok", "error"),
      code: fc.constantFrom("too-large", "no-space", "bad-hash", "io"),
      message: fc.string(),
      path: fc.string(),
      size: count,
      sha256: hex64,
      renamed: fc.boolean(),
    }, { requiredKeys: ["status"] }),
  },
  {
    name: "checkGet",
    check: checkGet,
    valid: (v: Fields) =>
      isString(v.path) && v.path.length <= 4096 && isCount(v.offset) &&
      isHexOrNull(v.prefix_sha256),
    sample: fc.record({ path: fc.string(), offset: count, prefix_sha256: fc.option(hex64) }),
  },
  {
    name: "checkInfo",
    check: checkInfo,
    valid: (v: Fields) =>
      isCount(v.size) && isCount(v.mode) && isCount(v.offset) && v.offset <= v.size,
    sample: fc.tuple(count, fc.nat(0o7777), fraction).map(([size, mode, at]) => ({
      size,
      mode,
      offset: Math.floor(at * size),
    })),
  },
  {
    name: "checkDownloadEnd",
    check: checkDownloadEnd,
    valid: (v: Fields) => isCount(v.size) && isString(v.sha256) && HEX64.test(v.sha256),
    sample: fc.record({ size: count, sha256: hex64 }),
  },
  {
    name: "checkListResult",
    check: checkListResult,
    valid: (v: Fields) =>
      isString(v.path) && Array.isArray(v.entries) &&
      v.entries.every((e: Fields) =>
        typeof e === "object" && e !== null && isString(e.name) &&
        (e.type === "file" || e.type === "dir") && isCount(e.size) && isCount(e.mode)
      ),
    sample: fc.record({ path: fc.string(), entries: fc.array(entry, { maxLength: 3 }) }),
  },
  {
    name: "checkJoin",
    check: checkJoin,
    valid: (v: Fields) =>
      isString(v.room) && ROOM_PATTERN.test(v.room) && !v.room.startsWith(".") &&
      isValidDisplay(v.display) && (v.invite_only === undefined || v.invite_only === true),
    sample: fc.record({
      room: fc.stringMatching(ROOM_PATTERN).filter((room) => !room.startsWith(".")),
      display: fc.string({ minLength: 1, maxLength: 64 }),
      invite_only: fc.constant(true),
    }, { requiredKeys: ["room", "display"] }),
    parsed: (v: Fields) => ({
      room: v.room,
      display: v.display,
      inviteOnly: v.invite_only === true,
    }),
  },
  {
    name: "checkJoined",
    check: checkJoined,
    valid: (v: Fields) => isString(v.room) && Array.isArray(v.members) && v.members.every(isMember),
    sample: fc.record({ room: fc.string(), members: fc.array(member, { maxLength: 3 }) }),
  },
  {
    name: "checkPresence",
    check: checkPresence,
    valid: (v: Fields) => (v.event === "join" || v.event === "leave") && isMember(v.member),
    sample: fc.record({ event: fc.constantFrom("join", "leave"), member }),
  },
];

/** Replaces (or removes) the value at a random path in a JSON-like value. */
function replaceAt(value: unknown, path: number[], replacement: unknown, remove: boolean): unknown {
  if (path.length === 0 || typeof value !== "object" || value === null) return replacement;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? [...value] : {
    ...value as Record<string, unknown>,
  };
  const keys = Object.keys(copy);
  if (keys.length === 0) return copy;
  const key = keys[Math.floor(path[0] * keys.length)];
  const target = copy as Record<string, unknown>;
  if (remove && path.length === 1) delete target[key];
  else target[key] = replaceAt(target[key], path.slice(1), replacement, remove);
  return copy;
}

const bodyCheck = fc.nat(BODY_CHECKS.length - 1).map((i) => BODY_CHECKS[i]);

/** Inputs for one check: valid, with a field changed, damaged JSON bytes, or anything. */
const bodyCase = bodyCheck.chain((c) =>
  fc.tuple(
    fc.constant(c),
    fc.oneof(
      c.sample.map((v) => ({ valid: true, body: encodeJson(v), value: v })),
      fc.tuple(
        c.sample,
        fc.array(fraction, { minLength: 1, maxLength: 3 }),
        fc.oneof(fc.jsonValue(), fc.anything()),
        fc.boolean(),
      ).map(([v, path, replacement, remove]) => {
        const changed = replaceAt(v, path, replacement, remove);
        return { valid: false, body: encodeJson(changed), value: changed };
      }),
      fc.tuple(c.sample, mutations).map(([v, list]) => ({
        valid: false,
        body: applyMutations(encodeJson(v), list),
        value: undefined,
      })),
      fc.object({ maxDepth: 2 }).map((v) => ({ valid: false, body: undefined, value: v })),
    ),
  )
);

// Each body check, fed valid bodies (which must pass unchanged), bodies with
// a field replaced by any value or removed, damaged JSON, and arbitrary
// objects: it returns a value of its declared shape or throws MessageError.
const jsonBodies = fuzzTarget(
  "messages/json-bodies",
  fc.property(bodyCase, ([c, { valid, body, value }]) => {
    // decodeJson() sees the bytes a peer sent; an object fc.anything() made
    // (which JSON cannot carry: undefined, -0 and the like) goes to the check directly.
    const input = body === undefined
      ? value as Record<string, unknown>
      : parsesOrRejects(() => decodeJson(body), MessageError);
    if (input === undefined) {
      check(!valid, "decodeJson() refused a valid body");
      return;
    }
    check(
      typeof input === "object" && input !== null && !Array.isArray(input),
      "decodeJson() returned a non-object",
    );
    const result = parsesOrRejects(() => c.check(input), MessageError);
    if (valid) {
      const expected = c.parsed ? c.parsed(value as Fields) : value;
      check(
        result !== undefined && JSON.stringify(result) === JSON.stringify(expected),
        `${c.name}() did not pass a valid body through`,
      );
    }
    // What passed must have been valid as sent (a renamed field is checked on the input).
    if (result !== undefined) {
      check(c.valid(c.parsed ? input : result), `${c.name}() passed ${JSON.stringify(result)}`);
    }
  }),
);

// A file offer's name comes from the sender and becomes a path in the
// receiver's inbox: whatever it holds, the path must stay inside, be one a
// file system accepts, and sanitizing it again must change nothing.
const fileNames = fuzzTarget(
  "messages/file-names",
  fc.property(
    fc.oneof(
      fc.string({ maxLength: 300, unit: "binary" }),
      mutatedText(["photos/2026/a.jpg", "../../.ssh/authorized_keys", "C:\\x\\nul.txt", "a/./b"]),
    ),
    (name) => {
      const parts = safeRelativePath(name);
      check(parts.length >= 1 && parts.length <= MAX_DEPTH, `${parts.length} components`);
      for (const part of parts) {
        check(part.length >= 1 && part.length <= MAX_COMPONENT_LENGTH, `component "${part}"`);
        check(part !== "." && part !== "..", `component "${part}"`);
        // deno-lint-ignore no-control-regex -- control characters are what is checked
        check(!/[\/\\:\u0000-\u001f\u007f]/.test(part), `component "${part}" has a separator`);
        check(!/[. ]$/.test(part) && part.trim() === part, `component "${part}" ends badly`);
        check(!/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(part), `device name "${part}"`);
      }
      const root = "/inbox/alice";
      const path = posix.join(root, ...parts);
      check(path.startsWith(`${root}/`), `${JSON.stringify(name)} leaves the inbox: ${path}`);
      check(
        JSON.stringify(safeRelativePath(parts.join("/"))) === JSON.stringify(parts),
        `sanitizing ${JSON.stringify(parts)} again changes it`,
      );
    },
  ),
);

export const targets: FuzzTarget[] = [
  assemblerValid,
  assemblerDamaged,
  responses,
  calls,
  jsonBodies,
  fileNames,
];
