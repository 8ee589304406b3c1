/**
 * Network fuzzer shape h: uploads that fight over names. One or two
 * connections in turn, each as the authorized client or as a key whose name
 * is a hostile path (`.partial`, `..`, `.`, `a/b`, a very long one), each
 * with one to three uploads at once: often the same name and size
 * (resumable, so that they would share held data), or a name equal to the
 * file another sender's resumable upload would be held in. Contents differ
 * per upload; some connections stop halfway (leaving data to resume).
 *
 * Each upload behaves as ovtp's client does (it resumes only when the held
 * prefix is its own), and checks that a Result "ok" reports the hash of what
 * it sent. The run then checks, from the server's own report of each stored
 * file, that the file on disk still has exactly those bytes (fuzz/_network.ts).
 */

import fc from "fast-check";
import { createHash } from "node:crypto";
import { decodeJson } from "../lib/channel/messages.ts";
import { type AttackContext, AttackFailure, f, json, RawSession } from "./_network_wire.ts";

const OFFER = 0x20;
const ACCEPT = 0x21;
const START = 0x22;
const DATA = 0x23;
const END = 0x24;
const RESULT = 0x25;
const WAIT_MS = 3_000;
const CHUNK = 16 * 1024;

/** The names of the hostile-named keys (fuzz/_network.ts authorizes one key for each). */
export const SENDER_NAMES: readonly string[] = [
  ".partial",
  "..",
  ".",
  "a/b",
  "x".repeat(300),
  "inbox/../..",
];

/** What an upload offers as its name. */
export type UploadName =
  | { kind: "same" }
  | { kind: "plain"; name: string }
  /** The held-data file of the authorized client's resumable "same.txt" of `size` bytes. */
  | { kind: "held"; size: number; folder: boolean };

/** One upload. */
export interface Upload {
  name: UploadName;
  size: number;
  /** Makes the content differ from the other uploads'. */
  fill: number;
  resumable: boolean;
}

/** Shape h, as data. */
export interface UploadsAttack {
  shape: "h";
  connections: {
    /** -1: the authorized client; else an index into SENDER_NAMES. */
    sender: number;
    uploads: Upload[];
    /** Close after half the data, without End. */
    cut: boolean;
  }[];
}

/** Sizes, few so that names and sizes collide; 70,000 is over the run's 64K limit. */
const SIZES = [0, 1, 5, 1000, 40_000, 70_000];

const upload: fc.Arbitrary<Upload> = fc.record({
  name: fc.oneof(
    { weight: 4, arbitrary: fc.constant({ kind: "same" as const }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("held" as const),
        size: fc.constantFrom(...SIZES),
        folder: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("plain" as const),
        name: fc.constantFrom(".partial", "..", "a/../../b.txt", ".partial/x", "same.txt (1)"),
      }),
    },
  ),
  size: fc.constantFrom(...SIZES),
  fill: fc.integer({ min: 0, max: 255 }),
  resumable: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
});

const connection = fc.record({
  sender: fc.integer({ min: -1, max: SENDER_NAMES.length - 1 }),
  uploads: fc.array(upload, { minLength: 1, maxLength: 3 }),
  cut: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, fc.constant(true)),
});

/**
 * The planting attack and its neighbours: the key named `.partial` (or
 * another) stores a file under the name the authorized client's held data
 * for same.txt of that size would have, then the authorized client uploads
 * same.txt of that size, resumable (perhaps twice at once).
 */
const plant: fc.Arbitrary<UploadsAttack["connections"]> = fc.record({
  sender: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.constantFrom(1, 3, 5)),
  size: fc.constantFrom(...SIZES),
  folder: fc.boolean(),
  fills: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 3, maxLength: 3 }),
  twice: fc.boolean(),
  cut: fc.boolean(),
}).map(({ sender, size, folder, fills, twice, cut }) => [
  {
    sender,
    uploads: [{
      name: { kind: "held" as const, size, folder },
      size,
      fill: fills[0],
      resumable: true,
    }],
    cut: false,
  },
  {
    sender: -1,
    uploads: fills.slice(1, twice ? 3 : 2).map((fill) => ({
      name: { kind: "same" as const },
      size,
      fill,
      resumable: true,
    })),
    cut,
  },
]);

export const uploadsAttack: fc.Arbitrary<UploadsAttack> = fc.record({
  shape: fc.constant("h" as const),
  connections: fc.oneof(
    { weight: 3, arbitrary: fc.array(connection, { minLength: 1, maxLength: 2 }) },
    { weight: 1, arbitrary: plant },
  ),
});

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The name of the held data of `fingerprint`'s resumable upload of `name` and `size`. */
function heldName(fingerprint: string, name: string, size: number): string {
  return `${
    sha256(new TextEncoder().encode(`${fingerprint}\0${name}\0${size}`)).slice(0, 40)
  }.part`;
}

function offeredName(context: AttackContext, name: UploadName): string {
  switch (name.kind) {
    case "same":
      return "same.txt";
    case "plain":
      return name.name;
    case "held": {
      const file = heldName(context.authorizedFingerprint, "same.txt", name.size);
      return name.folder ? `.partial/${file}` : file;
    }
  }
}

function content(value: Upload): Uint8Array {
  return Uint8Array.from({ length: value.size }, (_, i) => (value.fill + i * 31 + (i >> 8)) & 0xff);
}

/** Performs the connections in turn. */
export async function performUploads(context: AttackContext, value: UploadsAttack): Promise<void> {
  for (const connection of value.connections) {
    const identity = connection.sender < 0
      ? context.authorized
      : context.senders[connection.sender].identity;
    await uploadAll(context, identity, connection.uploads, connection.cut);
  }
}

async function uploadAll(
  context: AttackContext,
  identity: AttackContext["authorized"],
  uploads: Upload[],
  cut: boolean,
): Promise<void> {
  const session = await RawSession.open(context, identity);
  try {
    const ids = uploads.map((_, i) => 300 + i);
    const bytes = uploads.map(content);
    await session.send(uploads.map((u, i) =>
      f(
        OFFER,
        ids[i],
        json({
          name: offeredName(context, u.name),
          size: u.size,
          mode: 0o644,
          resumable: u.resumable,
        }),
      )
    ));
    const answered = (id: number) =>
      session.received.some((m) => m.id === id && (m.type === ACCEPT || m.type === RESULT));
    await session.until(() => ids.every(answered), WAIT_MS);
    // As ovtp's client: resume only from a prefix that is this content's own.
    const starts = new Map<number, number>();
    for (const [i, id] of ids.entries()) {
      const accept = session.of(ACCEPT, id)[0];
      if (!accept) continue;
      const { offset, prefix_sha256: prefix } = decodeJson(accept.body);
      const held = typeof offset === "number" && offset > 0 && offset <= bytes[i].length &&
          prefix === sha256(bytes[i].subarray(0, offset))
        ? offset
        : 0;
      starts.set(i, held);
    }
    const live = [...starts.keys()];
    await session.send(live.map((i) => f(START, ids[i], json({ offset: starts.get(i) }))));
    // Data of all uploads interleaved, one chunk of each in turn.
    const position = new Map(live.map((i) => [i, starts.get(i)!]));
    const half = (i: number) => cut ? Math.floor(bytes[i].length / 2) : bytes[i].length;
    for (let more = true; more;) {
      more = false;
      for (const i of live) {
        const at = position.get(i)!;
        if (at >= half(i)) continue;
        const end = Math.min(at + CHUNK, half(i));
        if (!await session.send([f(DATA, ids[i], bytes[i].subarray(at, end))])) return;
        position.set(i, end);
        more = true;
      }
    }
    if (cut) return;
    await session.send(
      live.map((i) => f(END, ids[i], json({ size: bytes[i].length, sha256: sha256(bytes[i]) }))),
    );
    await session.until(() => live.every((i) => session.of(RESULT, ids[i]).length > 0), WAIT_MS);
    for (const i of live) {
      const result = session.of(RESULT, ids[i])[0];
      if (!result) continue;
      const body = decodeJson(result.body);
      if (
        body.status === "ok" && (body.sha256 !== sha256(bytes[i]) || body.size !== bytes[i].length)
      ) {
        throw new AttackFailure(
          `Upload ${ids[i]} got "ok" for ${body.size} bytes with SHA-256 ${body.sha256}, ` +
            `but sent ${bytes[i].length} bytes with ${sha256(bytes[i])}`,
        );
      }
    }
  } finally {
    await session.close();
  }
}
