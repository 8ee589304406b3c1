import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { decodeJson, encodeJson, type Message } from "../lib/channel/messages.ts";
import { DownloadMessageType } from "../lib/services/transfer/download_messages.ts";
import {
  DownloadProvider,
  MAX_DOWNLOADS_IN_FLIGHT,
} from "../lib/services/transfer/download_provider.ts";
import { ServedFolder } from "../lib/services/transfer/served_folder.ts";

function get(id: number, path = "a.txt"): Message {
  return {
    type: DownloadMessageType.Get,
    id,
    body: encodeJson({ path, offset: 0, prefix_sha256: null }),
  };
}

Deno.test("DownloadProvider answers busy past MAX_DOWNLOADS_IN_FLIGHT, and frees the slots", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/a.txt`, "hello");
  const sent: Message[] = [];
  // Data is never written until `release`: each download stays in flight.
  const release = Promise.withResolvers<void>();
  const provider = new DownloadProvider(new ServedFolder(dir), (message) => {
    sent.push(message);
    return message.type === DownloadMessageType.Data ? release.promise : Promise.resolve();
  });
  const running: Promise<void>[] = [];
  for (let id = 1; id <= MAX_DOWNLOADS_IN_FLIGHT; id++) running.push(provider.handle(get(id)));
  while (sent.filter((m) => m.type === DownloadMessageType.Data).length < MAX_DOWNLOADS_IN_FLIGHT) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(provider.inFlight, MAX_DOWNLOADS_IN_FLIGHT);
  // A ninth Get is refused, and a List too.
  for (const [id, type] of [[100, DownloadMessageType.Get], [101, DownloadMessageType.List]]) {
    const message = type === DownloadMessageType.Get
      ? get(id)
      : { type, id, body: encodeJson({ path: "" }) };
    await provider.handle(message);
    const refusal = sent.at(-1)!;
    assert.equal(refusal.type, DownloadMessageType.Error);
    assert.equal(refusal.id, id);
    assert.deepEqual(decodeJson(refusal.body), {
      code: "busy",
      message:
        `Too many downloads in progress on this connection (at most ${MAX_DOWNLOADS_IN_FLIGHT})`,
    });
  }
  release.resolve();
  await Promise.all(running);
  assert.equal(provider.inFlight, 0);
  const ends = sent.filter((m) => m.type === DownloadMessageType.End).map((m) => m.id);
  assert.deepEqual(ends.sort((a, b) => a - b), Array.from({ length: 8 }, (_, i) => i + 1));
  // Slots are free again, including after a failed download.
  await provider.handle(get(200, "missing.txt"));
  assert.equal(decodeJson(sent.at(-1)!.body).code, "refused");
  await provider.handle(get(201));
  assert.equal(sent.at(-1)!.type, DownloadMessageType.End);
  assert.equal(provider.inFlight, 0);
  await Deno.remove(dir, { recursive: true });
});
