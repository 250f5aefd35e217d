/**
 * The scale benchmark's model writer (tools/make_random_model.ts, writeRandomModelF16): the
 * F16 safetensors it streams tensor by tensor is read back by the project's safetensors parser
 * with every tensor of the shape, its values have the intended spread, the config carries
 * head_dim and the llama3 rope scaling, and the tokenizer padded to the vocabulary encodes as
 * the default model's does while covering every embedding row; the engine loads and runs it.
 */

import assert from "node:assert/strict";
import { writeRandomModelF16 } from "../tools/make_random_model.ts";
import { parseSafetensors, toFloat32 } from "../lib/formats/safetensors.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { loadModel, readConfig } from "../lib/model/model.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { Sequence } from "../lib/model/sequence.ts";

const SHAPE = {
  hidden: 64,
  intermediate: 96,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 32, // not hidden / heads, as in Llama-3.2-3B's 3072 / 24 = 128 vs. others
  vocab: 1500,
  tied: false,
  ropeScaling: {
    rope_type: "llama3",
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  },
  ropeTheta: 500000,
};

Deno.test("writeRandomModelF16: F16 tensors, config and padded tokenizer a real loader reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "seap_random_f16_" });
  try {
    await writeRandomModelF16(dir, SHAPE, DEFAULT_MODEL_DIR, 7);
    const file = parseSafetensors(await Deno.readFile(`${dir}/model.safetensors`));
    const names = [...file.tensors.keys()];
    assert.equal(names.length, 1 + SHAPE.layers * 9 + 1 + 1); // embed, layers, norm, lm_head
    const q = file.tensors.get("model.layers.1.self_attn.q_proj.weight")!;
    assert.equal(q.dtype, "F16");
    assert.deepEqual(q.shape, [SHAPE.heads * SHAPE.headDim, SHAPE.hidden]);
    assert.deepEqual(file.tensors.get("lm_head.weight")!.shape, [SHAPE.vocab, SHAPE.hidden]);
    const w = toFloat32(file.tensors.get("model.layers.0.mlp.down_proj.weight")!);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    console.log(`down_proj: mean ${mean.toExponential(2)}, std ${std.toFixed(5)} (want 0.02)`);
    assert.ok(Math.abs(std - 0.02) < 0.002 && Math.abs(mean) < 0.002);
    const norm = toFloat32(file.tensors.get("model.norm.weight")!);
    assert.ok(norm.every((v) => v > 0.8 && v < 1.2), "norm weights near 1");

    const { config } = await readConfig(dir);
    assert.equal(config.headDim, 32);
    assert.equal(config.ropeScaling.type, "llama3");

    const tok = await Tokenizer.load(dir);
    const ref = await Tokenizer.load(DEFAULT_MODEL_DIR);
    assert.equal(tok.vocabSize, SHAPE.vocab);
    const text = "Sort the digits 3 1 2, then answer.";
    assert.deepEqual(tok.encode(text), ref.encode(text));

    const model = await loadModel(dir);
    const seq = new Sequence(model, { maxTokens: 8 });
    const logits = await seq.prefill(Int32Array.from(tok.encode(text).slice(0, 4)));
    assert.equal(logits.length, SHAPE.vocab);
    assert.ok(logits.every(Number.isFinite));
    seq.free();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
