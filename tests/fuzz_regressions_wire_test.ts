/**
 * Inputs the wire fuzz targets (fuzz/targets/frames.ts, handshake.ts,
 * messages.ts) found to crash a parser or pass a malformed value, each kept
 * as the shrunk counterexample fast-check reported.
 */

import assert from "node:assert/strict";
import { decodeCall } from "../lib/services/function_call.ts";
import { decodeJson, MessageError } from "../lib/channel/messages.ts";
import { checkResult } from "../lib/services/transfer/engine.ts";

// messages/call: a Call header of JSON `null` made decodeCall() read
// `null.params` and throw a TypeError instead of MessageError, which the
// server would not have reported as a protocol error.
Deno.test("decodeCall() refuses a header that is JSON null with MessageError", () => {
  const body = Uint8Array.from([0, 4, 110, 117, 108, 108, 1, 151, 209, 128, 5, 0]);
  assert.throws(() => decodeCall(body), {
    name: "MessageError",
    message: "Malformed call header",
  });
});

// messages/json-bodies: checkResult() checked only `status`, so a server
// could hand the sender a `renamed`, `path` or `size` of any JSON type,
// which FileResult promises are a boolean, a string and a count.
Deno.test("checkResult() refuses optional fields of the wrong type with MessageError", () => {
  const bodies = [
    '{"status":"ok","renamed":{"x":1}}',
    '{"status":"ok","path":5}',
    '{"status":"ok","size":-1}',
    '{"status":"error","code":null}',
    '{"status":"error","message":["no"]}',
    '{"status":"ok","sha256":true}',
  ];
  for (const text of bodies) {
    assert.throws(
      () => checkResult(decodeJson(new TextEncoder().encode(text))),
      MessageError,
      text,
    );
  }
  const ok = { status: "ok", path: "a/b", size: 3, sha256: "0".repeat(64), renamed: false };
  assert.deepEqual(checkResult(ok), ok);
});
