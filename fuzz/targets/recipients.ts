/**
 * The recipient list shared by envelopes and sealed files (lib/recipients/entries.ts),
 * in both layouts: a damaged list is refused with the format's own error,
 * accounts for exactly the bytes it names, and never unwraps to another key.
 */

import fc from "fast-check";
import { utf8 } from "../../lib/bytes.ts";
import { ENVELOPE_RECIPIENTS, EnvelopeError } from "../../lib/envelope/envelope.ts";
import { FieldReader } from "../../lib/recipients/field_reader.ts";
import { generateIdentity, publicKeyBytes } from "../../lib/identity/keys.ts";
import {
  copyKeys,
  encodeRecipients,
  entryLength,
  findEntry,
  readRecipients,
  type RecipientFormat,
  unwrapEntry,
} from "../../lib/recipients/entries.ts";
import { SealedError } from "../../lib/sealed/errors.ts";
import { SEALED_RECIPIENTS } from "../../lib/sealed/_header.ts";
import { mutatedBytes } from "../_mutate.ts";
import { type ErrorClass, type FuzzTarget, fuzzTarget, parsesOrRejects } from "../_target.ts";

const people = await Promise.all(Array.from({ length: 4 }, () => generateIdentity()));
const KEY = crypto.getRandomValues(new Uint8Array(32));
const AAD = utf8("sender and nonce");

function fail(message: string): never {
  throw new Error(message);
}

function target(name: string, format: RecipientFormat, error: ErrorClass): FuzzTarget {
  const seeds = [[0], [1, 2, 3], [3, 0]].map((who) =>
    encodeRecipients(format, who.map((i) => people[i].publicKey), KEY, AAD)
  );
  return fuzzTarget(
    `recipients/${name}`,
    fc.property(
      fc.oneof(
        { weight: 4, arbitrary: mutatedBytes(seeds) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }) },
      ),
      (bytes) => {
        const fields = new FieldReader(bytes, () => format.fail("malformed", "short"));
        const list = parsesOrRejects(() => readRecipients(fields, format), error);
        if (!list) return;
        if (fields.offset !== 2 + list.count * entryLength(format) || list.count === 0) {
          fail(`A list of ${list.count} read ${fields.offset} bytes`);
        }
        const keys = copyKeys(list)();
        for (const person of people) {
          const named = publicKeyBytes(person.publicKey).subarray(0, format.keyLength);
          const at = keys.findIndex((key) => key.every((byte, i) => byte === named[i]));
          const entry = parsesOrRejects(() => findEntry(list, person), error);
          if ((entry !== undefined) !== (at >= 0)) fail("The lookup disagrees with the keys");
          if (!entry) continue;
          if (entry.byteOffset !== list.entries.byteOffset + at * entryLength(format)) {
            fail("The lookup did not find the first entry naming the reader");
          }
          const key = parsesOrRejects(() => unwrapEntry(format, entry, person, AAD), error);
          if (key && !key.every((byte, i) => byte === KEY[i])) fail("Unwrapped another key");
        }
      },
    ),
    { testRuns: 100 },
  );
}

/** The recipient-list targets, one per layout. */
export const targets: FuzzTarget[] = [
  target("envelope", ENVELOPE_RECIPIENTS, EnvelopeError),
  target("sealed", SEALED_RECIPIENTS, SealedError),
];
