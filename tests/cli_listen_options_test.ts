/**
 * listen's settings as a user gives them: a bad value, on the command line
 * or in listen.json, is refused before anything starts, naming the flag or
 * the file's line; a connecting command's --timeout is parsed the same way.
 */

import assert from "node:assert/strict";
import { assertOneError, GRACEFUL_STOP, homeWithIdentity, ovtp, startListen } from "./_cli.ts";

Deno.test("listen refuses a bad value in listen.json with its line, before listening", async () => {
  const { home } = await homeWithIdentity("server");
  const cases: [string, RegExp][] = [
    ['{\n  "host": "127.0.0.1",\n  "port": 70000\n}\n', /line 3: Invalid "port" "70000"$/],
    ['{\n  "max-queued": "lots"\n}\n', /line 2: Invalid "max-queued" "lots"$/],
    ['{\n  "grace": -1\n}\n', /line 2: Invalid "grace" "-1"$/],
    ['{\n  "log-format": "xml"\n}\n', /line 2: Invalid "log-format" "xml": use text or json$/],
  ];
  for (const [text, pattern] of cases) {
    await Deno.writeTextFile(`${home}/listen.json`, text);
    const result = await ovtp(["listen", "--port", "0"], { home });
    assert.equal(result.code, 2, result.stderr);
    assertOneError(result, pattern);
    assert.doesNotMatch(result.stderr, /listening on/);
  }
});

Deno.test("listen refuses a bad value given as a flag, naming the flag", async () => {
  const { home } = await homeWithIdentity("server");
  const cases: [string[], RegExp][] = [
    [["--max-queued", "lots"], /Invalid --max-queued "lots"$/],
    [["--idle-timeout", "0"], /Invalid --idle-timeout "0"$/],
    [["--max-message-size", "9".repeat(400)], /Invalid --max-message-size "9+"$/],
    [["--rate", "0/s"], /Invalid rate "0\/s"/],
  ];
  for (const [args, pattern] of cases) {
    const result = await ovtp(["listen", "--host", "127.0.0.1", "--port", "0", ...args], { home });
    assert.equal(result.code, 2, result.stderr);
    assertOneError(result, pattern);
  }
});

// Windows has no SIGTERM (listen stops on Ctrl-C only): see GRACEFUL_STOP.
Deno.test("a flag wins over listen.json, which wins over the default", {
  ignore: !GRACEFUL_STOP,
}, async () => {
  const { home } = await homeWithIdentity("server");
  // The config sets a JSON log (the default is text) and a grace of 0; the
  // flag's grace of 0.5 s must be the one the shutdown line names.
  await Deno.writeTextFile(`${home}/listen.json`, '{"grace": 0, "log-format": "json"}');
  const listener = await startListen(home, ["--grace", "0.5"]);
  assert.equal(await listener.stop(), 0, listener.stderr());
  const lines = listener.stderr().trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.ok(lines.some((line) => /up to 0\.5 s/.test(line.msg)), listener.stderr());
});

Deno.test("a connecting command refuses a bad --timeout before connecting", async () => {
  const { home } = await homeWithIdentity("client");
  for (const value of ["0", "soon", "-1"]) {
    const result = await ovtp(["send", "127.0.0.1:1", "hi", `--timeout=${value}`], { home });
    assert.equal(result.code, 2, result.stderr);
    assertOneError(result, new RegExp(`Invalid --timeout "${value}"$`));
  }
});
