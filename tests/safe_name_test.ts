import assert from "node:assert/strict";
import {
  alternativeName,
  INTERNAL_NAME,
  MAX_COMPONENT_LENGTH,
  safeRelativePath,
} from "../lib/services/transfer/inbox.ts";

Deno.test("safeRelativePath() keeps an ordinary relative path", () => {
  assert.deepEqual(safeRelativePath("photos/2026/a.jpg"), ["photos", "2026", "a.jpg"]);
  assert.deepEqual(safeRelativePath("photos\\2026\\a.jpg"), ["photos", "2026", "a.jpg"]);
});

Deno.test("safeRelativePath() drops absolute roots, . and .. so the path stays inside", () => {
  assert.deepEqual(safeRelativePath("/etc/passwd"), ["etc", "passwd"]);
  assert.deepEqual(safeRelativePath("../../.ssh/authorized_keys"), [".ssh", "authorized_keys"]);
  assert.deepEqual(safeRelativePath("C:\\Windows\\x.dll"), ["C_", "Windows", "x.dll"]);
  assert.deepEqual(safeRelativePath("./.././"), ["unnamed"]);
  assert.deepEqual(safeRelativePath(""), ["unnamed"]);
});

Deno.test("safeRelativePath() replaces control characters and trims what Windows would drop", () => {
  assert.deepEqual(safeRelativePath("a\u001b[31mb\n.txt"), ["a_[31mb_.txt"]);
  assert.deepEqual(safeRelativePath("name. . "), ["name"]);
  assert.deepEqual(safeRelativePath("..."), ["_"]);
});

Deno.test("safeRelativePath() prefixes Windows device names, with or without an extension", () => {
  for (const name of ["CON", "nul.txt", "Com1.log", "lpt9", "aux.tar.gz", "PRN"]) {
    assert.deepEqual(safeRelativePath(name), [`_${name}`], name);
  }
  for (const name of ["console", "nully.txt", "com10", "lpt.txt", "auxiliary"]) {
    assert.deepEqual(safeRelativePath(name), [name], name);
  }
});

Deno.test("safeRelativePath() cuts long components but keeps a short extension", () => {
  const [part] = safeRelativePath(`${"x".repeat(300)}.tar.gz`);
  assert.equal(part.length, MAX_COMPONENT_LENGTH);
  assert.ok(part.endsWith(".gz"));
});

Deno.test("alternativeName() numbers before the extension", () => {
  assert.equal(alternativeName("a.txt", 0), "a.txt");
  assert.equal(alternativeName("a.txt", 2), "a (2).txt");
  assert.equal(alternativeName("README", 1), "README (1)");
  assert.equal(alternativeName(".bashrc", 1), ".bashrc (1)");
});

// Found by the messages/file-names fuzz target: only ASCII spaces were
// trimmed from the end, so "..\ufeff." became "..\ufeff", which the next
// sanitizing (trim() counts U+FEFF as white space) turned into "..".
Deno.test("safeRelativePath() is stable: sanitizing its result again changes nothing", () => {
  for (const name of ["..\ufeff.", "a\u00a0.", " x \u2003"]) {
    const parts = safeRelativePath(name);
    assert.deepEqual(safeRelativePath(parts.join("/")), parts, JSON.stringify(name));
  }
  assert.deepEqual(safeRelativePath("..\ufeff."), ["_"]);
});

Deno.test("safeRelativePath() keeps every name out of the inbox's internal folder", () => {
  const reserved = [
    INTERNAL_NAME,
    ".ovtp",
    ".OVTP-Internal",
    ` ${INTERNAL_NAME} `,
    `${INTERNAL_NAME}.`,
    "\uff0e\uff4f\uff56\uff54\uff50-internal", // Full width.
    ".ovtp\u017ftate", // Long s.
  ];
  for (const name of reserved) {
    const [part] = safeRelativePath(name);
    assert.ok(part.startsWith("_"), `${JSON.stringify(name)} -> ${part}`);
    assert.deepEqual(safeRelativePath(part), [part], "stable");
  }
  assert.deepEqual(safeRelativePath(`a/${INTERNAL_NAME}/partial`), [
    "a",
    `_${INTERNAL_NAME}`,
    "partial",
  ]);
  for (const name of [".partial", ".ovt", "x.ovtp", "_.ovtp"]) {
    assert.deepEqual(safeRelativePath(name), [name], name);
  }
});
