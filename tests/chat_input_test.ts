import assert from "node:assert/strict";
import { parseChatInput } from "../commands/_chat_input.ts";

Deno.test("a typed line is a message unless it is a chat command; //text sends /text", () => {
  assert.deepEqual(parseChatInput("hello"), { kind: "message", text: "hello" });
  assert.deepEqual(parseChatInput(" /who"), { kind: "message", text: " /who" });
  assert.deepEqual(parseChatInput("//help"), { kind: "message", text: "/help" });
  assert.deepEqual(parseChatInput("//"), { kind: "message", text: "/" });
  assert.deepEqual(parseChatInput("/help"), { kind: "help" });
  assert.deepEqual(parseChatInput("/who"), { kind: "who" });
  assert.deepEqual(parseChatInput("/quit "), { kind: "quit" });
});

Deno.test("any other line starting with / is an unknown command, never a message", () => {
  for (const line of ["/qiut", "/", "/ hi", "/quit now", "/Help", "/whom", "/shrug ¯\\_(ツ)_/¯"]) {
    assert.equal(parseChatInput(line).kind, "unknown", line);
  }
  assert.deepEqual(parseChatInput("/qiut please"), { kind: "unknown", command: "/qiut" });
});

Deno.test("/invite and /remove take the rest of the line; without it they are unknown", () => {
  const line = "ovtp1 AAAA bob@laptop";
  assert.deepEqual(parseChatInput(`/invite ${line}`), { kind: "invite", target: line });
  assert.deepEqual(parseChatInput("/remove  bob "), { kind: "remove", target: "bob" });
  assert.deepEqual(parseChatInput("/invite"), { kind: "unknown", command: "/invite" });
  assert.deepEqual(parseChatInput("//invite bob"), { kind: "message", text: "/invite bob" });
});
