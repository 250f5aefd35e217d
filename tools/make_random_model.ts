/**
 * Writes a Hugging Face folder (config.json + model.safetensors) of a Llama-architecture model
 * with seeded random weights, for benchmarks on realistic shapes (e.g. SmolLM2-135M).
 *
 *   deno run -A tools/make_random_model.ts --out /tmp/smollm2_shape --preset smollm2-135m
 */

import { parseArgs } from "node:util";
import { serializeSafetensors, type TensorToWrite } from "../lib/formats/safetensors.ts";

/** Shape of a random model. */
export interface RandomModelShape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  tied: boolean;
}

/** Shapes of well-known models. */
export const PRESETS: Record<string, RandomModelShape> = {
  "smollm2-135m": {
    hidden: 576,
    intermediate: 1536,
    layers: 30,
    heads: 9,
    kvHeads: 3,
    vocab: 49152,
    tied: true,
  },
  "smollm2-360m": {
    hidden: 960,
    intermediate: 2560,
    layers: 32,
    heads: 15,
    kvHeads: 5,
    vocab: 49152,
    tied: true,
  },
  "tiny": {
    hidden: 64,
    intermediate: 256,
    layers: 4,
    heads: 4,
    kvHeads: 2,
    vocab: 256,
    tied: true,
  },
};

function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** Write a random model folder; returns its path. */
export async function writeRandomModel(
  out: string,
  shape: RandomModelShape,
  seed = 1,
): Promise<string> {
  const g = gaussian(seed);
  const { hidden: H, intermediate: I, heads, kvHeads, vocab: V } = shape;
  const d = H / heads;
  const mat = (r: number, c: number, std = 0.02): TensorToWrite => ({
    dtype: "F32",
    shape: [r, c],
    data: Float32Array.from({ length: r * c }, () => g() * std),
  });
  const ones = (n: number): TensorToWrite => ({
    dtype: "F32",
    shape: [n],
    data: Float32Array.from({ length: n }, () => 1 + 0.1 * g()),
  });
  const t: Record<string, TensorToWrite> = { "model.embed_tokens.weight": mat(V, H) };
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    t[`${p}.input_layernorm.weight`] = ones(H);
    t[`${p}.self_attn.q_proj.weight`] = mat(heads * d, H);
    t[`${p}.self_attn.k_proj.weight`] = mat(kvHeads * d, H);
    t[`${p}.self_attn.v_proj.weight`] = mat(kvHeads * d, H);
    t[`${p}.self_attn.o_proj.weight`] = mat(H, heads * d);
    t[`${p}.post_attention_layernorm.weight`] = ones(H);
    t[`${p}.mlp.gate_proj.weight`] = mat(I, H);
    t[`${p}.mlp.up_proj.weight`] = mat(I, H);
    t[`${p}.mlp.down_proj.weight`] = mat(H, I);
  }
  t["model.norm.weight"] = ones(H);
  if (!shape.tied) t["lm_head.weight"] = mat(V, H);
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeFile(`${out}/model.safetensors`, serializeSafetensors(t));
  await Deno.writeTextFile(
    `${out}/config.json`,
    JSON.stringify(
      {
        architectures: ["LlamaForCausalLM"],
        model_type: "llama",
        hidden_size: H,
        intermediate_size: I,
        num_hidden_layers: shape.layers,
        num_attention_heads: heads,
        num_key_value_heads: kvHeads,
        vocab_size: V,
        rms_norm_eps: 1e-5,
        rope_theta: 10000,
        max_position_embeddings: 2048,
        tie_word_embeddings: shape.tied,
        hidden_act: "silu",
        bos_token_id: 0,
        eos_token_id: 1,
      },
      null,
      2,
    ),
  );
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      preset: { type: "string", default: "smollm2-135m" },
      seed: { type: "string", default: "1" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.out) {
    console.log(
      `usage: make_random_model.ts --out DIR [--preset ${
        Object.keys(PRESETS).join("|")
      }] [--seed N]`,
    );
    Deno.exit(values.help ? 0 : 2);
  }
  const shape = PRESETS[values.preset!];
  if (!shape) throw new Error(`unknown preset ${values.preset}`);
  await writeRandomModel(values.out, shape, Number(values.seed));
  console.log(`wrote ${values.out}`);
}
