import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import {
  atomicWrite,
  createExclusive,
  formatHostPort,
  writeAll,
  writeAllSync,
  writeThroughTemp,
} from "../lib/io/files.ts";

// A writer that takes at most `step` bytes a call, as a pipe or a socket may.
function trickle(step: number) {
  const taken: number[] = [];
  return {
    taken,
    write: (bytes: Uint8Array) => Promise.resolve(take(bytes)),
    writeSync: (bytes: Uint8Array) => take(bytes),
  };
  function take(bytes: Uint8Array): number {
    const n = Math.min(step, bytes.length);
    taken.push(...bytes.subarray(0, n));
    return n;
  }
}

Deno.test("writeAll and writeAllSync keep writing until every byte is taken, in order", async () => {
  const data = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
  const asyncWriter = trickle(7);
  await writeAll(asyncWriter, data);
  assert.deepEqual(Uint8Array.from(asyncWriter.taken), data);
  const syncWriter = trickle(3);
  writeAllSync(syncWriter, data);
  assert.deepEqual(Uint8Array.from(syncWriter.taken), data);
  const empty = trickle(1);
  await writeAll(empty, new Uint8Array(0));
  assert.deepEqual(empty.taken, []);
});

Deno.test("writeThroughTemp: replaces, or (replace false) never replaces, and leaves no temporary file", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/file`;
    await atomicWrite(path, "one", 0o600);
    await atomicWrite(path, "two", 0o600);
    assert.equal(await Deno.readTextFile(path), "two");
    await assert.rejects(
      writeThroughTemp(path, 0o600, (file) => writeAll(file, new Uint8Array([1])), {
        replace: false,
      }),
      Deno.errors.AlreadyExists,
    );
    assert.equal(await Deno.readTextFile(path), "two");
    // A fill that fails leaves the old content.
    await assert.rejects(
      writeThroughTemp(path, 0o600, () => Promise.reject(new Error("disk full"))),
      /disk full/,
    );
    assert.equal(await Deno.readTextFile(path), "two");
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["file"]);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createExclusive refuses any name already there, a symlink to nothing included", {
  ignore: Deno.build.os === "windows", // Symlinks need a privilege there.
}, async () => {
  const dir = await tempDir();
  try {
    await Deno.symlink(`${dir}/nothing`, `${dir}/dangling`);
    await assert.rejects(createExclusive(`${dir}/dangling`, 0o600), Deno.errors.AlreadyExists);
    await assert.rejects(Deno.lstat(`${dir}/nothing`), Deno.errors.NotFound);
    (await createExclusive(`${dir}/new`, 0o600)).close();
    assert.ok((await Deno.lstat(`${dir}/new`)).isFile);
    await assert.rejects(createExclusive(`${dir}/new`, 0o600), Deno.errors.AlreadyExists);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatHostPort brackets an IPv6 address only", () => {
  assert.equal(formatHostPort("127.0.0.1", 7022), "127.0.0.1:7022");
  assert.equal(formatHostPort("example.org", 1), "example.org:1");
  assert.equal(formatHostPort("::1", 7022), "[::1]:7022");
});
