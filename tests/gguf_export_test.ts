/**
 * GGUF export without llama.cpp: the file read back by an independent reader
 * (@huggingface/gguf), Q8_0 blocks against hand-computed values, the rotary row permutation
 * against both RoPE conventions applied directly, and the layer plan's padding.
 */

import assert from "node:assert/strict";
import { gguf } from "@huggingface/gguf";
import { exportGguf } from "../lib/export/gguf_export.ts";
import { writeGgufFile } from "../lib/export/gguf_writer.ts";
import { decodeQ8_0, encodeQ8_0 } from "../lib/export/gguf_quant.ts";
import { permuteRopeRows } from "../lib/export/gguf_rope.ts";
import { planLayer } from "../lib/export/gguf_layer_plan.ts";
import { readCheckpoint, tensorF32 } from "../lib/model/checkpoint.ts";
import { readConfig } from "../lib/model/model.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { unevenMask } from "./helpers/uneven_mask.ts";

const fixture = (n: string) => new URL(`./fixtures/${n}`, import.meta.url).pathname;

async function writeTmp(parts: Uint8Array[]): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  await writeGgufFile(path, parts);
  return path;
}

Deno.test("GGUF: the default model reads back in @huggingface/gguf with llama.cpp's keys", async () => {
  const exp = await exportGguf(DEFAULT_MODEL_DIR, "f32");
  const path = await writeTmp(exp.parts);
  try {
    const { metadata: md, tensorInfos, tensorDataOffset } = await gguf(path, {
      allowLocalFile: true,
    });
    const m = md as unknown as Record<string, unknown>;
    assert.equal(m["general.architecture"], "llama");
    assert.equal(m["llama.block_count"], 8);
    assert.equal(m["llama.attention.head_count"], 6);
    assert.equal(m["llama.attention.head_count_kv"], 2);
    assert.equal(m["llama.feed_forward_length"], 768);
    assert.equal(m["tokenizer.ggml.model"], "gpt2");
    assert.equal(m["tokenizer.ggml.pre"], "gpt-2");
    const tok = JSON.parse(await Deno.readTextFile(`${DEFAULT_MODEL_DIR}/tokenizer.json`));
    const tokens = m["tokenizer.ggml.tokens"] as string[];
    assert.equal(tokens.length, 768);
    for (const [text, id] of Object.entries(tok.model.vocab as Record<string, number>)) {
      assert.equal(tokens[id], text, `token ${id}`);
    }
    const merges = m["tokenizer.ggml.merges"] as string[];
    assert.deepEqual(
      merges.slice(0, 2),
      tok.model.merges.slice(0, 2).map((p: string[]) => p.join(" ")),
    );
    assert.equal(merges.length, tok.model.merges.length);
    const types = m["tokenizer.ggml.token_type"] as number[];
    assert.deepEqual(types.slice(0, 7), [3, 3, 3, 3, 3, 3, 1]); // control, then normal
    assert.equal(m["tokenizer.ggml.bos_token_id"], 0);
    assert.equal(m["tokenizer.ggml.eos_token_id"], 1);
    assert.equal(m["tokenizer.ggml.padding_token_id"], 5);
    assert.match(String(m["tokenizer.chat_template"]), /add_generation_prompt/);
    // Tied embeddings: no output.weight; 2 + 9 per layer tensors.
    assert.equal(tensorInfos.length, 2 + 9 * 8);
    assert.ok(!tensorInfos.some((t) => t.name === "output.weight"));
    // The data of blk.3.ffn_down.weight (F32, ne [I, H]) is HF's down_proj [H, I] as is.
    const info = tensorInfos.find((t) => t.name === "blk.3.ffn_down.weight")!;
    assert.deepEqual(info.shape.map(Number), [768, 192]);
    const f = await Deno.open(path);
    const bytes = new Uint8Array(768 * 192 * 4);
    await f.seek(Number(tensorDataOffset + info.offset), Deno.SeekMode.Start);
    let got = 0;
    while (got < bytes.length) got += (await f.read(bytes.subarray(got)))!;
    f.close();
    const want = tensorF32(
      await readCheckpoint(DEFAULT_MODEL_DIR),
      "model.layers.3.mlp.down_proj.weight",
      [192, 768],
    );
    assert.deepEqual(new Float32Array(bytes.buffer), want);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("GGUF: a pruned export is a deci model with per-layer sizes and bias tensors", async () => {
  const dir = fixture("llama_gqa_llama3rope");
  const { config: cfg } = await readConfig(dir);
  const mask = unevenMask(cfg);
  const exp = await exportGguf(dir, "q8_0", mask);
  const path = await writeTmp(exp.parts);
  try {
    const { metadata, tensorInfos } = await gguf(path, { allowLocalFile: true });
    const m = metadata as unknown as Record<string, unknown>;
    assert.equal(m["general.architecture"], "deci");
    // Layer 0 keeps heads 1,2,3 (kv 0) and 4 (kv 1): groups of 3 and 1 → 2 kv × 3 slots.
    // Layer 1 keeps no head and no neuron: one zero slot each (Q8_0 rounds neurons to 32).
    assert.deepEqual(m["deci.attention.head_count"], [6, 1]);
    assert.deepEqual(m["deci.attention.head_count_kv"], [2, 1]);
    assert.deepEqual(m["deci.feed_forward_length"], [192, 32]);
    const names = new Set(tensorInfos.map((t) => t.name));
    for (const l of [0, 1]) {
      assert.ok(names.has(`blk.${l}.attn_output.bias`) && names.has(`blk.${l}.ffn_down.bias`));
    }
    assert.ok(names.has("rope_freqs.weight"), "llama3 rope scaling travels as rope_freqs");
    const q = tensorInfos.find((t) => t.name === "blk.0.attn_q.weight")!;
    assert.equal(q.dtype, 8, "Q8_0");
    assert.deepEqual(q.shape.map(Number), [64, 6 * 8]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("GGUF: Q8_0 blocks hold an f16 scale max|x|/127 and round(x/scale)", () => {
  const x = Float32Array.from({ length: 64 }, (_, i) => (i < 32 ? (i - 10) * 0.1 : 0));
  const b = encodeQ8_0(x);
  assert.equal(b.length, 2 * 34);
  const v = new DataView(b.buffer);
  const d = 2.1 / 127;
  const half = new Float16Array(1);
  new Uint16Array(half.buffer)[0] = v.getUint16(0, true);
  assert.equal(half[0], Math.fround(new Float16Array([d])[0]));
  for (let j = 0; j < 32; j++) {
    const q = v.getInt8(2 + j);
    const want = Math.sign(x[j]) *
      Math.round(Math.abs(Math.fround(x[j] * Math.fround(1 / Math.fround(d)))));
    assert.equal(q, want, `q[${j}]`);
  }
  assert.equal(v.getInt8(2 + 31), 127, "the largest value maps to 127");
  // An all-zero block has scale 0 and zero quants.
  assert.deepEqual([...b.subarray(34)], new Array(34).fill(0));
  const back = decodeQ8_0(b);
  let worst = 0, at = -1;
  for (let i = 0; i < 32; i++) {
    const e = Math.abs(back[i] - x[i]);
    if (e > worst) [worst, at] = [e, i];
  }
  console.log(
    `Q8_0 round trip: worst error ${worst.toExponential(3)} at ${at} (half step ${
      (d / 2).toExponential(3)
    })`,
  );
  assert.ok(worst <= d / 2 + 1e-3 * d);
  assert.throws(() => encodeQ8_0(new Float32Array(33)), /multiple of 32/);
});

Deno.test("GGUF: permuted q/k rows under llama.cpp's pairwise RoPE equal HF's rotate_half RoPE", () => {
  const d = 8, H = 5, heads = 2;
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  const w = Float32Array.from({ length: heads * d * H }, rnd); // [heads*d, H]
  const x = Float32Array.from({ length: H }, rnd);
  const mv = (m: Float32Array) =>
    Float32Array.from(
      { length: m.length / H },
      (_, r) => m.subarray(r * H, r * H + H).reduce((a, v, c) => a + v * x[c], 0),
    );
  const pos = 3, theta = 10000;
  const ang = (i: number) => pos / Math.pow(theta, (2 * i) / d);
  const hf = mv(w), ll = mv(permuteRopeRows(w, d, H));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < d / 2; i++) {
      const [c, sn] = [Math.cos(ang(i)), Math.sin(ang(i))];
      const a = hf[h * d + i], b = hf[h * d + i + d / 2]; // HF: pair (i, i + d/2)
      const p = ll[h * d + 2 * i], q = ll[h * d + 2 * i + 1]; // llama.cpp: pair (2i, 2i+1)
      assert.ok(Math.abs((p * c - q * sn) - (a * c - b * sn)) < 1e-6, `head ${h} pair ${i}`);
      assert.ok(Math.abs((p * sn + q * c) - (b * c + a * sn)) < 1e-6, `head ${h} pair ${i}`);
    }
  }
});

Deno.test("GGUF: layer plans pad uneven GQA groups and keep one zero slot in empty layers", async () => {
  const { config: cfg } = await readConfig(fixture("llama_gqa_llama3rope")); // 8 heads, 2 kv
  const mask = unevenMask(cfg);
  assert.deepEqual(planLayer(cfg, mask.layers[0]), {
    qHeads: [1, 2, 3, 4, -1, -1],
    kvHeads: [0, 1],
    neurons: [...mask.layers[0].neurons],
  });
  assert.deepEqual(planLayer(cfg, mask.layers[1], 32).neurons.length, 32);
  assert.deepEqual(planLayer(cfg, mask.layers[1]), { qHeads: [-1], kvHeads: [-1], neurons: [-1] });
});
