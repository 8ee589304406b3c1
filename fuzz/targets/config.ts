/**
 * Files ovtp reads back from disk: listen.json, the private key file
 * (plain and passphrase-sealed), the chat relay's room files and the chat
 * name pins. ovtp writes them, but people edit them by hand, crashes cut
 * them short and other users plant them, so damage must come out as the
 * library's own error, never a TypeError from deep inside.
 */

import fc from "fast-check";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { LISTEN_OPTIONS, readConfig } from "../../commands/_listen_config.ts";
import type { Option } from "../../commands/_options.ts";
import { concat, fromBase64Url, utf8 } from "../../lib/bytes.ts";
import { RoomStore } from "../../lib/services/chat/room_store.ts";
import { OvtpError } from "../../lib/errors.ts";
import {
  decodeKeyFile,
  encodeKeyFile,
  isSealedKeyFile,
  WrongPassphraseError,
} from "../../lib/identity/key_file.ts";
import {
  formatPublicKey,
  generateIdentity,
  type Identity,
  parsePublicKey,
} from "../../lib/identity/keys.ts";
import { Keystore } from "../../lib/identity/keystore.ts";
import { mutatedBytes, mutatedText } from "../_mutate.ts";
import { type FuzzTarget, fuzzTarget, parsesOrRejects, parsesOrRejectsAsync } from "../_target.ts";

function fail(message: string): never {
  throw new Error(message);
}

/**
 * A target whose cases share one temporary folder, made for the run and
 * removed after it (a folder per case would dominate the time).
 */
function withTempDir(
  name: string,
  build: (dir: () => string) => fc.IAsyncPropertyWithHooks<[unknown, ...unknown[]]>,
  options: { testRuns?: number } = {},
): FuzzTarget {
  let current = "";
  const inner = fuzzTarget(name, build(() => current), options);
  return {
    name,
    testRuns: options.testRuns,
    async run(runs, seed) {
      current = await Deno.makeTempDir({ prefix: "ovtp-fuzz-", dir: await memoryFolder() });
      try {
        await inner.run(runs, seed);
      } finally {
        await Deno.remove(current, { recursive: true });
      }
    },
  };
}

/**
 * A RAM-backed folder when there is one: atomicWrite syncs every file, and
 * on a disk the syncs would take most of each case's time.
 */
async function memoryFolder(): Promise<string | undefined> {
  try {
    return (await Deno.stat("/dev/shm")).isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
}

// --- listen.json ------------------------------------------------------------

const SPECS: Record<string, Option<unknown>> = LISTEN_OPTIONS;
// Names a config must refuse: where the config is, typos, and names every
// object has through its prototype.
const BAD_NAMES = ["home", "config", "porrt", "constructor", "__proto__", "toString", "valueOf"];
const jsonValue = fc.oneof(
  fc.constantFrom("0.0.0.0", "7022", "30", "16M", "/srv/inbox", "", "json"),
  fc.integer({ min: -1, max: 100_000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.constantFrom("a", "b c", "/bin/echo"), { maxLength: 3 }),
  fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
);
const config = fc.array(
  fc.tuple(
    fc.oneof(fc.constantFrom(...Object.keys(SPECS)), fc.constantFrom(...BAD_NAMES)),
    jsonValue,
  ),
  { maxLength: 6 },
).map((entries) => JSON.stringify(Object.fromEntries(entries), null, 2));

const CONFIG_SEEDS = [
  JSON.stringify(
    {
      host: "127.0.0.1",
      port: 7022,
      exec: ["/bin/date", "/usr/bin/uptime"],
      "add-keys": "ovtp1 AAAA",
      json: true,
      "max-file-size": "1G",
      quiet: false,
    },
    null,
    2,
  ),
  '{"inbox": "/srv/inbox", "rate": "100/m"}\n',
  "{}",
];

/**
 * Checks what readConfig gave for a file it accepted: every setting is one
 * a file may hold, with the value its option parses from the file's.
 */
function checkSettings(text: string, settings: Record<string, unknown>): void {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  for (const [key, value] of Object.entries(settings)) {
    const spec = Object.hasOwn(SPECS, key) ? SPECS[key] : undefined;
    if (!spec?.inFile || key === "home" || key === "config") fail(`Setting "${key}" was accepted`);
    const written = parsed[key];
    const expected = spec.type === "boolean"
      ? written
      : spec.multiple
      ? (typeof written === "string" ? [written] : written)
      : spec.parse(String(written), key);
    if (JSON.stringify(value) !== JSON.stringify(expected)) {
      fail(
        `Setting "${key}" is ${JSON.stringify(value)}, the file says ${JSON.stringify(written)}`,
      );
    }
    const ok = spec.type === "boolean"
      ? typeof value === "boolean"
      : spec.multiple
      ? Array.isArray(value) && value.every((v) => typeof v === "string")
      : typeof written === "string" || typeof written === "number";
    if (!ok) fail(`Setting "${key}" has the wrong type`);
  }
  // Nothing may be dropped silently: every name in the file is a setting.
  for (const key of Object.keys(parsed)) {
    if (!Object.hasOwn(settings, key)) fail(`Setting "${key}" vanished`);
  }
}

const listenConfig = withTempDir("config/listen-json", (dir) =>
  fc.asyncProperty(
    fc.oneof(mutatedText(CONFIG_SEEDS), config, config.chain((text) => mutatedText([text]))),
    async (text) => {
      const path = join(dir(), "listen.json");
      await Deno.writeTextFile(path, text);
      // What the parser reads: writing turns lone surrogates into U+FFFD.
      const stored = await Deno.readTextFile(path);
      let settings;
      try {
        settings = await readConfig(path, true);
      } catch (error) {
        if (!(error instanceof OvtpError)) throw error;
        const line = Number(/, line (\d+): ./.exec(error.message)?.[1]);
        if (!error.message.includes(path) || !(line >= 1 && line <= stored.split("\n").length)) {
          fail(`The error does not name the file and a line of it: ${error.message}`);
        }
        return;
      }
      checkSettings(stored, settings);
    },
  ));

// --- the private key file -----------------------------------------------------

// The smallest Argon2id cost allowed: a case costs microseconds, not 0.3 s.
const CHEAP = { memory: 8, passes: 1, parallelism: 1 };
const PASSPHRASE = "correct horse";
// Above this cost a case stops before Argon2id runs: the bounds check has
// been passed by then, which is what the case is about.
const MAX_CASE_KIB_PASSES = 256;
// The bounds documented in lib/identity/key_file.ts.
const MAX_MEMORY_KIB = 1024 * 1024;
const MAX_PASSES = 16;
const MAX_MEMORY_PASSES_KIB = 4 * 1024 * 1024;

class TooCostly extends Error {}

const identities: Identity[] = await Promise.all([generateIdentity(), generateIdentity()]);
const privateBytes = (identity: Identity) =>
  concat(identity.x25519Private, identity.ed25519Private);
const PLAIN_SEEDS = await Promise.all(identities.map((identity) => encodeKeyFile(identity)));
const SEALED_SEEDS = await Promise.all(
  identities.map((identity) => encodeKeyFile(identity, PASSPHRASE, CHEAP)),
);

/**
 * Decodes a key file; checks what a damaged one may do. The passphrase is
 * asked only for a file that says it is sealed, with parameters inside the
 * bounds; a file that decodes gives the keys it holds, and a sealed one
 * only with the right passphrase.
 */
async function checkKeyFile(text: string, right: boolean): Promise<void> {
  let asked = false;
  const ask = () => {
    asked = true;
    if (!isSealedKeyFile(text)) fail("A passphrase was asked for a file not seen as sealed");
    const params = /^m=(\d+),t=(\d+),p=(\d+)$/.exec(text.trim().split(/\s+/)[1] ?? "");
    if (!params) fail("A passphrase was asked before the parameters were read");
    const [memory, passes, lanes] = params.slice(1).map(Number);
    if (
      memory > MAX_MEMORY_KIB || passes > MAX_PASSES || memory * passes > MAX_MEMORY_PASSES_KIB ||
      lanes < 1 || passes < 1 || memory < 8 * lanes
    ) {
      fail(`Argon2id would run with m=${memory},t=${passes},p=${lanes}`);
    }
    if (memory * passes > MAX_CASE_KIB_PASSES) throw new TooCostly();
    return Promise.resolve(right ? PASSPHRASE : PASSPHRASE + "!");
  };
  const identity = await parsesOrRejectsAsync(
    () => decodeKeyFile(text, ask),
    SyntaxError,
    WrongPassphraseError,
    TooCostly,
  );
  if (!identity) return;
  const keys = privateBytes(identity);
  if (asked) {
    if (!right) fail("A sealed file opened with the wrong passphrase");
    // Sealed: authenticated, so it can only be one of the files written.
    if (!identities.some((seed) => privateBytes(seed).every((b, i) => b === keys[i]))) {
      fail("A damaged sealed file opened to other keys");
    }
  } else {
    // Plain: no integrity, but the keys must be the ones the file spells out.
    const field = fromBase64Url(text.trim().split(/\s+/)[1]);
    if (field.length !== keys.length || !field.every((b, i) => b === keys[i])) {
      fail("A plain file decoded to keys it does not hold");
    }
  }
}

const keyFilePlain = fuzzTarget(
  "config/key-file-plain",
  fc.asyncProperty(
    fc.oneof(
      { weight: 3, arbitrary: mutatedText(PLAIN_SEEDS) },
      { weight: 1, arbitrary: mutatedText(SEALED_SEEDS) },
    ),
    fc.boolean(),
    checkKeyFile,
  ),
);

// Parameter fields from the edges of each bound and beyond.
const paramsField = fc.tuple(
  fc.oneof(
    fc.constantFrom(0, 7, 8, 16, 1024, 65536, MAX_MEMORY_KIB, MAX_MEMORY_KIB + 1, 99_999_999),
    fc.nat({ max: 99_999_999 }),
  ),
  fc.oneof(fc.constantFrom(0, 1, 4, 5, MAX_PASSES, MAX_PASSES + 1, 999), fc.nat({ max: 999 })),
  fc.oneof(fc.constantFrom(0, 1, 2, 99), fc.nat({ max: 99 })),
).map(([m, t, p]) => `m=${m},t=${t},p=${p}`);

const keyFileSealed = fuzzTarget(
  "config/key-file-sealed",
  fc.asyncProperty(
    fc.oneof(
      { weight: 3, arbitrary: mutatedText(SEALED_SEEDS) },
      {
        weight: 1,
        // The fields with other white space between them: split(/\s+/)
        // takes any, so the file reads the same.
        arbitrary: fc.tuple(
          fc.constantFrom(...SEALED_SEEDS),
          fc.array(fc.constantFrom(" ", "\t", "  ", "\u00a0", "\u3000", "\ufeff", "\r\n"), {
            minLength: 3,
            maxLength: 3,
          }),
        ).map(([seed, separators]) =>
          seed.trim().split(" ").reduce((text, field, i) => text + separators[i - 1] + field)
        ),
      },
      {
        weight: 1,
        arbitrary: fc.tuple(fc.constantFrom(...SEALED_SEEDS), paramsField).map(([seed, params]) => {
          const fields = seed.trim().split(" ");
          fields[1] = params;
          return fields.join(" ") + "\n";
        }),
      },
    ),
    fc.boolean(),
    checkKeyFile,
  ),
);

// --- the chat relay's room files ---------------------------------------------

const ROOM = "ops";
const MEMBER_KEY = formatPublicKey(identities[0].publicKey, "alice");
const MEMBERS_SEEDS = [
  JSON.stringify(
    [
      { name: "alice", display: "Alice", fingerprint: "SHA256:abc", key: MEMBER_KEY },
      {
        name: "bob",
        display: "B\u00f6b \u{1f511}",
        fingerprint: "SHA256:def",
        key: formatPublicKey(identities[1].publicKey),
      },
    ],
    null,
    1,
  ) + "\n",
  "[]\n",
];

function record(storedAt: number, envelope: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + envelope.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(storedAt));
  view.setUint32(8, envelope.length);
  out.set(envelope, 12);
  return out;
}
// Stored "now": fixed at load, well inside the store's 7-day window.
const STORED_AT = Date.now();
const QUEUED = [utf8("first envelope"), new Uint8Array(0), new Uint8Array(300).fill(7)];
const QUEUE_SEED = concat(...QUEUED.map((envelope) => record(STORED_AT, envelope)));
const queueName = createHash("sha256").update(utf8(MEMBER_KEY)).digest("hex").slice(0, 32) +
  ".queue";

function isStoredMember(value: unknown): boolean {
  const m = value as Record<string, unknown>;
  return typeof m === "object" && m !== null &&
    ["name", "display", "fingerprint", "key"].every((field) => typeof m[field] === "string") &&
    parsesOrRejects(() => parsePublicKey(m.key as string), SyntaxError) !== undefined;
}

const roomStore = withTempDir("config/room-store", (dir) =>
  fc.asyncProperty(
    fc.option(mutatedText(MEMBERS_SEEDS), { nil: undefined }),
    mutatedBytes([QUEUE_SEED]),
    async (members, queue) => {
      const roomDir = join(dir(), ROOM);
      await Deno.mkdir(roomDir, { recursive: true });
      const membersPath = join(roomDir, "members.json");
      if (members === undefined) await Deno.remove(membersPath).catch(() => {});
      else await Deno.writeTextFile(membersPath, members);
      await Deno.writeFile(join(roomDir, queueName), queue);
      const store = new RoomStore(dir());
      // The relay reads every member's fields (and parses its key) straight
      // away: a member that is not one must be refused here, by name.
      const read = await parsesOrRejectsAsync(() => store.members(ROOM), OvtpError);
      if (read && !read.every(isStoredMember)) {
        fail(`members.json gave ${JSON.stringify(read).slice(0, 200)}`);
      }
      // A queue cut short by a crash keeps its whole records and drops the rest.
      const taken = await store.takeQueued(ROOM, MEMBER_KEY);
      const total = taken.reduce((sum, envelope) => sum + 12 + envelope.length, 0);
      if (total > queue.length) fail("The queue gave back more than it holds");
      if (queue === QUEUE_SEED && JSON.stringify(taken) !== JSON.stringify(QUEUED)) {
        fail("An intact queue did not give back its envelopes");
      }
    },
  ), { testRuns: 200 });

// --- chat name pins ----------------------------------------------------------

const NAMES_SEEDS = [
  "alice SHA256:aaaa\nB%C3%B6b%20%F0%9F%94%91 SHA256:bbbb\n",
  "alice SHA256:aaaa",
  "",
];
const display = fc.oneof(
  fc.constantFrom("alice", "B\u00f6b \u{1f511}", "carol"),
  fc.string({ minLength: 1, maxLength: 8 }),
  fc.string({ minLength: 1, maxLength: 8, unit: "binary" }),
  // A display name comes from another member as JSON, which can carry
  // half a surrogate pair.
  fc.string({
    minLength: 1,
    maxLength: 4,
    unit: fc.constantFrom("a", " ", "%", "\ud800", "\udfff", "\u{1f511}"),
  }),
);

const chatNames = withTempDir("config/chat-names", (dir) =>
  fc.asyncProperty(
    mutatedText(NAMES_SEEDS),
    display,
    fc.constantFrom("SHA256:aaaa", "SHA256:bbbb", "SHA256:cccc"),
    async (text, name, fingerprint) => {
      const keystore = new Keystore(dir());
      await Deno.writeTextFile(keystore.path("chatNames"), text);
      const first = await parsesOrRejectsAsync(
        () => keystore.pinChatName(name, fingerprint),
        OvtpError,
      );
      if (first) {
        // Compare with the file as stored: writing replaces lone surrogates.
        const lines = (await Deno.readTextFile(keystore.path("chatNames"))).split("\n");
        if (!(first.line >= 1 && first.line <= lines.length)) {
          fail(`Line ${first.line} is not in the file`);
        }
        if (!lines[first.line - 1].endsWith(" " + first.fingerprint)) {
          fail(`Line ${first.line} does not pin ${first.fingerprint}`);
        }
      }
      // A name is pinned after the first call: the same key again is no news,
      // and a changed key is reported the same way every time.
      const second = await keystore.pinChatName(name, fingerprint);
      if (JSON.stringify(second) !== JSON.stringify(first)) {
        fail(`Pinning twice gave ${JSON.stringify(first)}, then ${JSON.stringify(second)}`);
      }
    },
  ), { testRuns: 200 });

/** The on-disk file targets. */
export const targets: FuzzTarget[] = [
  listenConfig,
  keyFilePlain,
  keyFileSealed,
  roomStore,
  chatNames,
];
