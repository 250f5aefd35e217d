/**
 * q8 prefill tiles on the WASM backend: a token's outputs must not depend on T or on its place in
 * a token tile (4 x 2-token quads, token pairs and lone tokens run different micro-kernels that
 * must round identically; forked and from-scratch scoring rely on it). Every suffix of 2 to 10
 * tokens of an 11-token batch is run on its own and compared bit for bit with the full batch's
 * rows, for matmul (odd and masked row counts) and the fused FFN, at K = 96 and at K = 4160
 * (wider than the quad kernel's scale buffer, so the pair kernel takes over). T = 1 is decode's
 * own order and differs by rounding (it fails this check: the check can fail).
 */
import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { prefillSuffixDiffs } from "./helpers/prefill_suffix.ts";

for (const K of [96, 4160]) {
  Deno.test(`wasm q8 prefill: a token's matmul and FFN outputs do not depend on T or tile place (K = ${K})`, async () => {
    const be = await WasmBackend.create({ weightDType: "q8" });
    for (const { masked, diff: { worst, where } } of await prefillSuffixDiffs(be, K, K)) {
      console.log(`  K=${K} ${masked ? "masked" : "dense"}: worst |diff| ${worst} at ${where}`);
      assert.equal(worst, 0, `outputs depend on the token's tile place (${where})`);
    }
    await be.close?.();
  });
}
