/**
 * Logits of tiny random models of every supported family against an independent PyTorch
 * reference (tools/make_fixtures.py, float64): prefill of the prompt, then token-by-token
 * decode through the KV cache.
 */

import assert from "node:assert/strict";
import { loadModel } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { parseSafetensors, toFloat32, toInt32 } from "../lib/formats/safetensors.ts";

const FIXTURES = [
  "llama_gqa_llama3rope",
  "llama_linear_rope_tied",
  "qwen2_bias",
  "qwen3_qknorm",
  "mistral",
];
const TOL = 1e-4;

/** Worst absolute difference and where it is. */
export function worstDiff(a: Float32Array, b: Float32Array): { err: number; index: number } {
  assert.equal(a.length, b.length, "length mismatch");
  let err = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= err)) {
      err = e;
      index = i;
    }
  }
  return { err, index };
}

for (const name of FIXTURES) {
  Deno.test(`reference logits: ${name} (prefill + KV-cache decode)`, async () => {
    const dir = new URL(`./fixtures/${name}`, import.meta.url).pathname;
    const model = await loadModel(dir);
    const exp = parseSafetensors(await Deno.readFile(`${dir}/expected.safetensors`));
    const prompt = toInt32(exp.tensors.get("prompt_ids")!);
    const dec = toInt32(exp.tensors.get("decode_ids")!);
    const logits = toFloat32(exp.tensors.get("logits")!); // [P + D, V]
    const V = model.config.vocabSize;
    assert.ok(prompt.length >= 16 && dec.length >= 8);
    const seq = new Sequence(model, { maxTokens: 64 });
    const pre = await seq.prefill(prompt, { allLogits: true }); // [P, V]
    const r = worstDiff(pre, logits.subarray(0, prompt.length * V));
    assert.ok(
      r.err < TOL,
      `${name} prefill: worst |diff| ${r.err} at token ${Math.floor(r.index / V)} id ${
        r.index % V
      }`,
    );
    for (let k = 0; k < dec.length; k++) {
      const got = await seq.decode(dec[k]);
      const row = prompt.length + k;
      const d = worstDiff(got, logits.subarray(row * V, (row + 1) * V));
      assert.ok(d.err < TOL, `${name} decode step ${k}: worst |diff| ${d.err} at id ${d.index}`);
    }
    seq.free();
  });
}
