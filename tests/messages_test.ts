import assert from "node:assert/strict";
import { MAX_BULK_PLAINTEXT, MAX_RECORD_PLAINTEXT } from "../lib/channel/channel.ts";
import {
  decodeJson,
  decodeResponse,
  encodeJson,
  encodeResponse,
  type Message,
  MessageError,
  MessageType,
} from "../lib/channel/messages.ts";
import {
  BULK_NOTICE,
  BULK_NOTICE_LENGTH,
  encodeFragments,
  FRAGMENT_HEADER_LENGTH,
  MAX_FRAGMENT_BODY,
  MAX_HELD_FRAGMENTS,
  MAX_MESSAGE_FRAGMENTS,
  MessageAssembler,
  writeBulkNotice,
  writeFragment,
} from "../lib/channel/connection.ts";

const CONTINUES = 0x80;

function body(length: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 13 + seed + (i >> 10)) & 0xff);
}

/** A fragment written by hand: type byte, id (u32 BE), length (u16 BE), body. */
function fragment(type: number, id: number, bytes: Uint8Array, length = bytes.length): Uint8Array {
  const out = new Uint8Array(FRAGMENT_HEADER_LENGTH + bytes.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, type);
  view.setUint32(1, id);
  view.setUint16(5, length);
  out.set(bytes, FRAGMENT_HEADER_LENGTH);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function assertMessageError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof MessageError, `expected MessageError, got ${error}`);
    assert.equal(error.name, "MessageError");
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("MAX_FRAGMENT_BODY fills a record exactly with one fragment header", () => {
  assert.equal(FRAGMENT_HEADER_LENGTH, 7);
  assert.equal(MAX_RECORD_PLAINTEXT, 65535 - 16);
  assert.equal(MAX_FRAGMENT_BODY, MAX_RECORD_PLAINTEXT - 7);
});

Deno.test("encodeFragments() writes type, id, length and body, flagging all but the last fragment", () => {
  const [only] = encodeFragments({ type: MessageType.Request, id: 0x01020304, body: body(3) });
  assert.deepEqual(only, concat(new Uint8Array([0x10, 1, 2, 3, 4, 0, 3]), body(3)));

  const fragments = encodeFragments({
    type: MessageType.Response,
    id: 7,
    body: body(MAX_FRAGMENT_BODY * 2 + 5),
  });
  assert.deepEqual(fragments.map((f) => f[0]), [0x11 | CONTINUES, 0x11 | CONTINUES, 0x11]);
  assert.deepEqual(fragments.map((f) => f.length - FRAGMENT_HEADER_LENGTH), [
    MAX_FRAGMENT_BODY,
    MAX_FRAGMENT_BODY,
    5,
  ]);
  for (const f of fragments) {
    assert.ok(f.length <= MAX_RECORD_PLAINTEXT);
    assert.equal(new DataView(f.buffer).getUint32(1), 7);
  }
});

for (
  const [label, size, count] of [
    ["0 bytes", 0, 1],
    ["1 byte", 1, 1],
    ["MAX_FRAGMENT_BODY bytes", MAX_FRAGMENT_BODY, 1],
    ["MAX_FRAGMENT_BODY + 1 bytes", MAX_FRAGMENT_BODY + 1, 2],
    ["200 KiB", 200 * 1024, 4],
  ] as const
) {
  Deno.test(`encodeFragments() and MessageAssembler round-trip a message of ${label}`, () => {
    const message: Message = { type: MessageType.Request, id: 42, body: body(size, 1) };
    const fragments = encodeFragments(message);
    assert.equal(fragments.length, count);
    const assembler = new MessageAssembler(1024 * 1024);
    fragments.slice(0, -1).forEach((f) => assert.deepEqual(assembler.push(f), []));
    assert.deepEqual(assembler.push(fragments[fragments.length - 1]), [message]);
  });
}

Deno.test("MessageAssembler returns several messages from one record, in order", () => {
  const messages: Message[] = [
    { type: MessageType.Request, id: 1, body: body(10) },
    { type: MessageType.Request, id: 2, body: new Uint8Array(0) },
    { type: MessageType.Welcome, id: 0, body: encodeJson({ server: "x" }) },
    { type: MessageType.Request, id: 1, body: body(1000, 3) },
  ];
  const record = concat(...messages.flatMap(encodeFragments));
  assert.deepEqual(new MessageAssembler(4096).push(record), messages);
});

Deno.test("MessageAssembler reassembles interleaved fragments of two ids", () => {
  const a: Message = { type: MessageType.Request, id: 1, body: body(MAX_FRAGMENT_BODY + 10, 1) };
  const b: Message = { type: MessageType.Request, id: 2, body: body(MAX_FRAGMENT_BODY * 2, 2) };
  const [a1, a2] = encodeFragments(a);
  const [b1, b2] = encodeFragments(b);
  const assembler = new MessageAssembler(1024 * 1024);
  assert.deepEqual(assembler.push(b1), []);
  assert.deepEqual(assembler.push(a1), []);
  assert.deepEqual(assembler.push(a2), [a]);
  assert.deepEqual(assembler.push(b2), [b]);
  // Small continued fragments in one record work the same way.
  const record = concat(
    fragment(0x10 | CONTINUES, 5, body(3, 5)),
    fragment(0x11 | CONTINUES, 6, body(4, 6)),
    fragment(0x10, 5, body(2, 7)),
    fragment(0x11, 6, new Uint8Array(0)),
  );
  assert.deepEqual(assembler.push(record), [
    { type: 0x10, id: 5, body: concat(body(3, 5), body(2, 7)) },
    { type: 0x11, id: 6, body: body(4, 6) },
  ]);
});

Deno.test("MessageAssembler refuses an empty record", () => {
  assertMessageError(() => new MessageAssembler(100).push(new Uint8Array(0)), "Empty record");
});

Deno.test("MessageAssembler refuses a truncated fragment header", () => {
  const assembler = new MessageAssembler(100);
  assertMessageError(() => assembler.push(new Uint8Array(6)), "Truncated fragment header");
  const record = concat(fragment(0x10, 1, body(2)), new Uint8Array([0x10, 0, 0]));
  assertMessageError(() => new MessageAssembler(100).push(record), "Truncated fragment header");
});

Deno.test("MessageAssembler refuses a truncated fragment body", () => {
  const record = fragment(0x10, 1, body(5), 10);
  assertMessageError(() => new MessageAssembler(100).push(record), "Truncated fragment body");
  const short = encodeFragments({ type: 0x10, id: 1, body: body(50) })[0].subarray(0, 56);
  assertMessageError(() => new MessageAssembler(100).push(short), "Truncated fragment body");
});

Deno.test("MessageAssembler refuses message type 0, with or without the continue flag", () => {
  assertMessageError(
    () => new MessageAssembler(100).push(fragment(0x00, 1, body(1))),
    "Invalid message type 0",
  );
  assertMessageError(
    () => new MessageAssembler(100).push(fragment(0x80, 1, body(1))),
    "Invalid message type 0",
  );
});

Deno.test("MessageAssembler refuses a message above its size limit", () => {
  assertMessageError(
    () => new MessageAssembler(100).push(fragment(0x10, 1, body(101))),
    "Message of more than 100 bytes exceeds the limit",
  );
  assert.deepEqual(new MessageAssembler(100).push(fragment(0x10, 1, body(100))).length, 1);
  const assembler = new MessageAssembler(100);
  assert.deepEqual(assembler.push(fragment(0x10 | CONTINUES, 1, body(60))), []);
  assertMessageError(
    () => assembler.push(fragment(0x10, 1, body(41))),
    "Message of more than 100 bytes exceeds the limit",
  );
  // The whole 200 KiB message exceeds a 64 KiB limit on its second fragment.
  const small = new MessageAssembler(64 * 1024);
  const [first, second] = encodeFragments({ type: 0x10, id: 9, body: body(200 * 1024) });
  small.push(first);
  assert.throws(() => small.push(second), (error: unknown) => {
    assert.ok(error instanceof MessageError);
    assert.match(error.message, /exceeds/);
    return true;
  });
});

Deno.test("MessageAssembler refuses too many messages in progress", () => {
  const assembler = new MessageAssembler(1000, 2);
  assembler.push(fragment(0x10 | CONTINUES, 1, body(1)));
  assembler.push(fragment(0x10 | CONTINUES, 2, body(1)));
  // More fragments of messages already in progress are fine.
  assert.deepEqual(assembler.push(fragment(0x10 | CONTINUES, 1, body(1))), []);
  assertMessageError(
    () => assembler.push(fragment(0x10 | CONTINUES, 3, body(1))),
    "Too many messages in progress",
  );
});

Deno.test("MessageAssembler bounds the bytes of all messages in progress together", () => {
  // Without this bound, 64 messages just under 16 MiB each could be parked
  // by one peer: 1 GiB held per connection.
  const assembler = new MessageAssembler(100);
  assembler.push(fragment(0x10 | CONTINUES, 1, body(60)));
  assertMessageError(
    () => assembler.push(fragment(0x10 | CONTINUES, 2, body(41))),
    "Messages in progress hold more than 100 bytes together",
  );
  // Completing a message gives its bytes back.
  const freed = new MessageAssembler(100);
  freed.push(fragment(0x10 | CONTINUES, 1, body(60)));
  assert.equal(freed.push(fragment(0x10, 1, body(40))).length, 1);
  assert.deepEqual(freed.push(fragment(0x10 | CONTINUES, 2, body(99))), []);
});

/** A record of `count` continued fragments of message `id`, each of `length` bytes. */
function floodRecord(id: number, count: number, length: number): Uint8Array {
  return concat(
    ...Array.from({ length: count }, () => fragment(0x10 | CONTINUES, id, body(length))),
  );
}

Deno.test("MessageAssembler refuses an empty continued fragment, and holds nothing for it", () => {
  const assembler = new MessageAssembler(16 * 1024 * 1024);
  assertMessageError(
    () => assembler.push(floodRecord(1, 9000, 0)),
    "Empty continued fragment of message 1",
  );
  assert.deepEqual(assembler.holding, { messages: 0, fragments: 0, bytes: 0 });
  // Neighbours: after real bytes of the same message, and as a message's
  // last (empty) fragment, which is fine.
  const after = new MessageAssembler(1000);
  after.push(fragment(0x10 | CONTINUES, 2, body(5)));
  assertMessageError(
    () => after.push(fragment(0x10 | CONTINUES, 2, body(0))),
    "Empty continued fragment of message 2",
  );
  const last = new MessageAssembler(1000);
  last.push(fragment(0x10 | CONTINUES, 3, body(5)));
  assert.deepEqual(last.push(fragment(0x10, 3, body(0))), [
    { type: 0x10, id: 3, body: body(5) },
  ]);
  assert.deepEqual(new MessageAssembler(1000).push(fragment(0x10, 4, body(0))), [
    { type: 0x10, id: 4, body: new Uint8Array(0) },
  ]);
});

Deno.test("MessageAssembler bounds the fragments of one message", () => {
  const assembler = new MessageAssembler(16 * 1024 * 1024);
  // One-byte fragments: 4,094 held plus a last one make the most a message may span.
  assert.deepEqual(assembler.push(floodRecord(1, MAX_MESSAGE_FRAGMENTS - 2, 1)), []);
  assert.deepEqual(assembler.holding, {
    messages: 1,
    fragments: MAX_MESSAGE_FRAGMENTS - 2,
    bytes: MAX_MESSAGE_FRAGMENTS - 2,
  });
  const ok = new MessageAssembler(16 * 1024 * 1024);
  ok.push(floodRecord(1, MAX_MESSAGE_FRAGMENTS - 1, 1));
  assert.equal(ok.push(fragment(0x10, 1, body(1)))[0].id, 1);
  assertMessageError(
    () => assembler.push(floodRecord(1, 2, 1)),
    `Message 1 spans more than ${MAX_MESSAGE_FRAGMENTS} fragments`,
  );
});

Deno.test("MessageAssembler bounds the fragments of all messages in progress together", () => {
  const assembler = new MessageAssembler(16 * 1024 * 1024);
  const perMessage = MAX_HELD_FRAGMENTS / 4;
  for (let id = 1; id <= 4; id++) assembler.push(floodRecord(id, perMessage, 1));
  assert.equal(assembler.holding.fragments, MAX_HELD_FRAGMENTS);
  assertMessageError(
    () => assembler.push(floodRecord(5, 1, 1)),
    `Messages in progress hold more than ${MAX_HELD_FRAGMENTS} fragments together`,
  );
  // Finishing a message gives its fragments back.
  const freed = new MessageAssembler(16 * 1024 * 1024);
  for (let id = 1; id <= 4; id++) freed.push(floodRecord(id, perMessage, 1));
  assert.equal(freed.push(fragment(0x10, 2, body(1))).length, 1);
  assert.equal(freed.holding.fragments, MAX_HELD_FRAGMENTS - perMessage);
  assert.deepEqual(freed.push(floodRecord(5, perMessage, 1)), []);
});

Deno.test("MessageAssembler copies a small fragment out of its record instead of keeping the record", () => {
  const assembler = new MessageAssembler(16 * 1024 * 1024);
  // A record with one small continued fragment and one large complete message.
  const record = concat(fragment(0x10 | CONTINUES, 1, body(10)), fragment(0x10, 2, body(60_000)));
  const [large] = assembler.push(record) as Message[];
  // The large body may share the record; the small held part must not.
  assert.equal(large.body.buffer, record.buffer);
  const [small] = assembler.push(fragment(0x10, 1, body(5, 10))) as Message[];
  assert.notEqual(small.body.buffer, record.buffer);
  assert.equal(small.body.length, 15);
  // A small complete message in a large record is copied too.
  const mixed = concat(fragment(0x10, 3, body(1)), fragment(0x10, 4, body(60_000)));
  const [tiny, big] = new MessageAssembler(1 << 20).push(mixed) as Message[];
  assert.notEqual(tiny.body.buffer, mixed.buffer);
  assert.equal(tiny.body.byteLength, 1);
  assert.equal(big.body.buffer, mixed.buffer);
});

Deno.test("MessageAssembler frees a slot when a message completes", () => {
  const assembler = new MessageAssembler(1000, 1);
  assembler.push(fragment(0x10 | CONTINUES, 1, body(1)));
  assert.equal(assembler.push(fragment(0x10, 1, body(1))).length, 1);
  assert.deepEqual(assembler.push(fragment(0x10 | CONTINUES, 2, body(1))), []);
});

Deno.test("MessageAssembler refuses a fragment of another type interrupting a message", () => {
  const assembler = new MessageAssembler(1000);
  assembler.push(fragment(MessageType.Request | CONTINUES, 5, body(3)));
  assertMessageError(
    () => assembler.push(fragment(MessageType.Response, 5, body(3))),
    "Fragment type 17 interrupts message 5",
  );
  const other = new MessageAssembler(1000);
  other.push(fragment(MessageType.Request | CONTINUES, 5, body(3)));
  assertMessageError(
    () => other.push(fragment(MessageType.Error | CONTINUES, 5, body(3))),
    "Fragment type 2 interrupts message 5",
  );
});

Deno.test("encodeFragments() refuses type 0 and types with the continue bit with RangeError", () => {
  for (const type of [0, -1, 0x80, 0x91, 256]) {
    assert.throws(() => encodeFragments({ type, id: 1, body: body(1) }), {
      name: "RangeError",
      message: `Invalid message type ${type}`,
    });
  }
});

Deno.test("encodeFragments() and writeBulkNotice() refuse 0x7f, the bulk notice's type, with RangeError", () => {
  assert.equal(BULK_NOTICE, 0x7f);
  const message = { type: BULK_NOTICE, id: 1, body: body(1) };
  const expected = { name: "RangeError", message: "Invalid message type 127" };
  assert.throws(() => encodeFragments(message), expected);
  assert.throws(() => writeBulkNotice(new Uint8Array(BULK_NOTICE_LENGTH), 0, message), expected);
});

Deno.test("writeFragment() writes at an offset as much of the body as fits, flagged to continue", () => {
  const record = new Uint8Array(3 + FRAGMENT_HEADER_LENGTH + 4);
  const message = { type: MessageType.Request, id: 7, body: body(10) };
  assert.equal(writeFragment(record, 3, message, 2), 4);
  assert.deepEqual(
    record.subarray(3),
    fragment(MessageType.Request | CONTINUES, 7, body(10).subarray(2, 6)),
  );
  assert.equal(writeFragment(record, 3, message, 6), 4);
  assert.deepEqual(record.subarray(3), fragment(MessageType.Request, 7, body(10).subarray(6)));
  assert.throws(() => writeFragment(record, 9, message, 0), {
    name: "RangeError",
    message: "No room for a fragment header",
  });
});

/** A bulk notice written by hand: 0x7f, id, length 5, message type, size (u32 BE). */
function notice(id: number, type: number, size: number, flags = 0, length = 5): Uint8Array {
  const out = fragment(BULK_NOTICE | flags, id, new Uint8Array(length));
  const view = new DataView(out.buffer);
  if (length >= 1) view.setUint8(7, type);
  if (length >= 5) view.setUint32(8, size);
  return out;
}

Deno.test("writeBulkNotice() writes 0x7f, the id, length 5, the message type and the body size", () => {
  const record = new Uint8Array(2 + BULK_NOTICE_LENGTH);
  const message = { type: 0x23, id: 0x01020304, body: body(200_000) };
  assert.equal(writeBulkNotice(record, 2, message), 12);
  assert.deepEqual(
    record.subarray(2),
    new Uint8Array([0x7f, 1, 2, 3, 4, 0, 5, 0x23, 0x00, 0x03, 0x0d, 0x40]),
  );
  assert.deepEqual(record.subarray(2), notice(0x01020304, 0x23, 200_000));
  assert.throws(
    () => writeBulkNotice(record, 0, { ...message, body: body(MAX_BULK_PLAINTEXT + 1) }),
    { name: "RangeError", message: `A bulk record holds at most ${MAX_BULK_PLAINTEXT} bytes` },
  );
});

Deno.test("MessageAssembler returns a bulk notice in its place among the record's messages", () => {
  const record = concat(
    fragment(MessageType.Request, 1, body(3)),
    notice(2, 0x23, MAX_BULK_PLAINTEXT),
    fragment(MessageType.Request, 3, body(4)),
  );
  assert.deepEqual(new MessageAssembler(16 * 1024 * 1024).push(record), [
    { type: MessageType.Request, id: 1, body: body(3) },
    { type: 0x23, id: 2, bulkSize: MAX_BULK_PLAINTEXT },
    { type: MessageType.Request, id: 3, body: body(4) },
  ]);
});

for (
  const [label, record, message] of [
    ["with the continue flag", notice(1, 0x23, 10, CONTINUES), "Malformed bulk notice"],
    ["4 bytes long", notice(1, 0x23, 10, 0, 4), "Malformed bulk notice"],
    ["6 bytes long", notice(1, 0x23, 10, 0, 6), "Malformed bulk notice"],
    ["for type 0", notice(1, 0, 10), "Invalid message type 0"],
    ["for type 0x7f", notice(1, 0x7f, 10), "Invalid message type 127"],
    ["for type 0x90", notice(1, 0x90, 10), "Invalid message type 144"],
    [
      "above the message limit",
      notice(1, 0x23, 1001),
      "Bulk record of 1001 bytes exceeds the limit of 1000",
    ],
  ] as const
) {
  Deno.test(`MessageAssembler refuses a bulk notice ${label}`, () => {
    assertMessageError(() => new MessageAssembler(1000).push(record), message);
  });
}

Deno.test("MessageAssembler refuses a bulk notice above MAX_BULK_PLAINTEXT whatever its limit", () => {
  assertMessageError(
    () => new MessageAssembler(16 * 1024 * 1024).push(notice(1, 0x23, MAX_BULK_PLAINTEXT + 1)),
    `Bulk record of ${MAX_BULK_PLAINTEXT + 1} bytes exceeds the limit of ${MAX_BULK_PLAINTEXT}`,
  );
});

Deno.test("MessageAssembler refuses a bulk notice interrupting a message in progress", () => {
  const assembler = new MessageAssembler(1000);
  assembler.push(fragment(0x23 | CONTINUES, 5, body(3)));
  assertMessageError(
    () => assembler.push(notice(5, 0x23, 10)),
    "A bulk notice interrupts message 5",
  );
});

Deno.test("encodeResponse() writes the status length, the status and the response", () => {
  const encoded = encodeResponse({ status: "ok", response: new Uint8Array([1, 2]) });
  assert.deepEqual(encoded, new Uint8Array([2, 0x6f, 0x6b, 1, 2]));
});

Deno.test("decodeResponse() round-trips encodeResponse()", () => {
  for (
    const status of ["ok", "error", "not-found", "e", "a0-9", `a${"b".repeat(63)}`]
  ) {
    for (const response of [new Uint8Array(0), body(1), body(70000)]) {
      assert.deepEqual(decodeResponse(encodeResponse({ status, response })), { status, response });
    }
  }
});

Deno.test("encodeResponse() refuses a status outside [a-z][a-z0-9-]{0,63} with RangeError", () => {
  for (const status of ["", "OK", "1ok", "-ok", "o k", "ok\n", "é", `a${"b".repeat(64)}`]) {
    assert.throws(() => encodeResponse({ status, response: body(1) }), {
      name: "RangeError",
      message: `Invalid status "${status}"`,
    });
  }
});

Deno.test("decodeResponse() refuses a truncated body", () => {
  assertMessageError(() => decodeResponse(new Uint8Array(0)), "Truncated response");
  assertMessageError(() => decodeResponse(new Uint8Array([3, 0x6f, 0x6b])), "Truncated response");
  assertMessageError(() => decodeResponse(new Uint8Array([255])), "Truncated response");
});

Deno.test("decodeResponse() refuses a bad status", () => {
  const ascii = (s: string) => new TextEncoder().encode(s);
  assertMessageError(() => decodeResponse(new Uint8Array([0])), "Invalid response status");
  assertMessageError(
    () => decodeResponse(concat(new Uint8Array([2]), ascii("OK"))),
    "Invalid response status",
  );
  assertMessageError(
    () => decodeResponse(concat(new Uint8Array([3]), ascii("o k"))),
    "Invalid response status",
  );
  assertMessageError(
    () => decodeResponse(concat(new Uint8Array([65]), ascii("a".repeat(65)))),
    "Invalid response status",
  );
});

Deno.test("encodeJson() and decodeJson() round-trip an object", () => {
  const value = { code: "not-authorized", message: "Nope", nested: { n: 1, list: [1, "two"] } };
  assert.deepEqual(decodeJson(encodeJson(value)), value);
  assert.deepEqual(encodeJson({ a: 1 }), new TextEncoder().encode('{"a":1}'));
});

Deno.test("decodeJson() refuses anything but a JSON object", () => {
  const encode = (s: string) => new TextEncoder().encode(s);
  for (const text of ["", "{", "[]", "null", "1", '"text"', "true"]) {
    assertMessageError(() => decodeJson(encode(text)), "Malformed control message");
  }
  assertMessageError(
    () => decodeJson(new Uint8Array([0x7b, 0xff, 0x7d])),
    "Malformed control message",
  );
});
