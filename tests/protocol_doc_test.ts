/**
 * The worked example of docs/protocol.md section 13, read from the document
 * itself and checked against the code that runs the channel: the bulk keys
 * (which spend nonce 0 of each direction) and each record, encrypted at the
 * nonce the document gives, must be the bytes it shows, and decrypt to the
 * plaintexts it shows. An edit on either side that breaks the example fails
 * here. The document's tables of message types are checked against lib's
 * one table of them the same way.
 */

import assert from "node:assert/strict";
import { deriveBulkKey } from "../lib/channel/_bulk_cipher.ts";
import { toHex } from "../lib/bytes.ts";
import { encodeFrame } from "../lib/channel/framing.ts";
import { decodeResponse, MessageType } from "../lib/channel/messages.ts";
import { CHACHA_POLY } from "../lib/channel/noise/aead.ts";
import { CipherState } from "../lib/channel/noise/cipher_state.ts";
import { MessageAssembler } from "../lib/channel/connection.ts";

const doc = await Deno.readTextFile(new URL("../docs/protocol.md", import.meta.url));
const section = doc.slice(doc.indexOf("## 13. Worked example"), doc.indexOf("## 14. "));
const blocks = [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]);

function unhex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  assert.match(clean, /^([0-9a-f]{2})+$/, `not hex: ${text}`);
  return Uint8Array.from(clean.match(/../g)!, (b) => parseInt(b, 16));
}

/** `Name: hex` lines of the plaintext block. */
function plaintexts(): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const line of blocks[0].trim().split("\n")) {
    const [name, hex] = line.split(/:\s+/);
    out[name] = unhex(hex);
  }
  return out;
}

/** The keys and the frames, each frame as its header line and its indented hex lines. */
function vectors() {
  const keys: Record<string, Uint8Array> = {};
  const frames: { direction: string; key: string; n: number; name: string; bytes: Uint8Array }[] =
    [];
  for (const line of blocks[1].split("\n")) {
    const key = /^(k1|k2|bk1|bk2)\s+=\s+([0-9a-f]{64})/.exec(line);
    const header = /^(\S+ → \S+), (k1|k2), n = (\d+) \((\w+)\):$/.exec(line);
    if (key) keys[key[1]] = unhex(key[2]);
    else if (header) {
      frames.push({
        direction: header[1],
        key: header[2],
        n: Number(header[3]),
        name: header[4],
        bytes: new Uint8Array(0),
      });
    } else if (/^\s+[0-9a-f]+$/.test(line)) {
      const last = frames.at(-1)!;
      last.bytes = new Uint8Array([...last.bytes, ...unhex(line)]);
    } else if (line.trim()) throw new Error(`Unexpected line in section 13: ${line}`);
  }
  return { keys, frames };
}

Deno.test("protocol.md section 13: the worked example's records are what the channel sends", () => {
  const { keys, frames } = vectors();
  const texts = plaintexts();
  assert.deepEqual(Object.keys(keys).sort(), ["bk1", "bk2", "k1", "k2"]);
  assert.deepEqual(frames.map((f) => f.name), ["Welcome", "Request", "Response"]);
  // One state per direction, as SecureChannel holds them: the bulk key first.
  const states = {
    k1: new CipherState(CHACHA_POLY, keys.k1),
    k2: new CipherState(CHACHA_POLY, keys.k2),
  };
  assert.equal(toHex(deriveBulkKey(states.k1)), toHex(keys.bk1));
  assert.equal(toHex(deriveBulkKey(states.k2)), toHex(keys.bk2));
  for (const frame of frames) {
    const state = states[frame.key as "k1" | "k2"];
    assert.equal(state.counter, frame.n, `${frame.name}: the nonce the document gives`);
    const plaintext = texts[frame.name];
    assert.ok(plaintext, `no plaintext for ${frame.name}`);
    const expected = encodeFrame(state.encryptWithAd(new Uint8Array(0), plaintext));
    assert.equal(toHex(frame.bytes), toHex(expected), `${frame.name} frame`);
    // And the other way: the receiver's state opens the frame to the plaintext.
    const receiver = new CipherState(CHACHA_POLY, keys[frame.key]);
    deriveBulkKey(receiver);
    while (receiver.counter < frame.n) receiver.encryptWithAd(new Uint8Array(0), new Uint8Array(0));
    const length = (frame.bytes[0] << 8) | frame.bytes[1];
    assert.equal(length, frame.bytes.length - 2);
    assert.deepEqual(receiver.decryptWithAd(new Uint8Array(0), frame.bytes.subarray(2)), plaintext);
  }
});

Deno.test("protocol.md section 13: the plaintexts are well-formed messages", () => {
  const texts = plaintexts();
  const [welcome] = new MessageAssembler(1 << 20).push(texts.Welcome);
  assert.ok("body" in welcome && welcome.type === MessageType.Welcome && welcome.id === 0);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(welcome.body)), {
    protocol: 1,
    software: "ovtp/0.1.0",
    idle_timeout: 300,
  });
  const [request] = new MessageAssembler(1 << 20).push(texts.Request);
  assert.ok("body" in request && request.type === MessageType.Request && request.id === 1);
  assert.equal(new TextDecoder().decode(request.body), "hello");
  const [response] = new MessageAssembler(1 << 20).push(texts.Response);
  assert.ok("body" in response && response.type === MessageType.Response && response.id === 1);
  const decoded = decodeResponse(response.body);
  assert.equal(decoded.status, "ok");
  assert.equal(new TextDecoder().decode(decoded.response), "hi");
});

Deno.test("protocol.md's tables of message types and lib's one table of them agree", () => {
  // Rows such as "| `0x20` | Offer | client → server | ...", in any section.
  const rows = [...doc.matchAll(/^\| `0x([0-9a-f]{2})` \| (\w+)\s*\|/gm)].map((m) => ({
    type: parseInt(m[1], 16),
    name: m[2],
  }));
  assert.ok(rows.length >= 30, `only ${rows.length} rows of message types found in protocol.md`);
  const byValue = new Map<number, string>(
    Object.entries(MessageType).map(([name, type]) => [type, name]),
  );
  assert.equal(byValue.size, Object.keys(MessageType).length, "two names share a message type");
  for (const { type, name } of rows) {
    const named = byValue.get(type);
    assert.ok(named?.endsWith(name), `protocol.md's 0x${type.toString(16)} ${name} is ${named}`);
  }
  const documented = new Set(rows.map((row) => row.type));
  for (const [type, name] of byValue) {
    assert.ok(documented.has(type), `${name} (0x${type.toString(16)}) is not in protocol.md`);
  }
});
