/**
 * ONNX export, dense and pruned by a mask, run by onnxruntime-web: logits of a prefill and of
 * KV-cache decode steps match the engine's within 1e-3.
 */

import assert from "node:assert/strict";
import { exportOnnx } from "../lib/export/onnx_export.ts";
import { OnnxDecoder } from "../lib/export/onnx_decoder.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { prepareMask } from "../lib/model/prepared_mask.ts";
import { denseMask, type Mask } from "../lib/model/mask.ts";

function pruned(model: Model): Mask {
  const cfg = model.config;
  const H = cfg.hiddenSize;
  return {
    name: "pruned",
    layers: denseMask(cfg).layers.map((l, i) => ({
      neurons: l.neurons.filter((j) => (j + i) % 3 !== 0),
      // Layer 0 drops the first kv group entirely; other layers drop one head.
      heads: i === 0
        ? l.heads.filter((h) => h >= cfg.numHeads / cfg.numKvHeads)
        : l.heads.filter((h) => h !== 1),
      biasAttn: Float32Array.from({ length: H }, (_, r) => Math.sin(r + i) * 0.05),
      biasFfn: Float32Array.from({ length: H }, (_, r) => Math.cos(r * 3 + i) * 0.05),
    })),
  };
}

function worst(a: Float32Array, b: Float32Array): { err: number; at: number } {
  let err = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= err)) [err, at] = [e, i];
  }
  return { err, at };
}

for (const name of ["llama_gqa_llama3rope", "qwen2_bias", "qwen3_qknorm"]) {
  for (const masked of [false, true]) {
    Deno.test(`ONNX export ${masked ? "pruned" : "dense"}: ${name} matches the engine`, async () => {
      const dir = new URL(`./fixtures/${name}`, import.meta.url).pathname;
      const model = await loadModel(dir);
      const mask = masked ? pruned(model) : undefined;
      const exp = await exportOnnx(dir, mask);
      const ort = await OnnxDecoder.create(exp);
      const seq = new Sequence(model, {
        mask: mask ? prepareMask(model, mask) : null,
        maxTokens: 64,
      });
      const ids = [1, 7, 22, 35, 50, 61, 72, 80, 90, 11];
      const want = await seq.prefill(Int32Array.from(ids), { allLogits: true });
      const got = await ort.forward(ids);
      const w = worst(got, want);
      assert.ok(w.err < 1e-3, `${name} prefill: worst ${w.err} at ${w.at}`);
      for (const id of [5, 9, 13]) {
        const d = worst(await ort.forward([id]), await seq.decode(id));
        assert.ok(d.err < 1e-3, `${name} decode: worst ${d.err} at ${d.at}`);
      }
      await ort.release();
    });
  }
}

Deno.test("ONNX export: a left-padded batch (attention_mask 0 on padding) gives each row's own logits", async () => {
  const ort = await import("onnxruntime-web");
  const dir = new URL("./fixtures/llama_gqa_llama3rope", import.meta.url).pathname;
  const model = await loadModel(dir);
  const mask = pruned(model);
  const exp = await exportOnnx(dir, mask);
  const session = await ort.InferenceSession.create(exp.bytes, { executionProviders: ["wasm"] });
  const rows = [[1, 7, 22, 35, 50, 61], [9, 13, 40]];
  const T = 6, V = exp.config.vocabSize, d = exp.config.headDim;
  const i64 = (xs: number[]) => BigInt64Array.from(xs.map(BigInt));
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
    input_ids: new ort.Tensor(
      "int64",
      i64(rows.flatMap((r) => [...Array(T - r.length).fill(0), ...r])),
      [2, T],
    ),
    attention_mask: new ort.Tensor(
      "int64",
      i64(rows.flatMap((r) => [...Array(T - r.length).fill(0), ...r.map(() => 1)])),
      [2, T],
    ),
    // As transformers.js makes them: cumulative sum of the mask minus 1, padding at 1.
    position_ids: new ort.Tensor(
      "int64",
      i64(rows.flatMap((r) => [...Array(T - r.length).fill(1), ...r.map((_, i) => i)])),
      [2, T],
    ),
  };
  for (const { layer, kvHeads } of exp.cacheLayers) {
    for (const kind of ["key", "value"]) {
      feeds[`past_key_values.${layer}.${kind}`] = new ort.Tensor("float32", new Float32Array(0), [
        2,
        kvHeads,
        0,
        d,
      ]);
    }
  }
  const out = await session.run(feeds);
  const logits = out.logits.data as Float32Array; // [2, T, V]
  for (const [b, r] of rows.entries()) {
    const seq = new Sequence(model, { mask: prepareMask(model, mask), maxTokens: 16 });
    const want = await seq.prefill(Int32Array.from(r), { allLogits: true }); // [len, V]
    const got = logits.subarray((b * T + T - r.length) * V, (b + 1) * T * V);
    const w = worst(got, want);
    assert.ok(w.err < 1e-3, `row ${b}: worst ${w.err} at ${w.at}`);
  }
  await session.release();
});
