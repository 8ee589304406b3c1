// Regression tests for bugs found in review, one test per bug. Each comment
// says what was wrong; the test fails if it comes back.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { decodeKeyFile, encodeKeyFile } from "../lib/identity/key_file.ts";
import { formatPublicKey, generateIdentity, parsePublicKey } from "../lib/identity/keys.ts";
import { decodeResponse, MessageError } from "../lib/channel/messages.ts";
import { serve } from "../lib/server/server.ts";
import { OvtpClient, responseText } from "../lib/client/client.ts";
import { Inbox } from "../lib/services/transfer/inbox.ts";
import { streamSource } from "../lib/services/transfer/sources.ts";
import { checkJoin, isValidDisplay } from "../lib/services/chat/chat_messages.ts";
import { assertOneError, ovtp } from "./_cli.ts";

const FAST = { memory: 1024, passes: 1, parallelism: 1 };

/** A passphrase callback that fails the test if asked: the file must be refused first. */
function mustNotAsk(): Promise<string> {
  return Promise.reject(new Error("The passphrase was asked: the malformed file was accepted"));
}

function withField(text: string, index: number, value: string): string {
  const fields = text.trim().split(" ");
  fields[index] = value;
  return fields.join(" ");
}

// lib/identity/key_file.ts:96 decodes the salt without checking its length; Argon2
// needs at least 8 bytes, so WebCrypto throws a DOMException (OperationError
// "Argon2 derivation failed") after the passphrase was asked, where the
// documented contract (lib/identity/key_file.ts:82-84) is a SyntaxError.
Deno.test("decodeKeyFile() refuses a salt shorter than 8 bytes with SyntaxError", async () => {
  const sealed = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  for (const salt of ["AA", "AAAAAAAAAA"]) { // 1 and 7 bytes
    const ask = () => Promise.resolve("secret");
    await assert.rejects(decodeKeyFile(withField(sealed, 2, salt), ask), (error: unknown) => {
      assert.ok(error instanceof SyntaxError, `expected SyntaxError, got ${error}`);
      return true;
    });
  }
});

// lib/identity/key_file.ts:35-38: the comment says a planted file "must not make ovtp
// allocate gigabytes or spin for minutes", but MAX_MEMORY_KIB is 4 GiB and
// MAX_PASSES 64. Measured here, Argon2id costs about 2.1 ms per MiB-pass
// (64 MiB × 3 passes: 403 ms; 256 MiB × 3: 1624 ms; 64 MiB × 12: 1359 ms), so
// m=4194304,t=64 would hold 4 GiB for about 9 minutes once the passphrase is
// typed. (The callback below throws before any Argon2 work is done.)
Deno.test("decodeKeyFile() refuses Argon2id parameters that cost gigabytes or minutes", async () => {
  const sealed = await encodeKeyFile(await generateIdentity(), "secret", FAST);
  for (const params of ["m=4194304,t=64,p=1", "m=4194304,t=1,p=1"]) {
    await assert.rejects(decodeKeyFile(withField(sealed, 1, params), mustNotAsk), {
      name: "SyntaxError",
      message: `Argon2id parameters out of range "${params}"`,
    });
  }
});

// lib/identity/keys.ts:115-116: `(.*)` does not match line terminators, so a comment
// holding CR, LF, U+2028 or U+2029 makes the whole regex fail and the line is
// reported as "The key line is empty", which it is not. In authorized_keys a
// stray CR inside a line (split on "\n" only) shows this message to the user.
Deno.test("parsePublicKey() names the comment, not an empty line, for CR or LF in a comment", async () => {
  const { publicKey } = await generateIdentity();
  for (const comment of ["a\rb", "a\nb"]) {
    assert.throws(() => parsePublicKey(`${formatPublicKey(publicKey)} ${comment}`), {
      name: "SyntaxError",
      message: "The comment contains control characters",
    });
  }
});

Deno.test("parsePublicKey() does not call a line with U+2028 in its comment empty", async () => {
  const { publicKey } = await generateIdentity();
  assert.throws(
    () => parsePublicKey(`${formatPublicKey(publicKey)} a\u2028b`),
    (error: unknown) => error instanceof SyntaxError && error.message !== "The key line is empty",
  );
});

// lib/channel/messages.ts:175 decodes the status with fromUtf8, which throws a
// TypeError ("The encoded data is not valid") on invalid UTF-8, before the
// status pattern check that would throw MessageError "Invalid response status".
Deno.test("decodeResponse() refuses a status that is not UTF-8 with MessageError", () => {
  assert.throws(() => decodeResponse(new Uint8Array([1, 0xff])), (error: unknown) => {
    assert.ok(error instanceof MessageError, `expected MessageError, got ${error}`);
    assert.equal(error.message, "Invalid response status");
    return true;
  });
});

// lib/services/transfer/receiver.ts answers "ok" and then runs the server's onFile
// hook; a hook that threw made the receiver send a second, error Result for
// the same transfer, which the client (already unsubscribed) took as a
// protocol violation and closed the whole connection. The hook's failure is
// now logged on the server and the connection carries on.
Deno.test("a throwing onFile hook does not break the sender's connection", async () => {
  const dir = await tempDir();
  const warnings: string[] = [];
  const hookRan = Promise.withResolvers<void>();
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({ status: "ok", response: "still here" }),
    inbox: new Inbox(dir),
    onFile: () => {
      hookRan.resolve();
      throw new Error("hook failed");
    },
    logger: { info() {}, warn: (message) => warnings.push(message) },
  });
  const client = await OvtpClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    identity: await generateIdentity(),
    verifyHost: () => {},
  });
  try {
    const data = new TextEncoder().encode("hello");
    const sent = await client.sendFile(streamSource(ReadableStream.from([data]), "a.txt"));
    assert.equal(sent.size, 5);
    await hookRan.promise;
    assert.equal(responseText(await client.request("ping")), "still here");
    assert.ok(warnings.includes("onFile hook failed"), `warnings: ${warnings.join(", ")}`);
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// At shutdown the server closed every connection with no work in flight at
// once: a request already on its way (sent just before, not yet read) was
// lost with the connection, and its client saw "closed before answering".
// A connection now goes only once quiet for a moment, and the request is
// answered "unavailable".
Deno.test("a request sent as the server starts shutting down is answered unavailable, not cut off", async () => {
  const server = serve({
    identity: await generateIdentity(),
    hostname: "127.0.0.1",
    port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({ status: "ok", response: "served" }),
    logger: { info() {}, warn() {} },
  });
  const client = await OvtpClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    identity: await generateIdentity(),
    verifyHost: () => {},
  });
  try {
    assert.equal(responseText(await client.request("ping")), "served");
    const closing = server.close(5000);
    const answer = await client.request("late");
    assert.equal(answer.status, "unavailable");
    await closing;
  } finally {
    client.close();
  }
});

// The relay accepted any display name up to 64 units, and add-key any name
// without control characters: "bob\u202e" or "b\u200bob" (a bidi override,
// a zero-width space) read as another name than they are.
Deno.test("names holding invisible formatting characters are refused: chat display names, at the relay and the CLI", async () => {
  for (const display of ["bob\u202e", "b\u200bob", "\u2066bob\u2069", "bob\u0007", ""]) {
    assert.equal(isValidDisplay(display), false, JSON.stringify(display));
    assert.throws(() => checkJoin({ room: "ops", display }), MessageError);
  }
  assert.deepEqual(checkJoin({ room: "ops", display: "Bøb 🙂" }), {
    room: "ops",
    display: "Bøb 🙂",
    inviteOnly: false,
  });
  const home = await tempDir();
  const refused = await ovtp(["chat", "127.0.0.1:1", "--name", "b\u200bob"], { home });
  assert.equal(refused.code, 2, refused.stderr);
  assertOneError(refused, /Invalid display name/);
  await Deno.remove(home, { recursive: true });
});
