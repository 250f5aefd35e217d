/**
 * f32 and f16 prefill on the WASM backend: a token's matmul and FFN outputs must not depend on T
 * or on its place in a token group (gemm.h packs x into groups of 8 tokens, a group of at most 4
 * runs a narrower block, and the last group is zero-padded; forked and from-scratch scoring rely
 * on a token's outputs being the same whatever came before it in the batch). Every suffix of 2 to
 * 10 tokens of an 11-token batch is run on its own and compared bit for bit with the full batch's
 * rows, for matmul (37 rows and 23 masked rows: not multiples of the 4-row block) and the fused
 * FFN, at K = 97 (odd: the kernels' single-k tail) and K = 576. f16 runs whichever conversion the
 * runtime offers (the half-precision SIMD build under --experimental-wasm-fp16). T = 1 is
 * decode's own order and differs by rounding (it fails this check: the check can fail).
 */
import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { rng, subset } from "./helpers/seeded.ts";
import { ffnBundle } from "./helpers/ffn_bundle.ts";

/** Seeded normal-ish values (sum of uniforms), times scale. */
function randn(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() + r() + r() - 1.5) * scale;
  return a;
}

for (const dtype of ["f32", "f16"] as const) {
  for (const K of [97, 576]) {
    Deno.test(`wasm ${dtype} prefill: a token's matmul and FFN outputs do not depend on T or its group (K = ${K})`, async () => {
      const be = await WasmBackend.create({ weightDType: dtype });
      const r = rng(K + 1);
      const T = 11, M = 64, N = 37;
      const { gate, up, down } = ffnBundle(be, randn(N * (2 * K + M), r, 0.5), N, K, M);
      const xs = randn(T * K, r); // [T, K]
      const run = async (s: number, masked: boolean) => {
        const n = T - s;
        const rows = masked ? be.indices(subset(N, 23, rng(7))) : null;
        const R = masked ? 23 : N;
        const x = be.tensor(n, K);
        be.write(x, xs.subarray(s * K));
        const mm = be.tensor(n, R); // [n, R]
        be.matmul(x, gate, rows, null, mm);
        const f = be.tensor(n, M); // [n, M]
        be.write(f, new Float32Array(n * M));
        be.ffn!(x, gate, up, down, rows, f, null);
        return { mm: await be.read(mm), f: await be.read(f), R };
      };
      for (const masked of [false, true]) {
        const full = await run(0, masked);
        let worst = 0, where = "";
        for (let s = 1; s < T - 1; s++) { // suffixes of 10..2 tokens (T = 1: decode's order)
          const part = await run(s, masked);
          for (
            const [name, a, b, w] of [
              ["matmul", full.mm, part.mm, full.R],
              ["ffn", full.f, part.f, M],
            ] as const
          ) {
            for (let i = 0; i < b.length; i++) {
              const e = Math.abs(a[s * w + i] - b[i]);
              if (e > worst || (e === worst && !where)) {
                worst = e;
                where = `${name} suffix ${s} token ${s + Math.floor(i / w)} col ${i % w}`;
              }
            }
          }
        }
        console.log(
          `  ${dtype} (${be.f16Path}) K=${K} ${
            masked ? "masked" : "dense"
          }: worst |diff| ${worst} at ${where}`,
        );
        assert.equal(worst, 0, `outputs depend on the token's place (${where})`);
      }
      await be.close?.();
    });
  }
}
