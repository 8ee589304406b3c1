import assert from "node:assert/strict";
import { join } from "node:path";
import { withFileLock } from "../lib/_file_lock.ts";
import { OvtpError } from "../lib/errors.ts";
import { generateIdentity } from "../lib/keys.ts";
import { Keystore } from "../lib/keystore.ts";

// Each keystore update reads, awaits, then writes: without the lock, ten
// concurrent adds interleave and all but one or two lines are lost.
Deno.test("concurrent addAuthorizedKey() and addKnownHost() calls lose no line", async () => {
  const home = await Deno.makeTempDir();
  try {
    const keys = await Promise.all(Array.from({ length: 10 }, () => generateIdentity()));
    await Promise.all(
      keys.map((identity, i) => new Keystore(home).addAuthorizedKey(identity.publicKey, `k${i}`)),
    );
    await Promise.all(
      keys.map((identity, i) => new Keystore(home).addKnownHost(`h${i}:4747`, identity.publicKey)),
    );
    const keystore = new Keystore(home);
    const { entries } = await keystore.readAuthorizedKeys();
    assert.deepEqual(entries.map((e) => e.name).sort(), keys.map((_, i) => `k${i}`).sort());
    for (let i = 0; i < keys.length; i++) {
      assert.ok(await keystore.findKnownHost(`h${i}:4747`), `h${i} lost`);
    }
    // No lock file is left behind.
    const left = [...Deno.readDirSync(home)].map((e) => e.name).filter((n) => n.endsWith(".lock"));
    assert.deepEqual(left, []);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("addKnownHost() from two processes at once records the host once", async () => {
  const home = await Deno.makeTempDir();
  try {
    const { publicKey } = await generateIdentity();
    await Promise.all([1, 2, 3].map(() => new Keystore(home).addKnownHost("h:1", publicKey)));
    const text = await Deno.readTextFile(join(home, "known_hosts"));
    assert.equal(text.split("\n").filter((line) => line.startsWith("h:1 ")).length, 1);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("withFileLock() waits for a live lock and names it when it gives up", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "authorized_keys");
  try {
    await Deno.writeTextFile(`${path}.lock`, "");
    await assert.rejects(
      withFileLock(path, () => Promise.resolve(), { timeoutMs: 100 }),
      (error: unknown) => {
        assert.ok(error instanceof OvtpError && error.kind === "io");
        assert.match(error.message, /being updated by another ovtp process/);
        assert.match(error.hint ?? "", /authorized_keys\.lock/);
        return true;
      },
    );
    // A lock older than 30 s was left by a process that died: taken over.
    const old = new Date(Date.now() - 60_000);
    await Deno.utime(`${path}.lock`, old, old);
    assert.equal(await withFileLock(path, () => Promise.resolve(42), { timeoutMs: 100 }), 42);
    await assert.rejects(Deno.stat(`${path}.lock`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("withFileLock() releases the lock when the update throws", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "known_hosts");
  try {
    await assert.rejects(withFileLock(path, () => Promise.reject(new Error("boom"))), /boom/);
    await assert.rejects(Deno.stat(`${path}.lock`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
