/**
 * The option tables (commands/_options.ts): the help lists what the table
 * holds, values are parsed and typed, flags win over a config file, which
 * wins over the defaults, and the defaults shown are the library's.
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { LISTEN_OPTIONS, readConfig } from "../commands/_listen_config.ts";
import { listen } from "../commands/listen.ts";
import { optionsOf } from "../commands/completions.ts";
import { closest } from "../commands/_suggest.ts";
import {
  formatSize,
  integer,
  parseOptions,
  parseSizeText,
  seconds,
  size,
} from "../commands/_options.ts";
import { OvtpError } from "../lib/errors.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "../lib/channel/connection.ts";
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUEUED_BYTES } from "../lib/server/defaults.ts";
import { DEFAULT_MAX_PARTIAL_BYTES } from "../lib/services/transfer/inbox.ts";

function usageFailure(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof OvtpError, String(error));
    assert.equal(error.kind, "usage");
    assert.match(error.message, pattern);
    return true;
  };
}

Deno.test("listen's help lists every option of its table, once, and no other", () => {
  const documented = optionsOf(listen);
  assert.deepEqual(documented, Object.keys(LISTEN_OPTIONS).map((name) => `--${name}`).sort());
  for (const name of Object.keys(LISTEN_OPTIONS)) {
    const lines = listen.usage.split("\n").filter((line) =>
      new RegExp(`^  (-[a-z], )?--${name}( |$)`).test(line)
    );
    // --exec has two forms (CMD and NAME=CMD); every other option one line.
    assert.equal(lines.length, name === "exec" ? 2 : 1, name);
  }
  for (const line of listen.usage.split("\n").filter((l) => /^ {2}-/.test(l))) {
    assert.ok(line.length <= 80, `Longer than 80 columns: ${line}`);
  }
});

Deno.test("listen's help prints the library's defaults", () => {
  const help = listen.usage.replace(/\n +/g, " ");
  const mib = (bytes: number) => `${bytes / 1024 ** 2}M`;
  assert.match(help, new RegExp(`open connections \\(default ${DEFAULT_MAX_CONNECTIONS}\\)`));
  assert.match(help, new RegExp(`largest message \\(default ${mib(DEFAULT_MAX_MESSAGE_SIZE)}\\)`));
  assert.match(help, new RegExp(`dropped \\(default ${mib(DEFAULT_MAX_QUEUED_BYTES)}\\)`));
  assert.match(help, new RegExp(`\\(default ${DEFAULT_MAX_PARTIAL_BYTES / 1024 ** 3}G\\)`));
  assert.doesNotMatch(help, /\{default\}|\(default \)/);
});

Deno.test("sizes shown as defaults read back as the same number of bytes", () => {
  for (const bytes of [1, 1000, 1024, 1536, 16 * 1024 ** 2, 3 * 1024 ** 3, 5 * 1024 ** 4]) {
    assert.equal(parseSizeText(formatSize(bytes), "--x"), bytes);
  }
  assert.equal(formatSize(16 * 1024 ** 2), "16M");
  assert.equal(formatSize(1536), "1536");
});

Deno.test("parseOptions() gives typed values: flags, then the config, then the defaults", () => {
  const table = {
    count: integer({ arg: "N", min: 1, default: 4, help: "(default {default})" }),
    wait: seconds({ arg: "S", help: "no default" }),
    limit: size({ arg: "SIZE", default: 1024, help: "(default {default})" }),
  };
  const none = parseOptions(table, [], "test").values();
  assert.deepEqual(none, { count: 4, wait: undefined, limit: 1024 });
  const given = parseOptions(table, ["--wait", "1.5", "--limit", "2K"], "test");
  assert.deepEqual(given.values({ count: 9, limit: 1 }), { count: 9, wait: 1500, limit: 2048 });
});

Deno.test("parseOptions() refuses a value its parser refuses, naming the flag", () => {
  const table = {
    count: integer({ arg: "N", min: 1, max: 10, help: "" }),
    wait: seconds({ arg: "S", help: "" }),
    grace: seconds({ arg: "S", zero: true, help: "" }),
    limit: size({ arg: "SIZE", help: "" }),
  };
  const cases: [string[], RegExp][] = [
    [["--count", "0"], /^Invalid --count "0"$/],
    [["--count", "11"], /^Invalid --count "11"$/],
    [["--count", "1.5"], /^Invalid --count "1\.5"$/],
    [["--count", "-1"], /--count/],
    [["--wait", "0"], /^Invalid --wait "0"$/],
    [["--wait", "1e3"], /^Invalid --wait "1e3"$/],
    // Rounded to no millisecond at all: not a time, and 0 would mean "never".
    [["--wait", "0.0001"], /^Invalid --wait "0\.0001"$/],
    [["--wait", "9".repeat(400)], /^Invalid --wait/],
    [["--limit", "lots"], /^Invalid --limit "lots"$/],
    [["--limit", "9".repeat(400)], /^Invalid --limit/],
    [["--nope"], /Unknown option --nope$/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseOptions(table, args, "test"), usageFailure(pattern), args.join(" "));
  }
  assert.equal(parseOptions(table, ["--grace", "0"], "test").values().grace, 0);
  assert.equal(parseOptions(table, ["--wait", "0.7"], "test").values().wait, 700);
});

Deno.test("readConfig() parses each setting with its option and names the line of a bad one", async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, "listen.json");
    await Deno.writeTextFile(
      path,
      '{\n  "port": 7022,\n  "max-queued": "1M",\n  "rate": "10/s",\n  "exec": "cat"\n}\n',
    );
    assert.deepEqual(await readConfig(path, true), {
      port: 7022,
      "max-queued": 1024 * 1024,
      rate: { count: 10, perMs: 1000 },
      exec: ["cat"],
    });
    const bad: [string, RegExp][] = [
      ['{\n  "port": 70000\n}', /line 2: Invalid "port" "70000"$/],
      ['{\n\n  "max-queued": "lots"\n}', /line 3: Invalid "max-queued" "lots"$/],
      ['{"rate": "0/s"}', /line 1: Invalid rate "0\/s"/],
      ['{"log-format": "xml"}', /line 1: Invalid "log-format" "xml": use text or json$/],
      ['{"idle-timeout": 0}', /line 1: Invalid "idle-timeout" "0"$/],
      ['{"cluster": "http://x:1"}', /line 1: Invalid --cluster address "http:\/\/x:1"/],
      ['{"home": "/tmp"}', /line 1: unknown setting "home"/],
    ];
    for (const [text, pattern] of bad) {
      await Deno.writeTextFile(path, text);
      await assert.rejects(readConfig(path, true), usageFailure(pattern), text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("docs/operations.md's table of limits gives listen's defaults", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/operations.md", import.meta.url));
  const section = doc.split("## Limits and their defaults")[1].split("\n## ")[0];
  const rows = [...section.matchAll(/^\| `--([a-z-]+)` +\| ([^|]+?) +\|/gm)];
  assert.ok(rows.length >= 10, "the table was not found");
  const table: Record<string, { default: unknown; shown?: string }> = LISTEN_OPTIONS;
  for (const [, name, written] of rows) {
    assert.ok(Object.hasOwn(table, name), `--${name} is not a listen option`);
    const { default: value, shown } = table[name];
    if (written === "unlimited") assert.equal(value, undefined, name);
    else {
      const days = /^(\d+) days$/.exec(written);
      const text = days ? String(Number(days[1]) * 86400) : written.replace(/ s$/, "");
      assert.equal(text, shown, `--${name}: the doc says ${written}`);
    }
  }
});

Deno.test("closest() suggests a typo's word, and nothing for a far or tied one", () => {
  const commands = ["send", "sendfile", "getfile", "chat", "seal", "open", "keygen", "keys"];
  assert.equal(closest("sned", commands), "send"); // Two neighbours swapped: one edit.
  assert.equal(closest("getfle", commands), "getfile");
  assert.equal(closest("sendfil", commands), "sendfile");
  assert.equal(closest("frobnicate", commands), undefined);
  assert.equal(closest("kes", commands), "keys");
  assert.equal(closest("sel", commands), "seal");
  assert.equal(closest("bat", ["bit", "but"]), undefined); // Tied: no guess.
  assert.equal(closest("-q", ["-i", "-o", "-r"]), undefined); // Two characters: no guess.
  assert.equal(closest("--tiemout", ["--timeout", "--home"]), "--timeout");
});
