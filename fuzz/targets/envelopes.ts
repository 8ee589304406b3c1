/**
 * Envelopes (lib/envelope/envelope.ts): what the chat relay stores and forwards,
 * and what every member opens. Anyone on the path can damage, splice or
 * forge one, so a changed envelope must be refused with an EnvelopeError
 * and never open to another body or under another sender.
 */

import fc from "fast-check";
import { utf8 } from "../../lib/bytes.ts";
import {
  ENVELOPE_MAGIC,
  EnvelopeError,
  openEnvelope,
  parseEnvelope,
  sealEnvelope,
} from "../../lib/envelope/envelope.ts";
import {
  generateIdentity,
  type Identity,
  publicKeyBytes,
  samePublicKey,
} from "../../lib/identity/keys.ts";
import { mutatedBytes } from "../_mutate.ts";
import { type FuzzTarget, fuzzTarget, parsesOrRejects, parsesOrRejectsAsync } from "../_target.ts";

const CONTEXT = "room:ops";
// Fixed, and given to openEnvelope as `now`, so that a long run does not
// see its envelopes expire.
const TIMESTAMP = Date.now();

const [alice, bob, carol, dave, outsider] = await Promise.all(
  Array.from({ length: 5 }, () => generateIdentity()),
);

interface Seed {
  bytes: Uint8Array;
  body: Uint8Array;
  recipients: Identity[];
}

// Sealed once per run: the mutations reuse them.
const SEEDS: Seed[] = await Promise.all(
  [
    { body: utf8("the launch code is 0000"), recipients: [bob] },
    { body: new Uint8Array(0), recipients: [bob, carol, dave] },
    { body: new Uint8Array(700).fill(0x5a), recipients: [carol, bob] },
    { body: utf8("for dave"), recipients: [dave] },
  ].map(async ({ body, recipients }) => ({
    body,
    recipients,
    bytes: await sealEnvelope(alice, recipients.map((r) => r.publicKey), body, {
      context: CONTEXT,
      timestamp: TIMESTAMP,
    }),
  })),
);
const SEED_BYTES = SEEDS.map((seed) => seed.bytes);

function fail(message: string): never {
  throw new Error(message);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// One envelope's start on another's end: a relay moving a body, a stanza
// or a signature from one message to the next.
const spliced = fc.tuple(
  fc.constantFrom(...SEED_BYTES),
  fc.constantFrom(...SEED_BYTES),
  fc.double({ min: 0, max: 1, noNaN: true }),
  fc.double({ min: 0, max: 1, noNaN: true }),
).map(([a, b, x, y]) =>
  new Uint8Array([
    ...a.subarray(0, Math.floor(x * a.length)),
    ...b.subarray(Math.floor(y * b.length)),
  ])
);

const envelope = fc.oneof(
  { weight: 6, arbitrary: mutatedBytes(SEED_BYTES) },
  { weight: 1, arbitrary: spliced },
);

const open = fuzzTarget(
  "envelopes/open",
  fc.asyncProperty(
    envelope,
    fc.constantFrom(bob, carol, dave, outsider),
    async (bytes, reader) => {
      const seed = SEEDS.find((s) => same(s.bytes, bytes));
      const opened = await parsesOrRejectsAsync(
        () => openEnvelope(bytes, reader, { context: CONTEXT, now: TIMESTAMP }),
        EnvelopeError,
      );
      const addressed = seed?.recipients.includes(reader) ?? false;
      if (!opened) {
        if (addressed) fail("An intact envelope for this reader was refused");
        return;
      }
      if (!seed) fail("A changed envelope opened");
      if (!addressed) fail("An envelope opened for a reader it is not addressed to");
      if (!same(opened.body, seed.body) || !samePublicKey(opened.sender, alice.publicKey)) {
        fail("An envelope opened to another body or sender");
      }
    },
  ),
);

// Fixed sizes of the layout in docs/protocol.md.
const FIXED = ENVELOPE_MAGIC.length + 64 + 8 + 16 + 2 + 2 + 4 + 64;
const STANZA = 32 + 32 + 48;

const parse = fuzzTarget(
  "envelopes/parse",
  fc.property(
    fc.oneof(
      { weight: 4, arbitrary: envelope },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }) },
    ),
    (bytes) => {
      const header = parsesOrRejects(() => parseEnvelope(bytes), EnvelopeError);
      if (!header) return;
      // What a relay routes by must account for every byte, no more, no less.
      const expected = FIXED + utf8(header.context).length +
        header.recipients.length * STANZA + header.bodyLength;
      if (expected !== bytes.length) {
        fail(`The header accounts for ${expected} bytes of ${bytes.length}`);
      }
      if (
        header.recipients.length === 0 || header.recipients.some((r) => r.length !== 32) ||
        !/^[0-9a-f]{32}$/.test(header.messageId) || header.bodyLength < 16
      ) {
        fail(`Parsed an impossible header: ${JSON.stringify(header).slice(0, 200)}`);
      }
      const sender = publicKeyBytes(header.sender);
      if (!same(sender, bytes.subarray(4, 4 + 64))) fail("The sender is not the one written");
    },
  ),
);

/** The envelope targets. */
export const targets: FuzzTarget[] = [open, parse];
