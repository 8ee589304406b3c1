/**
 * Abandoned uploads are pruned while listen runs: past --keep-partial, and
 * beyond --max-partial per client key (the oldest first).
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { Keystore, OvtpClient } from "../mod.ts";
import { encodeJson } from "../lib/channel/messages.ts";
import { FileMessageType } from "../lib/services/transfer/engine.ts";
import { INBOX_STATE_DIR } from "../lib/services/transfer/inbox.ts";
import { assertStoppedCleanly, makePair, ovtp, startListen } from "./_cli.ts";

/** The sizes of the unfinished uploads the inbox holds. */
async function partialSizes(inbox: string): Promise<number[]> {
  const sizes: number[] = [];
  try {
    for await (const entry of Deno.readDir(`${inbox}/${INBOX_STATE_DIR}/partial`)) {
      const info = await Deno.lstat(`${inbox}/${INBOX_STATE_DIR}/partial/${entry.name}`);
      sizes.push(info.size);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return sizes.sort();
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Offers `name` (2000 bytes, resumable), sends `sent` bytes and drops the connection. */
async function abandon(home: string, port: number, name: string, sent: number): Promise<void> {
  const identity = await new Keystore(home).loadIdentity(() => Promise.resolve(""));
  const client = await OvtpClient.connect({ hostname: "127.0.0.1", port, identity });
  const id = client.link.nextId();
  const accepted = Promise.withResolvers<void>();
  client.link.subscribe(id, () => accepted.resolve(), (e) => accepted.reject(e));
  const send = (type: number, body: Uint8Array) => client.link.send({ type, id, body });
  await send(FileMessageType.Offer, encodeJson({ name, size: 2000, mode: null, resumable: true }));
  await accepted.promise;
  await send(FileMessageType.Start, encodeJson({ offset: 0 }));
  await send(FileMessageType.Data, new Uint8Array(sent).fill(7));
  client.close();
}

Deno.test("listen prunes abandoned uploads over the per-key cap at once and past their age while running", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const listener = await startListen(server.home, ["--keep-partial", "3", "--max-partial", "1K"]);
  try {
    await abandon(client.home, listener.port, "first.bin", 800);
    await waitFor(async () => (await partialSizes(inbox)).join() === "800", "the first partial");
    // A second one would hold 1,600 bytes of this key's: the older goes.
    await abandon(client.home, listener.port, "second.bin", 600);
    await waitFor(async () => (await partialSizes(inbox)).join() === "600", "the cap to apply");
    // Nobody comes back: it goes after --keep-partial, with listen still running.
    await waitFor(async () => (await partialSizes(inbox)).length === 0, "the age to apply");
    await listener.waitFor(/deleted 1 abandoned partial upload/);
    // The server still serves.
    const dir = await tempDir();
    await Deno.writeTextFile(`${dir}/after.txt`, "after");
    const sent = await ovtp(["sendfile", listener.target, `${dir}/after.txt`], {
      home: client.home,
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(await Deno.readTextFile(`${inbox}/alice/after.txt`), "after");
  } finally {
    assertStoppedCleanly(await listener.stop());
  }
});

Deno.test("listen refuses an invalid --keep-partial or --max-partial", async () => {
  const { server } = await makePair();
  for (
    const [flag, value] of [["--keep-partial", "soon"], ["--max-partial", "lots"]] as const
  ) {
    const result = await ovtp(["listen", "--port", "0", flag, value], { home: server.home });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`Invalid ${flag} "${value}"`));
  }
});
