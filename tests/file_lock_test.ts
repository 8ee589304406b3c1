import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { withFileLock } from "../lib/io/file_lock.ts";
import { OvtpError } from "../lib/errors.ts";
import { generateIdentity } from "../lib/identity/keys.ts";
import { Keystore } from "../lib/identity/keystore.ts";

// Each keystore update reads, awaits, then writes: without the lock, ten
// concurrent adds interleave and all but one or two lines are lost.
Deno.test("concurrent addAuthorizedKey() and addKnownHost() calls lose no line", async () => {
  const home = await tempDir();
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
    // The lock files stay, empty and private (the lock is the OS's, on them).
    for (const name of ["authorized_keys.lock", "known_hosts.lock"]) {
      const info = Deno.statSync(join(home, name));
      assert.equal(info.size, 0);
      if (Deno.build.os !== "windows") assert.equal(info.mode! & 0o777, 0o600);
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("addKnownHost() from two processes at once records the host once", async () => {
  const home = await tempDir();
  try {
    const { publicKey } = await generateIdentity();
    await Promise.all([1, 2, 3].map(() => new Keystore(home).addKnownHost("h:1", publicKey)));
    const text = await Deno.readTextFile(join(home, "known_hosts"));
    assert.equal(text.split("\n").filter((line) => line.startsWith("h:1 ")).length, 1);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("withFileLock() waits for a live lock, names it when it gives up, and a dead holder's lock is free", async () => {
  const dir = await tempDir();
  const path = join(dir, "authorized_keys");
  try {
    // Another process holds the lock (a child that locks, says so, and sleeps).
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const f = await Deno.open(${JSON.stringify(`${path}.lock`)}, ` +
        `{ write: true, create: true }); await f.lock(true); console.log("held"); ` +
        `await new Promise((r) => setTimeout(r, 60_000));`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.match((await reader.read()).value ?? "", /held/);
    await assert.rejects(
      withFileLock(path, () => Promise.resolve(), { timeoutMs: 100 }),
      (error: unknown) => {
        assert.ok(error instanceof OvtpError && error.kind === "io");
        assert.match(error.message, /being updated by another ovtp process/);
        assert.match(error.hint ?? "", /authorized_keys\.lock/);
        return true;
      },
    );
    // Killed, the holder's lock goes with it: no waiting for it to look stale.
    holder.kill("SIGKILL");
    await holder.status;
    await reader.cancel();
    assert.equal(await withFileLock(path, () => Promise.resolve(42), { timeoutMs: 2000 }), 42);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("withFileLock() does not follow a link planted as the lock file", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const dir = await tempDir();
  const path = join(dir, "known_hosts");
  try {
    await Deno.symlink(join(dir, "elsewhere"), `${path}.lock`);
    await assert.rejects(withFileLock(path, () => Promise.resolve()), OvtpError);
    await assert.rejects(Deno.lstat(join(dir, "elsewhere")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("withFileLock() releases the lock when the update throws", async () => {
  const dir = await tempDir();
  const path = join(dir, "known_hosts");
  try {
    await assert.rejects(withFileLock(path, () => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await withFileLock(path, () => Promise.resolve(1), { timeoutMs: 100 }), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
