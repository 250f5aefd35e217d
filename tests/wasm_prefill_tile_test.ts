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
import { prefillSuffixDiffs } from "./helpers/prefill_suffix.ts";

for (const dtype of ["f32", "f16"] as const) {
  for (const K of [97, 576]) {
    Deno.test(`wasm ${dtype} prefill: a token's matmul and FFN outputs do not depend on T or its group (K = ${K})`, async () => {
      const be = await WasmBackend.create({ weightDType: dtype });
      for (const { masked, diff: { worst, where } } of await prefillSuffixDiffs(be, K, K + 1)) {
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
