/**
 * Key lines: the public key line, authorized_keys (with options) and
 * known_hosts. These files are edited by hand and pasted from chat and
 * e-mail, so a damaged line must be reported on its own line number,
 * and a line that does parse must mean exactly what it says.
 */

import fc from "fast-check";
import { formatAuthorizedKey, parseAuthorizedKeys } from "../../lib/trust/authorized_keys.ts";
import { toBase64Url } from "../../lib/bytes.ts";
import {
  formatOptions,
  formatRate,
  type KeyOptions,
  parseAllow,
  parseExpiry,
  parseRate,
  SERVICES,
  splitOptions,
} from "../../lib/trust/key_options.ts";
import {
  formatPublicKey,
  hasControlCharacters,
  parsePublicKey,
  type PublicKey,
  publicKeyBytes,
  publicKeyFromBytes,
  samePublicKey,
} from "../../lib/identity/keys.ts";
import { formatKnownHost, parseKnownHosts } from "../../lib/trust/known_hosts.ts";
import { mutatedText } from "../_mutate.ts";
import { type FuzzTarget, fuzzTarget, parsesOrRejects } from "../_target.ts";

// Any 64 bytes make a key as far as the parsers go; fixed bytes keep every
// case cheap. The patterns make base64url with `-` and `_` in it.
const KEYS: PublicKey[] = [0x00, 0xfb, 0x3e, 0xa5].map((start) =>
  publicKeyFromBytes(Uint8Array.from({ length: 64 }, (_, i) => (start + i * 37) & 0xff))
);

const COMMENTS = ["", "alice", "alice@laptop", "build server 2", "caf\u00e9 \u{1f511}"];
const PUBLIC_SEEDS = KEYS.flatMap((key) => COMMENTS.map((c) => formatPublicKey(key, c)));

function sameOptions(a: KeyOptions, b: KeyOptions): boolean {
  return JSON.stringify(a.allow) === JSON.stringify(b.allow) &&
    a.expires?.getTime() === b.expires?.getTime() &&
    a.rate?.count === b.rate?.count && a.rate?.perMs === b.rate?.perMs;
}

function fail(message: string): never {
  throw new Error(message);
}

// --- public key lines -------------------------------------------------------

function checkPublicKey(line: string): void {
  const parsed = parsesOrRejects(() => parsePublicKey(line), SyntaxError);
  if (!parsed) return;
  // The key must be written out in the line itself, in its one canonical
  // form: a damaged line must not decode to some other key.
  const encoded = toBase64Url(publicKeyBytes(parsed.key));
  if (!line.trim().split(/\s+/).includes(encoded)) fail(`Key ${encoded} is not in the line`);
  if (hasControlCharacters(parsed.comment)) fail("A comment with control characters parsed");
  const again = parsePublicKey(formatPublicKey(parsed.key, parsed.comment));
  if (!samePublicKey(again.key, parsed.key) || again.comment !== parsed.comment) {
    fail(`The line does not round-trip: ${JSON.stringify(parsed.comment)}`);
  }
}

const publicKey = fuzzTarget(
  "key_lines/public-key",
  fc.property(
    fc.oneof(
      { weight: 4, arbitrary: mutatedText(PUBLIC_SEEDS) },
      { weight: 1, arbitrary: fc.string({ maxLength: 120 }) },
      { weight: 1, arbitrary: fc.string({ maxLength: 120, unit: "binary" }) },
    ),
    checkPublicKey,
  ),
);

// --- authorized_keys and known_hosts, whole files ---------------------------

const SERVICE_CHOICES = [...SERVICES, "call:backup", "chat:ops", "chat:a.b_c-1"];

const options: fc.Arbitrary<KeyOptions> = fc.record({
  allow: fc.subarray(SERVICE_CHOICES, { minLength: 1 }),
  // toISOString() keeps a 4-digit year only up to 9999.
  expires: fc.date({
    min: new Date("1970-01-01T00:00:00Z"),
    max: new Date("9999-12-31T23:59:59.999Z"),
    noInvalidDate: true,
  }),
  rate: fc.record({
    count: fc.integer({ min: 1, max: 999_999_999 }),
    perMs: fc.constantFrom(1000, 60_000, 3_600_000, 86_400_000),
  }),
}, { requiredKeys: [] });

const name = fc.oneof(
  fc.constantFrom(...COMMENTS),
  fc.string({ maxLength: 24, unit: "grapheme" }).map((s) => s.trim()).filter((s) =>
    !hasControlCharacters(s) && s === s.trim()
  ),
);

/** One line of a file as written: what it should parse to, or a comment. */
type Spec =
  | { kind: "entry"; key: number; name: string; options: KeyOptions; host: string }
  | { kind: "other"; text: string };

const HOSTS = ["example.com:7022", "[::1]:7022", "10.0.0.1:1", "h\u00e9te:65535"];

const spec: fc.Arbitrary<Spec> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("entry" as const),
      key: fc.nat({ max: KEYS.length - 1 }),
      name,
      options,
      host: fc.constantFrom(...HOSTS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("other" as const),
      text: fc.constantFrom("", "   ", "# a comment", "\t# indented comment"),
    }),
  },
);

/** A file of specs with some lines damaged; `mutated[i]` says which. */
function fileOf(format: (spec: Spec & { kind: "entry" }) => string) {
  return fc.array(spec, { minLength: 1, maxLength: 6 }).chain((specs) => {
    const lines = specs.map((s) => s.kind === "entry" ? format(s) : s.text);
    return fc.tuple(
      fc.constant(specs),
      fc.tuple(...lines.map((line) =>
        fc.oneof(
          { weight: 3, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: mutatedText([line]) },
        )
      )),
      fc.constantFrom("\n", "\r\n"),
    ).map(([specs, damage, eol]) => {
      const written = lines.map((line, i) => damage[i] ?? line);
      return {
        specs,
        written,
        mutated: damage.map((d, i) => d !== undefined && d !== lines[i]),
        text: written.join(eol),
      };
    });
  });
}

/**
 * Checks what a file parser must do with any file: each line that is not
 * blank or a comment is exactly one entry or one error, under its own line
 * number; each line that was written whole parses to what was written.
 * Returns the physical line of each entry, for the caller's own checks.
 */
function checkLines(
  file: { specs: Spec[]; written: string[]; mutated: boolean[]; text: string },
  result: { entries: { line: number }[]; errors: { line: number; message: string }[] },
  expect: (spec: Spec & { kind: "entry" }, entry: { line: number }) => void,
): string[] {
  const physical = file.text.split("\n");
  const wanted = physical.flatMap((raw, i) => {
    const line = raw.trim();
    return line && !line.startsWith("#") ? [i + 1] : [];
  });
  const got = [...result.entries, ...result.errors].map((x) => x.line).sort((a, b) => a - b);
  if (JSON.stringify(got) !== JSON.stringify(wanted)) {
    fail(`Lines reported ${JSON.stringify(got)}, expected ${JSON.stringify(wanted)}`);
  }
  for (const error of result.errors) {
    if (!error.message) fail(`Line ${error.line} refused without a reason`);
  }
  let lineNumber = 1;
  file.specs.forEach((s, i) => {
    if (s.kind === "entry" && !file.mutated[i]) {
      const entry = result.entries.find((e) => e.line === lineNumber);
      if (!entry) fail(`Intact line ${lineNumber} was refused`);
      expect(s, entry);
    }
    lineNumber += file.written[i].split("\n").length;
  });
  return physical;
}

const authorizedKeys = fuzzTarget(
  "key_lines/authorized-keys",
  fc.property(
    fileOf((s) => formatAuthorizedKey(KEYS[s.key], s.name, s.options)),
    (file) => {
      const result = parseAuthorizedKeys(file.text);
      const physical = checkLines(file, result, (s, found) => {
        const entry = result.entries.find((e) => e === found)!;
        if (
          !samePublicKey(entry.key, KEYS[s.key]) || entry.name !== s.name ||
          !sameOptions(entry.options, s.options)
        ) {
          fail(`Line ${entry.line} parsed to another entry than written`);
        }
      });
      for (const entry of result.entries) {
        const line = physical[entry.line - 1];
        // What a damaged line grants must be spelled out in it.
        const encoded = toBase64Url(publicKeyBytes(entry.key));
        if (!line.includes(encoded)) fail(`Line ${entry.line}: key ${encoded} is not in it`);
        if (!line.includes(entry.name)) fail(`Line ${entry.line}: name not in it`);
        for (const option of ["allow", "expires", "rate"] as const) {
          if (entry.options[option] && !line.includes(`${option}=`)) {
            fail(`Line ${entry.line}: ${option} set but not written`);
          }
        }
        const again = parseAuthorizedKeys(
          formatAuthorizedKey(entry.key, entry.name, entry.options),
        );
        const back = again.entries[0];
        if (
          again.errors.length > 0 || !back || !samePublicKey(back.key, entry.key) ||
          back.name !== entry.name || !sameOptions(back.options, entry.options)
        ) {
          fail(`Line ${entry.line} does not round-trip: ${again.errors[0]?.message}`);
        }
      }
    },
  ),
);

const knownHosts = fuzzTarget(
  "key_lines/known-hosts",
  fc.property(
    fileOf((s) => formatKnownHost(s.host, KEYS[s.key])),
    (file) => {
      const result = parseKnownHosts(file.text);
      const physical = checkLines(file, result, (s, found) => {
        const entry = result.entries.find((e) => e === found)!;
        if (!entry.key || !samePublicKey(entry.key, KEYS[s.key]) || entry.host !== s.host) {
          fail(`Line ${entry.line} parsed to another host or key than written`);
        }
      });
      for (const entry of result.entries) {
        const line = physical[entry.line - 1].trim();
        if (!entry.host || /\s/.test(entry.host) || !line.startsWith(entry.host)) {
          fail(`Line ${entry.line}: host ${JSON.stringify(entry.host)} is not its first field`);
        }
        // A line whose second field is a fingerprint holds no key.
        const written = entry.key ? toBase64Url(publicKeyBytes(entry.key)) : entry.fingerprint!;
        if (!line.includes(written)) fail(`Line ${entry.line}: the key is not in it`);
        const back = parseKnownHosts(formatKnownHost(entry.host, entry.key ?? written))
          .entries[0];
        const same = entry.key
          ? back?.key && samePublicKey(back.key, entry.key)
          : back?.fingerprint === written;
        if (!back || back.host !== entry.host || !same) {
          fail(`Line ${entry.line} does not round-trip`);
        }
      }
    },
  ),
);

// --- the options themselves -------------------------------------------------

const OPTION_SEEDS = [
  'allow="message,call:backup,upload,download,chat:ops",expires="2026-12-31T00:00:00Z",rate="100/h" ovtp1 K a',
  "allow=message,rate=5/s ovtp1 K",
  'expires="2026-12-31" ovtp1 K name with spaces',
  'allow="chat",allow="message" ovtp1 K',
  "ovtp1 K no options",
];

const splitOptionsTarget = fuzzTarget(
  "key_lines/options",
  fc.property(
    fc.oneof(
      { weight: 4, arbitrary: mutatedText(OPTION_SEEDS) },
      { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
    ),
    (line) => {
      const split = parsesOrRejects(() => splitOptions(line), SyntaxError);
      if (!split) return;
      if (!line.endsWith(split.rest) && !line.trimEnd().endsWith(split.rest)) {
        fail(`The rest ${JSON.stringify(split.rest)} is not the end of the line`);
      }
      const formatted = formatOptions(split.options);
      if (!formatted) return;
      const again = splitOptions(`${formatted} ovtp1 K`);
      if (!sameOptions(again.options, split.options) || again.rest !== "ovtp1 K") {
        fail(`Options do not round-trip through ${formatted}`);
      }
    },
  ),
);

const digits = (n: number) =>
  fc.integer({ min: 0, max: 10 ** n - 1 }).map((v) => String(v).padStart(n, "0"));
const expiryText = fc.oneof(
  fc.tuple(
    fc.oneof(fc.constantFrom("0000", "1970", "2026", "9999"), digits(4)),
    fc.oneof(fc.constantFrom("00", "01", "02", "12", "13"), digits(2)),
    fc.oneof(fc.constantFrom("00", "01", "28", "29", "30", "31", "32"), digits(2)),
    fc.constantFrom("", "T00:00:00Z", "T23:59:59.999Z", "T24:00:00Z", "T18:00", "T12:00:00"),
    fc.constantFrom("", "-14:00", "+14:00", "+00:00", " (note)", "x"),
  ).map((parts) => parts[0] + "-" + parts[1] + "-" + parts[2] + parts[3] + parts[4]),
  mutatedText(["2026-12-31", "2026-12-31T18:00:00Z", "2026-02-28T23:59:59.999+01:00"]),
);

function checkExpiry(text: string): void {
  const date = parsesOrRejects(() => parseExpiry(text), SyntaxError);
  if (!date) return;
  // formatOptions writes toISOString(): it must read back as the same instant.
  const back = parsesOrRejects(() => parseExpiry(date.toISOString()), SyntaxError);
  if (back?.getTime() !== date.getTime()) {
    fail(`Expiry ${text} is written as ${date.toISOString()}, which does not read back`);
  }
  // A day that does not exist (February 30) must not move to another one.
  const [year, month, day] = text.slice(0, 10).split("-").map(Number);
  const calendar = new Date(0);
  calendar.setUTCFullYear(year, month - 1, day);
  if (calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    fail(`Expiry ${text} names no calendar day, yet became ${date.toISOString()}`);
  }
}

const optionValues = fuzzTarget(
  "key_lines/option-values",
  fc.property(
    expiryText,
    fc.oneof(
      mutatedText(["100/h", "1/s", "999999999/d", "60/m"]),
      fc.string({ maxLength: 16 }),
    ),
    fc.oneof(
      mutatedText(["message,call:backup,upload,download,chat:ops", "chat", "call:a.b-c_d"]),
      fc.string({ maxLength: 40 }),
    ),
    (expiry, rateText, allowText) => {
      checkExpiry(expiry);
      const rate = parsesOrRejects(() => parseRate(rateText), SyntaxError);
      if (rate) {
        if (!Number.isSafeInteger(rate.count) || rate.count < 1 || !(rate.perMs > 0)) {
          fail(`Rate ${rateText} parsed to ${JSON.stringify(rate)}`);
        }
        const back = parseRate(formatRate(rate));
        if (back.count !== rate.count || back.perMs !== rate.perMs) {
          fail(`Rate ${rateText} does not round-trip`);
        }
      }
      const allow = parsesOrRejects(() => parseAllow(allowText), SyntaxError);
      if (allow) {
        const known = allow.every((s) => (SERVICES as readonly string[]).includes(s.split(":")[0]));
        if (allow.length === 0 || !known || allow.some((s) => /[\s,"]/.test(s))) {
          fail(`Allow list ${JSON.stringify(allowText)} parsed to ${JSON.stringify(allow)}`);
        }
        if (JSON.stringify(parseAllow(allow.join(","))) !== JSON.stringify(allow)) {
          fail(`Allow list ${JSON.stringify(allowText)} does not round-trip`);
        }
      }
    },
  ),
);

/** The key line targets. */
export const targets: FuzzTarget[] = [
  publicKey,
  authorizedKeys,
  knownHosts,
  splitOptionsTarget,
  optionValues,
];
