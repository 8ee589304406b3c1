import assert from "node:assert/strict";
import { Backoff } from "../commands/_backoff.ts";

Deno.test("Backoff doubles from 0.5 s up to 30 s, each delay between half and all of its base", () => {
  const bases = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  for (const random of [0, 0.5, 0.999999]) {
    const backoff = new Backoff({ random: () => random });
    for (const base of bases) {
      const delay = backoff.next();
      assert.ok(delay >= base / 2 && delay <= base, `${delay} for a base of ${base}`);
      assert.equal(delay, Math.round(base / 2 + random * base / 2));
    }
  }
});

Deno.test("Backoff.reset() starts again from the first delay; a thousand failures stay capped", () => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
  for (let i = 0; i < 1000; i++) assert.ok(backoff.next() <= 1000);
  backoff.reset();
  assert.equal(backoff.next(), 100);
  assert.equal(backoff.next(), 200);
});
