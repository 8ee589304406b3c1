/**
 * The neutralizer for peer text (commands/_printable.ts): each class of
 * character that could drive a terminal, split a line or reorder text has
 * its documented printable form, and JSON lines keep the exact value.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { jsonLine, printable } from "../commands/_printable.ts";
import { textLogLine } from "../commands/_logger.ts";

/** Characters the printable form must never contain. */
const RAW =
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;

Deno.test("printable() shows C0 controls in caret notation, and LF, CR, TAB as \\n \\r \\t", () => {
  assert.equal(printable("\x00\x01\x07\x08\x0b\x0c\x1a\x1b\x1c\x1f"), "^@^A^G^H^K^L^Z^[^\\^_");
  assert.equal(printable("a\nb\rc\td\r\ne"), "a\\nb\\rc\\td\\r\\ne");
  for (let code = 0; code < 0x20; code++) {
    const shown = printable(String.fromCharCode(code));
    assert.doesNotMatch(shown, RAW, `U+${code.toString(16)}`);
  }
});

Deno.test("printable() shows DEL as ^? and every C1 control as \\u{..}", () => {
  assert.equal(printable("\x7f"), "^?");
  for (let code = 0x80; code <= 0x9f; code++) {
    assert.equal(printable(String.fromCharCode(code)), `\\u{${code.toString(16)}}`);
  }
  assert.equal(printable("\u009b31m\u0085next"), "\\u{9b}31m\\u{85}next");
});

Deno.test("printable() escapes terminal sequences: OSC title, OSC 52 clipboard, CSI", () => {
  assert.equal(printable("\x1b]0;pwned\x07"), "^[]0;pwned^G");
  assert.equal(printable("\x1b]52;c;cm0gLXJmIH4=\x1b\\"), "^[]52;c;cm0gLXJmIH4=^[\\");
  assert.equal(printable("\x1b[2J\x1b[H"), "^[[2J^[[H");
});

Deno.test("printable() escapes line and paragraph separators and bidi controls", () => {
  assert.equal(printable("a\u2028b\u2029c"), "a\\u{2028}b\\u{2029}c");
  const bidi = [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2069];
  for (const code of bidi) {
    assert.equal(printable(`x${String.fromCharCode(code)}y`), `x\\u{${code.toString(16)}}y`);
  }
  // "alice" written backwards behind an override reads as "alice".
  assert.equal(printable("\u202eecila"), "\\u{202e}ecila");
});

Deno.test("printable() escapes invisible format characters but keeps the joiners emoji need", () => {
  assert.equal(
    printable("a\u200bb\ufeffc\u2060d\u00ade"),
    "a\\u{200b}b\\u{feff}c\\u{2060}d\\u{ad}e",
  );
  assert.equal(printable("tag\u{e0041}"), "tag\\u{e0041}");
  assert.equal(printable(`lone${String.fromCharCode(0xd800)}`), "lone\\u{d800}");
  const family = "👩\u200d👩\u200d👧";
  assert.equal(printable(family), family);
  assert.equal(printable("می\u200cخواهم"), "می\u200cخواهم");
});

Deno.test("printable() leaves ordinary text alone, including non-Latin scripts and emoji", () => {
  for (
    const text of [
      "hello, world",
      "naïve café ß",
      "日本語のテキスト",
      "שלום",
      "🎉 ok ✓",
      "a ^ b \\ c",
    ]
  ) {
    assert.equal(printable(text), text);
  }
});

Deno.test("printable({ keepLines }) keeps LF, CR LF and TAB but escapes a lone CR and the rest", () => {
  assert.equal(
    printable("one\ntwo\r\nthree\tfour\rfake\x1b[1m\u2028", { keepLines: true }),
    "one\ntwo\r\nthree\tfour\\rfake^[[1m\\u{2028}",
  );
});

Deno.test("printable() output never holds a raw control, separator or bidi character", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 64 }), (text) => {
      const shown = printable(text);
      assert.doesNotMatch(shown, RAW);
      assert.doesNotMatch(printable(text, { keepLines: true }).replace(/\r\n|[\n\t]/g, ""), RAW);
      // Idempotent: printing the printable form again changes nothing.
      assert.equal(printable(shown), shown);
    }),
  );
});

Deno.test("jsonLine() keeps every string exactly and holds no raw control or format character", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 64 }), (text) => {
      const line = jsonLine({ message: text, n: 1 });
      assert.doesNotMatch(line, RAW);
      assert.doesNotMatch(line, /\n/);
      assert.deepEqual(JSON.parse(line), { message: text, n: 1 });
    }),
  );
  assert.equal(jsonLine({ a: "\u009b\x7f\u202e" }), '{"a":"\\u009b\\u007f\\u202e"}');
  assert.equal(jsonLine({ a: "\u{e0041}" }), '{"a":"\\udb40\\udc41"}');
});

Deno.test("a text log line is one line whatever its message and fields hold", () => {
  const line = textLogLine("warn", "refused \x1b]0;x\x07\novtp: client connected", {
    name: "carol\nalice",
    remote: "127.0.0.1:5000",
    path: 'a b="c"\\',
    fingerprint: "SHA256:x",
  });
  assert.equal(
    line,
    "ovtp: warning: refused ^[]0;x^G\\novtp: client connected " +
      '(name="carol\\nalice" remote=127.0.0.1:5000 path="a b=\\"c\\"\\\\" fingerprint=SHA256:x)',
  );
  // A value cannot pose as another field.
  assert.equal(
    textLogLine("info", "client connected", { name: "x fingerprint=SHA256:alice" }),
    'ovtp: client connected (name="x fingerprint=SHA256:alice")',
  );
});
