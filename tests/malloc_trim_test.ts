import assert from "node:assert/strict";
import { mallocTrim, TrimScheduler } from "../lib/server/_malloc_trim.ts";

// Run with --allow-ffi (as the task does); the first test drops it.

Deno.test({
  name: "mallocTrim() does nothing without --allow-ffi",
  permissions: { ffi: false },
  async fn() {
    assert.equal(Deno.permissions.querySync({ name: "ffi" }).state, "prompt");
    assert.equal(await mallocTrim(), false);
  },
});

Deno.test("mallocTrim() with --allow-ffi trims on Linux (glibc) and never throws", async () => {
  assert.equal(Deno.permissions.querySync({ name: "ffi" }).state, "granted");
  // Twice: the second call reuses the loaded library.
  assert.equal(await mallocTrim(), Deno.build.os === "linux");
  assert.equal(await mallocTrim(), Deno.build.os === "linux");
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("TrimScheduler trims only after minClosed closes, once per burst, and stops", async () => {
  let trims = 0;
  const scheduler = new TrimScheduler({
    minClosed: 3,
    delayMs: 20,
    minIntervalMs: 200,
    trim: () => Promise.resolve(trims++),
  });
  try {
    scheduler.closed();
    scheduler.closed();
    await sleep(60);
    assert.equal(trims, 0, "two closes are below minClosed");
    for (let i = 0; i < 10; i++) scheduler.closed();
    await sleep(60);
    assert.equal(trims, 1, "a burst of closes gives one trim");
    // Another burst right away waits for minIntervalMs since the last trim.
    for (let i = 0; i < 3; i++) scheduler.closed();
    await sleep(60);
    assert.equal(trims, 1, "no second trim within minIntervalMs");
    await sleep(250);
    assert.equal(trims, 2, "the second burst is trimmed once minIntervalMs has passed");
    for (let i = 0; i < 3; i++) scheduler.closed();
  } finally {
    scheduler.stop();
  }
  await sleep(300);
  assert.equal(trims, 2, "stop() cancels the pending trim");
  for (let i = 0; i < 10; i++) scheduler.closed();
  await sleep(60);
  assert.equal(trims, 2, "closes after stop() are ignored");
});

Deno.test("TrimScheduler survives a trim that fails", async () => {
  let calls = 0;
  const scheduler = new TrimScheduler({
    minClosed: 1,
    delayMs: 10,
    minIntervalMs: 20,
    trim: () => {
      calls++;
      return Promise.reject(new Error("no libc"));
    },
  });
  try {
    scheduler.closed();
    await sleep(50);
    scheduler.closed();
    await sleep(50);
    assert.equal(calls, 2);
  } finally {
    scheduler.stop();
  }
});
