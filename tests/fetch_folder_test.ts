// fetchFolder against a hostile server: a scripted MessageLink that lists
// names meant to escape the destination or mean something else, and
// folders nested without end. The invariants: nothing is written outside
// the destination, every skipped entry is reported, and the depth is bounded.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { toHex } from "../lib/bytes.ts";
import { sha256 } from "../lib/crypto/mod.ts";
import { decodeJson, encodeJson, type Message } from "../lib/channel/messages.ts";
import { DownloadMessageType, type ListEntry } from "../lib/services/transfer/download_messages.ts";
import { fetchFolder } from "../lib/services/transfer/fetch_folder.ts";
import type { MessageLink } from "../lib/client/message_link.ts";

/** A server that answers List from `list` and Get with `content(path)`. */
function scriptedLink(
  list: (path: string) => ListEntry[],
  content: (path: string) => Uint8Array,
): MessageLink & { gets: string[] } {
  const subscribers = new Map<number, (message: Message) => void | Promise<void>>();
  let next = 1;
  const gets: string[] = [];
  const reply = (id: number, type: number, body: Uint8Array) =>
    queueMicrotask(() => subscribers.get(id)?.({ type, id, body }));
  return {
    gets,
    nextId: () => next++,
    subscribe(id, onMessage) {
      subscribers.set(id, onMessage);
      return () => subscribers.delete(id);
    },
    send(message) {
      const body = decodeJson(message.body);
      if (message.type === DownloadMessageType.List) {
        const path = String(body.path);
        reply(
          message.id,
          DownloadMessageType.ListResult,
          encodeJson({ path, entries: list(path) }),
        );
        return Promise.resolve();
      }
      const path = String(body.path);
      gets.push(path);
      const data = content(path);
      reply(
        message.id,
        DownloadMessageType.Info,
        encodeJson({ size: data.length, mode: 0o644, offset: 0 }),
      );
      reply(message.id, DownloadMessageType.Data, data);
      reply(
        message.id,
        DownloadMessageType.End,
        encodeJson({ size: data.length, sha256: toHex(sha256(data)) }),
      );
      return Promise.resolve();
    },
  };
}

const file = (name: string): ListEntry => ({ name, type: "file", size: 3, mode: 0o644 });
const dir = (name: string): ListEntry => ({ name, type: "dir", size: 0, mode: 0o755 });

/** Every path under `root`, relative and sorted; folders end in "/". */
async function everything(root: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(root)) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) out.push(`${rel}/`, ...await everything(`${root}/${entry.name}`, rel));
    else out.push(rel);
  }
  return out.sort();
}

const HOSTILE_NAMES = [
  "..",
  ".",
  "",
  "../escape",
  "a/b",
  "..\\escape",
  "/etc/passwd",
  "nul",
  "CON.txt",
  "trailing.",
  "trailing ",
  ".ovtp-internal",
  ".OVTP-partial",
  "x.ovtp-partial",
  "bell\x07",
  "new\nline",
  "colon:name",
];

Deno.test("a pull writes only plain names listed by the server, and reports each other", async () => {
  const outside = await tempDir();
  const dest = `${outside}/dest`;
  const link = scriptedLink(
    (path) =>
      path === "top"
        ? [...HOSTILE_NAMES.map(file), ...HOSTILE_NAMES.map(dir), file("ok.txt"), dir("sub")]
        : path === "top/sub"
        ? [file("inner.txt")]
        : [],
    () => new TextEncoder().encode("abc"),
  );
  const skipped: string[] = [];
  const pulled = await fetchFolder(link, "top", dest, {
    onSkip: (remote) => skipped.push(remote),
  });
  assert.deepEqual(await everything(outside), [
    "dest/",
    "dest/ok.txt",
    "dest/sub/",
    "dest/sub/inner.txt",
  ]);
  assert.deepEqual(link.gets, ["top/ok.txt", "top/sub/inner.txt"]);
  assert.deepEqual(
    skipped.sort(),
    [...HOSTILE_NAMES, ...HOSTILE_NAMES].map((n) => `top/${n}`).sort(),
  );
  assert.deepEqual(pulled, {
    path: dest,
    files: 2,
    bytes: 6,
    alreadyHere: 0,
    received: 6,
    skipped: HOSTILE_NAMES.length * 2,
  });
});

Deno.test("a server that nests folders without end is followed 32 levels deep, no more", async () => {
  const dest = `${await tempDir()}/dest`;
  let lists = 0;
  const link = scriptedLink(
    () => {
      lists++;
      return [dir("d"), file("f")];
    },
    () => new TextEncoder().encode("abc"),
  );
  const skipped: [string, string][] = [];
  const pulled = await fetchFolder(link, "", dest, {
    onSkip: (remote, reason) => skipped.push([remote, reason]),
  });
  assert.equal(lists, 32);
  assert.equal(pulled.files, 32);
  assert.deepEqual(skipped, [[`${Array(32).fill("d").join("/")}`, "deeper than 32 folders"]]);
  assert.ok((await Deno.stat(`${dest}/${Array(31).fill("d").join("/")}/f`)).isFile);
  await assert.rejects(Deno.stat(`${dest}/${Array(32).fill("d").join("/")}`), Deno.errors.NotFound);
});

Deno.test("a file the server sends other bytes for than its hash is never stored", async () => {
  const dest = `${await tempDir()}/dest`;
  // The End carries the hash of "abc"; the data says "abd".
  const lying = scriptedLink(() => [file("a.txt")], () => new TextEncoder().encode("abc"));
  const original = lying.subscribe.bind(lying);
  lying.subscribe = (id, onMessage, onError) =>
    original(id, (message) => {
      if (message.type !== DownloadMessageType.Data) return onMessage(message);
      return onMessage({ ...message, body: new TextEncoder().encode("abd") });
    }, onError);
  await assert.rejects(fetchFolder(lying, "", dest), /does not match the server's SHA-256/);
  assert.deepEqual(await everything(dest), []);
});
