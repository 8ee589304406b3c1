import assert from "node:assert/strict";
import { p256 } from "@noble/curves/nist.js";
import { fromHex, toHex, utf8 } from "../lib/bytes.ts";
import { Spake2, SPAKE2_M, SPAKE2_N, Spake2Error } from "../lib/pair/spake2.ts";

interface Vector {
  A: string;
  B: string;
  w: string;
  x: string;
  pA: string;
  y: string;
  pB: string;
  K: string;
  TT: string;
  Ke: string;
  Ka: string;
  KcA: string;
  KcB: string;
  cA: string;
  cB: string;
}

// RFC 9382, Appendix B (the fixture names its source).
const { vectors } = JSON.parse(
  Deno.readTextFileSync(new URL("./spake2_vectors.json", import.meta.url)),
) as { vectors: Vector[] };

const big = (hex: string) => BigInt("0x" + hex);

Deno.test("SPAKE2 reproduces RFC 9382's four P-256 vectors byte for byte, on both sides", () => {
  assert.equal(vectors.length, 4);
  for (const v of vectors) {
    const a = new Spake2("A", big(v.w), big(v.x));
    const b = new Spake2("B", big(v.w), big(v.y));
    assert.equal(toHex(a.share), v.pA);
    assert.equal(toHex(b.share), v.pB);
    const context = { idA: utf8(v.A), idB: utf8(v.B) };
    for (const result of [a.finish(b.share, context), b.finish(a.share, context)]) {
      const got = Object.fromEntries(
        (["K", "TT", "Ke", "Ka", "KcA", "KcB", "cA", "cB"] as const).map((k) => [
          k,
          toHex(result[k]),
        ]),
      );
      assert.deepEqual(got, {
        K: v.K,
        TT: v.TT,
        Ke: v.Ke,
        Ka: v.Ka,
        KcA: v.KcA,
        KcB: v.KcB,
        cA: v.cA,
        cB: v.cB,
      });
    }
  }
});

Deno.test("SPAKE2's M and N are RFC 9382's points for P-256", () => {
  // Section 6 prints them compressed; both must be points of the curve.
  for (const hex of [SPAKE2_M, SPAKE2_N]) {
    assert.equal(toHex(p256.Point.fromHex(hex).toBytes(true)), hex);
  }
});

Deno.test("SPAKE2 with different secrets gives different confirmations", () => {
  const a = new Spake2("A", 12345n);
  const b = new Spake2("B", 12346n);
  const context = { idA: utf8("a"), idB: utf8("b") };
  const ra = a.finish(b.share, context);
  const rb = b.finish(a.share, context);
  assert.notEqual(toHex(ra.cB), toHex(rb.cB));
  assert.notEqual(toHex(ra.cA), toHex(rb.cA));
});

Deno.test("SPAKE2 binds the AAD and the identities into the confirmations", () => {
  const a = new Spake2("A", 7n);
  const b = new Spake2("B", 7n);
  const base = { idA: utf8("a"), idB: utf8("b"), aad: utf8("h1") };
  const same = a.finish(b.share, base);
  assert.equal(toHex(same.cB), toHex(b.finish(a.share, base).cB));
  for (const other of [{ ...base, aad: utf8("h2") }, { ...base, idB: utf8("c") }]) {
    assert.notEqual(toHex(same.cB), toHex(b.finish(a.share, other).cB));
  }
});

Deno.test("SPAKE2 refuses shares that are not uncompressed points, or that cancel the mask", () => {
  const w = 99n;
  const a = new Spake2("A", w);
  const context = { idA: new Uint8Array(0), idB: new Uint8Array(0) };
  const offCurve = fromHex("04" + "ff".repeat(64));
  const compressed = fromHex(SPAKE2_N);
  const wN = p256.Point.fromHex(SPAKE2_N).multiply(w).toBytes(false);
  for (const share of [new Uint8Array(0), new Uint8Array(65), offCurve, compressed, wN]) {
    assert.throws(() => a.finish(share, context), Spake2Error);
  }
});
