/**
 * Writes a Hugging Face folder (config.json + model.safetensors) of a Llama-architecture model
 * with seeded random weights, for benchmarks on realistic shapes (e.g. SmolLM2-135M).
 *
 *   deno run -A tools/make_random_model.ts --out /tmp/smollm2_shape --preset smollm2-135m
 *   deno run -A tools/make_random_model.ts --out /tmp/llama1b_f16 --preset llama-3.2-1b --dtype f16
 */

import { parseArgs } from "node:util";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
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
  /** Per-head width (default hidden / heads). */
  headDim?: number;
  /** HF `rope_scaling` written to config.json as is (e.g. Llama 3's "llama3" scaling). */
  ropeScaling?: Record<string, unknown>;
  /** `rope_theta` (default 10000). */
  ropeTheta?: number;
}

const LLAMA3_ROPE = {
  rope_type: "llama3",
  factor: 32,
  low_freq_factor: 1,
  high_freq_factor: 4,
  original_max_position_embeddings: 8192,
};

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
  "llama-3.2-1b": {
    hidden: 2048,
    intermediate: 8192,
    layers: 16,
    heads: 32,
    kvHeads: 8,
    headDim: 64,
    vocab: 128256,
    tied: true,
    ropeScaling: LLAMA3_ROPE,
    ropeTheta: 500000,
  },
  "llama-3.2-3b": {
    hidden: 3072,
    intermediate: 8192,
    layers: 28,
    heads: 24,
    kvHeads: 8,
    headDim: 128,
    vocab: 128256,
    tied: true,
    ropeScaling: LLAMA3_ROPE,
    ropeTheta: 500000,
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

/** config.json text of a random model of `shape`. */
function configJson(shape: RandomModelShape): string {
  return JSON.stringify(
    {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: shape.hidden,
      intermediate_size: shape.intermediate,
      num_hidden_layers: shape.layers,
      num_attention_heads: shape.heads,
      num_key_value_heads: shape.kvHeads,
      ...(shape.headDim ? { head_dim: shape.headDim } : {}),
      vocab_size: shape.vocab,
      rms_norm_eps: 1e-5,
      rope_theta: shape.ropeTheta ?? 10000,
      ...(shape.ropeScaling ? { rope_scaling: shape.ropeScaling } : {}),
      max_position_embeddings: shape.ropeScaling ? 131072 : 2048,
      tie_word_embeddings: shape.tied,
      hidden_act: "silu",
      bos_token_id: 0,
      eos_token_id: 1,
    },
    null,
    2,
  );
}

/** Names and shapes of a random model's tensors, in file order. */
function tensorShapes(shape: RandomModelShape): [string, number[]][] {
  const { hidden: H, intermediate: I, heads, kvHeads, vocab: V } = shape;
  const d = shape.headDim ?? H / heads;
  const t: [string, number[]][] = [["model.embed_tokens.weight", [V, H]]];
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    t.push([`${p}.input_layernorm.weight`, [H]]);
    t.push([`${p}.self_attn.q_proj.weight`, [heads * d, H]]);
    t.push([`${p}.self_attn.k_proj.weight`, [kvHeads * d, H]]);
    t.push([`${p}.self_attn.v_proj.weight`, [kvHeads * d, H]]);
    t.push([`${p}.self_attn.o_proj.weight`, [H, heads * d]]);
    t.push([`${p}.post_attention_layernorm.weight`, [H]]);
    t.push([`${p}.mlp.gate_proj.weight`, [I, H]]);
    t.push([`${p}.mlp.up_proj.weight`, [I, H]]);
    t.push([`${p}.mlp.down_proj.weight`, [H, I]]);
  }
  t.push(["model.norm.weight", [H]]);
  if (!shape.tied) t.push(["lm_head.weight", [V, H]]);
  return t;
}

/**
 * Write a random model folder as a Hugging Face checkpoint in F16, one tensor (a piece of
 * 1 Mi values) at a time, so that even a 3B shape never needs its weights in memory; the
 * tokenizer of `tokenizerDir` is copied with filler tokens appended to its BPE vocabulary up
 * to the model's vocabulary size (so every embedding row has a token). Weights are uniform
 * with standard deviation 0.02 (norms about 1), from a seeded generator. Returns `out`.
 */
export async function writeRandomModelF16(
  out: string,
  shape: RandomModelShape,
  tokenizerDir: string,
  seed = 1,
  onProgress?: (done: number, total: number) => void,
): Promise<string> {
  const tensors = tensorShapes(shape);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, dims] of tensors) {
    const bytes = dims.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: "F16", shape: dims, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // data starts 8-byte aligned
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(new TextEncoder().encode(json), 8);
  await Deno.mkdir(out, { recursive: true });
  const file = await Deno.open(`${out}/model.safetensors`, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    await writeAll(file, head);
    let s = seed >>> 0;
    const PIECE = 1 << 20;
    const f32 = new Float32Array(PIECE);
    const f16 = new Float16Array(PIECE);
    let done = 0;
    for (const [name, dims] of tensors) {
      const n = dims.reduce((a, b) => a * b, 1);
      const norm = dims.length === 1 && name.endsWith("norm.weight");
      for (let i = 0; i < n; i += PIECE) {
        const k = Math.min(PIECE, n - i);
        for (let j = 0; j < k; j++) {
          // mulberry32 step; uniform on [-0.5, 0.5) times sqrt(12) has unit variance
          s = (s + 0x6d2b79f5) >>> 0;
          let t = Math.imul(s ^ (s >>> 15), s | 1);
          t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
          const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
          f32[j] = norm ? 1 + 0.1 * 3.4641 * u : 0.02 * 3.4641 * u;
        }
        f16.set(f32.subarray(0, k));
        await writeAll(file, new Uint8Array(f16.buffer, 0, k * 2));
        done += k * 2;
        onProgress?.(done, offset);
      }
    }
  } finally {
    file.close();
  }
  await Deno.writeTextFile(`${out}/config.json`, configJson(shape));
  await writePaddedTokenizer(tokenizerDir, out, shape.vocab);
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await file.write(bytes.subarray(o));
}

/**
 * Copy `from`'s tokenizer.json (a BPE model) and tokenizer_config.json to `to`, with filler
 * tokens `<|filler_N|>` appended to the BPE vocabulary until ids cover `vocab` (no merge
 * produces them, so encoding is unchanged).
 */
async function writePaddedTokenizer(from: string, to: string, vocab: number): Promise<void> {
  const tok = JSON.parse(await Deno.readTextFile(`${from}/tokenizer.json`));
  const v = tok.model?.vocab as Record<string, number> | undefined;
  if (tok.model?.type !== "BPE" || !v) {
    throw new Error(`${from}/tokenizer.json: expected a BPE tokenizer to pad`);
  }
  const ids = [...Object.values(v), ...(tok.added_tokens ?? []).map((t: { id: number }) => t.id)];
  let next = Math.max(...ids) + 1;
  if (next > vocab) throw new Error(`${from}: tokenizer has ${next} ids, more than ${vocab}`);
  for (; next < vocab; next++) v[`<|filler_${next}|>`] = next;
  await Deno.writeTextFile(`${to}/tokenizer.json`, JSON.stringify(tok));
  await Deno.copyFile(`${from}/tokenizer_config.json`, `${to}/tokenizer_config.json`);
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
  await Deno.writeTextFile(`${out}/config.json`, configJson(shape));
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      preset: { type: "string", default: "smollm2-135m" },
      seed: { type: "string", default: "1" },
      dtype: { type: "string", default: "f32" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.out) {
    console.log(
      `usage: make_random_model.ts --out DIR [--preset ${
        Object.keys(PRESETS).join("|")
      }] [--seed N] [--dtype f32|f16]`,
    );
    Deno.exit(values.help ? 0 : 2);
  }
  const shape = PRESETS[values.preset!];
  if (!shape) throw new Error(`unknown preset ${values.preset}`);
  if (values.dtype === "f16") {
    // Tensor by tensor, with the default model's tokenizer padded to the vocabulary.
    await writeRandomModelF16(values.out, shape, DEFAULT_MODEL_DIR, Number(values.seed));
  } else if (values.dtype === "f32") {
    await writeRandomModel(values.out, shape, Number(values.seed));
  } else {
    throw new Error(`--dtype must be f32 or f16, not ${values.dtype}`);
  }
  console.log(`wrote ${values.out}`);
}
