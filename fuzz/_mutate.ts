/**
 * Mutation arbitraries: start from valid input and damage it the way an
 * attacker or a broken disk would (flipped bits, lengths set to extremes,
 * bytes inserted, removed, repeated, cut off). Random bytes alone rarely get
 * past a parser's first check; mutations of valid input reach the deep paths.
 */

import fc from "fast-check";

/** Byte values that sit on boundaries parsers tend to get wrong. */
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
/** Length-field values that do the same for 16- and 32-bit fields. */
const INTERESTING_WORDS = [
  0,
  1,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x7fff,
  0x8000,
  0xffff,
  0x10000,
  0x7fffffff,
  0xffffffff,
];

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "word"; at: number; value: number; width: 2 | 4 }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "repeat"; at: number; count: number }
  | { kind: "truncate"; at: number }
  | { kind: "swap"; at: number; other: number };

// Positions are fractions of the input's length, so one mutation list fits
// inputs of any size. fast-check biases numbers towards small values (93% of
// fc.double draws in [0, 1) fell below 0.01, so nearly every mutation hit
// the first bytes); most positions are drawn without bias, the rest keep the
// bias towards the start and the end, where headers and tags sit.
const POSITION_STEPS = 0x10000;
const position = fc.oneof(
  { weight: 3, arbitrary: fc.noBias(fc.integer({ min: 0, max: POSITION_STEPS - 1 })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: POSITION_STEPS - 1 }) },
).map((step) => step / POSITION_STEPS);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: position,
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    kind: fc.constant("set" as const),
    at: position,
    value: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 })),
  }),
  fc.record({
    kind: fc.constant("word" as const),
    at: position,
    value: fc.constantFrom(...INTERESTING_WORDS),
    width: fc.constantFrom(2 as const, 4 as const),
  }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: position,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: position,
    count: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({
    kind: fc.constant("repeat" as const),
    at: position,
    count: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: position }),
  fc.record({ kind: fc.constant("swap" as const), at: position, other: position }),
);

/** Applies one mutation, returning a new array. */
export function applyMutation(input: Uint8Array, m: Mutation): Uint8Array {
  const at = Math.floor(m.at * input.length);
  switch (m.kind) {
    case "flip": {
      if (input.length === 0) return input;
      const out = input.slice();
      out[at] ^= 1 << m.bit;
      return out;
    }
    case "set": {
      if (input.length === 0) return input;
      const out = input.slice();
      out[at] = m.value;
      return out;
    }
    case "word": {
      const out = input.slice();
      for (let i = 0; i < m.width && at + i < out.length; i++) {
        out[at + i] = (m.value >>> (8 * (m.width - 1 - i))) & 0xff;
      }
      return out;
    }
    case "insert": {
      const out = new Uint8Array(input.length + m.bytes.length);
      out.set(input.subarray(0, at));
      out.set(m.bytes, at);
      out.set(input.subarray(at), at + m.bytes.length);
      return out;
    }
    case "delete": {
      const out = new Uint8Array(input.length - Math.min(m.count, input.length - at));
      out.set(input.subarray(0, at));
      out.set(input.subarray(at + m.count), at);
      return out;
    }
    case "repeat": {
      const piece = input.slice(at, at + m.count);
      return applyMutation(input, {
        kind: "insert",
        at: m.at,
        bytes: piece.length ? piece : new Uint8Array(1),
      });
    }
    case "truncate":
      return input.slice(0, at);
    case "swap": {
      if (input.length === 0) return input;
      const out = input.slice();
      const other = Math.floor(m.other * input.length);
      [out[at], out[other]] = [out[other], out[at]];
      return out;
    }
  }
}

/** A mutation list, for targets that mutate input they build per case. */
export const mutations: fc.Arbitrary<Mutation[]> = fc.array(mutation, {
  minLength: 1,
  maxLength: 4,
});

/** Applies every mutation of a list in turn. */
export function applyMutations(input: Uint8Array, list: Mutation[]): Uint8Array {
  return list.reduce(applyMutation, input);
}

/**
 * Damaged copies of one of `seeds` (valid inputs), with 1–4 mutations each.
 * One case in eight is the seed unchanged, so the valid path stays covered.
 */
export function mutatedBytes(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const seed = fc.constantFrom(...seeds);
  return fc.oneof(
    { weight: 1, arbitrary: seed },
    { weight: 7, arbitrary: fc.tuple(seed, mutations).map(([s, list]) => applyMutations(s, list)) },
  );
}

/** Characters that separate, quote or terminate fields in ovtp's text formats. */
const SPECIAL_CHARACTERS = [
  " ",
  "\t",
  "\n",
  "\r",
  ",",
  "=",
  '"',
  "\\",
  "#",
  "@",
  ":",
  "/",
  "\0",
  "\u001b",
  "\u00e9",
  "\u{1f511}",
  "\ufeff",
  "\u202e",
];

/**
 * Damaged copies of one of `seeds` (valid text lines or files): characters
 * replaced, inserted or removed, with separators and control characters
 * favoured, plus byte-level mutations of the UTF-8 (which may leave it
 * invalid; it is decoded with replacement characters, as a file read would).
 */
export function mutatedText(seeds: readonly string[]): fc.Arbitrary<string> {
  const seed = fc.constantFrom(...seeds);
  const character = fc.oneof(
    fc.constantFrom(...SPECIAL_CHARACTERS),
    fc.string({ minLength: 1, maxLength: 1 }),
    fc.string({ minLength: 1, maxLength: 8, unit: "grapheme" }),
  );
  const edit = fc.record({
    at: position,
    remove: fc.integer({ min: 0, max: 8 }),
    insert: fc.oneof(fc.constant(""), character),
  });
  const edited = fc.tuple(seed, fc.array(edit, { minLength: 1, maxLength: 4 })).map((
    [text, edits],
  ) =>
    edits.reduce((s, e) => {
      const at = Math.floor(e.at * s.length);
      return s.slice(0, at) + e.insert + s.slice(at + e.remove);
    }, text)
  );
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const byteMutated = fc.tuple(seed, mutations).map(([text, list]) =>
    decoder.decode(applyMutations(encoder.encode(text), list))
  );
  return fc.oneof(
    { weight: 1, arbitrary: seed },
    { weight: 5, arbitrary: edited },
    { weight: 2, arbitrary: byteMutated },
  );
}
