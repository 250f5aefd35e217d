/**
 * Export a Hugging Face Llama-family folder, dense or physically pruned by a SEAP mask, as a
 * GGUF file llama.cpp loads. Dense: architecture `llama`. Pruned: architecture `deci`
 * (llama.cpp's Llama with per-layer head, kv-head and FFN sizes, made for Nemotron's
 * variable-width layers), whose optional `attn_output.bias` and `ffn_down.bias` carry the
 * mask's bias-compensation vectors. Tensors use llama.cpp's names, q/k rows the interleaved
 * rotary order it expects (see gguf_rope.ts).
 */

import { readCheckpoint, tensorF32 } from "../model/checkpoint.ts";
import type { ModelConfig } from "../model/config.ts";
import { denseMask, type Mask, validateMask } from "../model/mask.ts";
import { readConfig } from "../model/model.ts";
import { type LayerPlan, paddingOf, planLayer } from "./gguf_layer_plan.ts";
import { encodeTensor, Q8_0_BLOCK } from "./gguf_quant.ts";
import { permuteRopeRows, ropeFreqFactors } from "./gguf_rope.ts";
import { ggufTokenizerMetadata } from "./gguf_tokenizer.ts";
import {
  type GgmlTypeName,
  type GgufTensor,
  type GgufValue,
  serializeGguf,
} from "./gguf_writer.ts";

/** Weight formats of `deno task export --format gguf --type`. */
export type GgufWeightType = "f32" | "f16" | "q8_0";

/** What an export wrote, for the CLI's summary and for tests. */
export interface GgufExport {
  /** The file's bytes, as consecutive chunks (see serializeGguf). */
  parts: Uint8Array[];
  /** `llama` (dense) or `deci` (pruned). */
  arch: string;
  config: ModelConfig;
  /** Per layer: query heads, kv heads and FFN width as written (padding included). */
  layers: { heads: number; kvHeads: number; ffn: number }[];
  /** Zero-weight slots added (uneven GQA groups, empty layers, Q8_0 rounding). */
  padding: { heads: number; neurons: number };
  /** Matrices that could not take the requested type (ne0 not a multiple of 32) and are F16. */
  fallbacks: string[];
}

const FILE_TYPE: Record<GgufWeightType, number> = { f32: 0, f16: 1, q8_0: 7 };

/** Rows `rows` of a row-major [*, cols] matrix (-1: a zero row), concatenated. */
function pickRows(m: Float32Array, cols: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => {
    if (r >= 0) out.set(m.subarray(r * cols, (r + 1) * cols), i * cols);
  });
  return out;
}

/** Columns `cols` of a row-major [rows, n] matrix (-1: a zero column) as [rows, cols.length]. */
function pickCols(m: Float32Array, n: number, cols: number[]): Float32Array {
  const rows = m.length / n;
  const out = new Float32Array(rows * cols.length);
  for (let r = 0; r < rows; r++) {
    cols.forEach((c, i) => {
      if (c >= 0) out[r * cols.length + i] = m[r * n + c];
    });
  }
  return out;
}

/** Head slots → the d rows (or columns) of each head, -1 slots stay -1. */
function headRows(heads: number[], d: number): number[] {
  return heads.flatMap((h) => Array.from({ length: d }, (_, i) => (h < 0 ? -1 : h * d + i)));
}

/**
 * Export `dir` (pruned by `mask` when given) as GGUF with `type` weights; `onLayer(l, L)` is
 * called after each layer is encoded (progress for large models).
 */
export async function exportGguf(
  dir: string,
  type: GgufWeightType,
  mask?: Mask,
  onLayer?: (layer: number, layers: number) => void,
): Promise<GgufExport> {
  const { config: cfg } = await readConfig(dir);
  if (cfg.family !== "llama" && cfg.family !== "mistral") {
    throw new Error(
      `GGUF export: ${cfg.family} models are not supported (Llama and Mistral only; a pruned ` +
        `Qwen model would need per-layer sizes with q/k/v biases or q/k norms, which no ` +
        `llama.cpp architecture has)`,
    );
  }
  if (!Object.hasOwn(FILE_TYPE, type)) {
    throw new Error(`GGUF export: unknown type "${type}" (f32, f16 or q8_0)`);
  }
  const ck = await readCheckpoint(dir);
  const m = mask ?? denseMask(cfg);
  validateMask(m, cfg);
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: d } = cfg;
  const V = cfg.vocabSize;
  const arch = mask ? "deci" : "llama";
  const fallbacks: string[] = [];
  const tensors: GgufTensor[] = [];
  // A matrix [rows, cols] row-major is ggml ne = [cols, rows].
  const mat = (name: string, x: Float32Array, rows: number, cols: number) => {
    let t: GgmlTypeName = type === "f32" ? "F32" : type === "f16" ? "F16" : "Q8_0";
    if (t === "Q8_0" && cols % Q8_0_BLOCK !== 0) {
      t = "F16";
      fallbacks.push(name);
    }
    tensors.push({ name, dims: [cols, rows], type: t, data: encodeTensor(x, t) });
  };
  const vec = (name: string, x: Float32Array) =>
    tensors.push({ name, dims: [x.length], type: "F32", data: encodeTensor(x, "F32") });

  mat("token_embd.weight", tensorF32(ck, "model.embed_tokens.weight", [V, H]), V, H);
  const freqs = ropeFreqFactors(cfg);
  if (freqs) vec("rope_freqs.weight", freqs);
  const plans: LayerPlan[] = m.layers.map((lm) =>
    planLayer(cfg, lm, type === "q8_0" ? Q8_0_BLOCK : 1)
  );
  const padding = { heads: 0, neurons: 0 };
  plans.forEach((plan, l) => {
    const lm = m.layers[l];
    const p = `model.layers.${l}`;
    const b = `blk.${l}`;
    const t = (n: string, shape: number[]) => tensorF32(ck, `${p}.${n}`, shape);
    const pad = paddingOf(plan);
    padding.heads += pad.heads;
    padding.neurons += pad.neurons;
    const nq = plan.qHeads.length, nk = plan.kvHeads.length, n = plan.neurons.length;
    vec(`${b}.attn_norm.weight`, t("input_layernorm.weight", [H]));
    const q = pickRows(t("self_attn.q_proj.weight", [nh * d, H]), H, headRows(plan.qHeads, d));
    mat(`${b}.attn_q.weight`, permuteRopeRows(q, d, H), nq * d, H); // [nq*d, H]
    const k = pickRows(t("self_attn.k_proj.weight", [nkv * d, H]), H, headRows(plan.kvHeads, d));
    mat(`${b}.attn_k.weight`, permuteRopeRows(k, d, H), nk * d, H); // [nk*d, H]
    const v = pickRows(t("self_attn.v_proj.weight", [nkv * d, H]), H, headRows(plan.kvHeads, d));
    mat(`${b}.attn_v.weight`, v, nk * d, H); // [nk*d, H]
    const o = pickCols(t("self_attn.o_proj.weight", [H, nh * d]), nh * d, headRows(plan.qHeads, d));
    mat(`${b}.attn_output.weight`, o, H, nq * d); // [H, nq*d]
    if (lm.biasAttn) vec(`${b}.attn_output.bias`, lm.biasAttn);
    vec(`${b}.ffn_norm.weight`, t("post_attention_layernorm.weight", [H]));
    mat(`${b}.ffn_gate.weight`, pickRows(t("mlp.gate_proj.weight", [I, H]), H, plan.neurons), n, H);
    mat(`${b}.ffn_up.weight`, pickRows(t("mlp.up_proj.weight", [I, H]), H, plan.neurons), n, H);
    const down = pickCols(t("mlp.down_proj.weight", [H, I]), I, plan.neurons); // [H, n]
    mat(`${b}.ffn_down.weight`, down, H, n);
    if (lm.biasFfn) vec(`${b}.ffn_down.bias`, lm.biasFfn);
    onLayer?.(l + 1, plans.length);
  });
  vec("output_norm.weight", tensorF32(ck, "model.norm.weight", [H]));
  if (!cfg.tieWordEmbeddings) {
    mat("output.weight", tensorF32(ck, "lm_head.weight", [V, H]), V, H);
  }

  const md = new Map<string, GgufValue>();
  const a = (k: string) => `${arch}.${k}`;
  const name = dir.replace(/\/+$/, "").split("/").pop() ?? "model";
  md.set("general.architecture", { type: "string", value: arch });
  md.set("general.name", { type: "string", value: mask ? `${name} (${mask.name})` : name });
  md.set("general.file_type", { type: "u32", value: FILE_TYPE[type] });
  if (type === "q8_0") md.set("general.quantization_version", { type: "u32", value: 2 });
  md.set(a("context_length"), { type: "u32", value: cfg.maxPositionEmbeddings });
  md.set(a("embedding_length"), { type: "u32", value: H });
  md.set(a("block_count"), { type: "u32", value: cfg.numLayers });
  const perLayer = (f: (p: LayerPlan) => number): GgufValue => {
    const xs = plans.map(f);
    return mask ? { type: "i32[]", value: xs } : { type: "u32", value: xs[0] };
  };
  md.set(a("feed_forward_length"), perLayer((p) => p.neurons.length));
  md.set(a("attention.head_count"), perLayer((p) => p.qHeads.length));
  md.set(a("attention.head_count_kv"), perLayer((p) => p.kvHeads.length));
  md.set(a("attention.key_length"), { type: "u32", value: d });
  md.set(a("attention.value_length"), { type: "u32", value: d });
  md.set(a("rope.dimension_count"), { type: "u32", value: d });
  md.set(a("attention.layer_norm_rms_epsilon"), { type: "f32", value: cfg.rmsNormEps });
  md.set(a("rope.freq_base"), { type: "f32", value: cfg.ropeTheta });
  if (cfg.ropeScaling.type === "linear") {
    md.set(a("rope.scaling.type"), { type: "string", value: "linear" });
    md.set(a("rope.scaling.factor"), { type: "f32", value: cfg.ropeScaling.factor });
  }
  md.set(a("vocab_size"), { type: "u32", value: V });
  const tok = await ggufTokenizerMetadata(dir, V, { bos: cfg.bosTokenId, eos: cfg.eosTokenIds });
  for (const [k, v] of tok) md.set(k, v);
  return {
    parts: serializeGguf(md, tensors),
    arch,
    config: cfg,
    layers: plans.map((p) => ({
      heads: p.qHeads.length,
      kvHeads: p.kvHeads.length,
      ffn: p.neurons.length,
    })),
    padding,
    fallbacks,
  };
}
