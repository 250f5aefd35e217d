/**
 * Export a model folder, dense or physically pruned by a mask, as an ONNX decoder with a KV
 * cache that onnxruntime (web, node, native) runs with standard opset-17 operators, under the
 * input and output names transformers.js and Optimum use for decoder-only models.
 *
 * Graph inputs:  input_ids [B, T] int64, attention_mask [B, P + T] int64 (1 = real token,
 *                0 = padding), position_ids [B, T] int64,
 *                past_key_values.L.key / .value [B, kv_L, P, d_h] for every layer L with kept
 *                heads.
 * Graph outputs: logits [B, T, V], present.L.key / .value [B, kv_L, P + T, d_h].
 * Query t (kv index P + t) attends to kv index j when j <= P + t and attention_mask[b, j] = 1.
 * A pruned export slices kept rows and columns out (kv_L = kept kv heads of layer L) and adds
 * the mask's bias-compensation vectors, so it is a smaller dense model.
 */

import { readCheckpoint, tensorF32 } from "../model/checkpoint.ts";
import type { ModelConfig } from "../model/config.ts";
import { denseMask, type Mask, validateMask } from "../model/mask.ts";
import { readConfig, transpose } from "../model/model.ts";
import { ropeInvFreq } from "../model/rope.ts";
import { ONNX_FLOAT, ONNX_INT64, OnnxGraph } from "./onnx_proto.ts";

/** What the exported graph looks like, for callers that feed it. */
export interface OnnxExport {
  bytes: Uint8Array;
  config: ModelConfig;
  /** Layers that have past/present inputs, with their kept kv-head count. */
  cacheLayers: { layer: number; kvHeads: number }[];
}

/** Rows [r0, r1) of a row-major [rows, cols] matrix, for each r in `rows`, concatenated. */
function gatherRows(m: Float32Array, cols: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => out.set(m.subarray(r * cols, (r + 1) * cols), i * cols));
  return out;
}

/** Export `dir` (optionally pruned by `mask`) as ONNX bytes. */
export async function exportOnnx(dir: string, mask?: Mask): Promise<OnnxExport> {
  const { config: cfg } = await readConfig(dir);
  const ck = await readCheckpoint(dir);
  const m = mask ?? denseMask(cfg);
  validateMask(m, cfg);
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: d } = cfg;
  const V = cfg.vocabSize;
  const group = nh / nkv;
  const g = new OnnxGraph();
  const ids = g.input("input_ids", ONNX_INT64, ["batch_size", "sequence_length"]);
  const am = g.input("attention_mask", ONNX_INT64, ["batch_size", "total_sequence_length"]);
  const pos = g.input("position_ids", ONNX_INT64, ["batch_size", "sequence_length"]);
  const eps = g.float(Float32Array.of(cfg.rmsNormEps), [], "eps");
  const zero = g.float(Float32Array.of(0), [], "zero");
  const neg = g.float(Float32Array.of(-1e9), [], "neg");
  const scale = g.float(Float32Array.of(1 / Math.sqrt(d)), [], "scale");
  const ax = (v: number[]) => g.int64(v, [v.length], "axes");

  const rms = (x: string, w: Float32Array) => {
    const ms = g.node("ReduceMean", [g.node("Mul", [x, x])], { axes: [-1], keepdims: 1 });
    const den = g.node("Sqrt", [g.node("Add", [ms, eps])]);
    return g.node("Mul", [g.node("Div", [x, den]), g.float(w, [w.length], "norm")]);
  };
  // RoPE tables [maxPos, d/2] gathered by position: [B, 1, T, d/2].
  const inv = ropeInvFreq(cfg);
  const maxPos = cfg.maxPositionEmbeddings;
  const cosT = new Float32Array(maxPos * (d / 2));
  const sinT = new Float32Array(maxPos * (d / 2));
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < d / 2; i++) {
      cosT[p * (d / 2) + i] = Math.cos(p * inv[i]);
      sinT[p * (d / 2) + i] = Math.sin(p * inv[i]);
    }
  }
  const cos = g.node("Unsqueeze", [
    g.node("Gather", [g.float(cosT, [maxPos, d / 2], "cos"), pos]),
    ax([1]),
  ]);
  const sin = g.node("Unsqueeze", [
    g.node("Gather", [g.float(sinT, [maxPos, d / 2], "sin"), pos]),
    ax([1]),
  ]);
  const lo = ax([0]), mid = ax([d / 2]), hi = ax([d]), last = ax([3]);
  const rope = (x: string) => {
    const x1 = g.node("Slice", [x, lo, mid, last]);
    const x2 = g.node("Slice", [x, mid, hi, last]);
    return g.node("Concat", [
      g.node("Sub", [g.node("Mul", [x1, cos]), g.node("Mul", [x2, sin])]),
      g.node("Add", [g.node("Mul", [x2, cos]), g.node("Mul", [x1, sin])]),
    ], { axis: 3 });
  };
  // Additive attention bias [B, 1, T, P+T] shared by every layer: causal over kv indices
  // (query t sits at kv index P + t), and padding columns (attention_mask 0) masked out.
  const scalar = (v: string, i: number) =>
    g.node("Gather", [g.node("Shape", [v]), g.int64([i], [], "dim")], { axis: 0 });
  const total = scalar(am, 1);
  const T = scalar(ids, 1);
  const one = g.int64([1], [], "one");
  const kidx = g.node("Range", [g.int64([0], [], "zero"), total, one]); // [P+T]
  const qidx = g.node("Unsqueeze", [
    g.node("Range", [g.node("Sub", [total, T]), total, one]),
    ax([1]),
  ]); // [T, 1]
  const causal = g.node("LessOrEqual", [kidx, qidx]); // [T, P+T]
  const keep = g.node("Unsqueeze", [g.node("Cast", [am], { to: 9 }), ax([1, 2])]); // [B,1,1,P+T]
  const bias = g.node("Where", [g.node("And", [causal, keep]), zero, neg]); // [B, 1, T, P+T]

  const embedW = tensorF32(ck, "model.embed_tokens.weight", [V, H]); // [V, H]
  const embedName = g.float(embedW, [V, H], "embed");
  let x = g.node("Gather", [embedName, ids]); // [1, T, H]
  const cacheLayers: OnnxExport["cacheLayers"] = [];
  m.layers.forEach((lm, l) => {
    const p = `model.layers.${l}`;
    const t = (n: string, shape: number[]) => tensorF32(ck, `${p}.${n}`, shape);
    const heads = [...lm.heads];
    const S = heads.length;
    const h = rms(x, t("input_layernorm.weight", [H]));
    if (S > 0) {
      const kv = [...new Set(heads.map((hd) => Math.floor(hd / group)))].sort((a, b) => a - b);
      const Skv = kv.length;
      const qRows = heads.flatMap((hd) => Array.from({ length: d }, (_, i) => hd * d + i));
      const kvRows = kv.flatMap((k) => Array.from({ length: d }, (_, i) => k * d + i));
      const proj = (name: string, n: number, rows: number[], biasName: string) => {
        const w = gatherRows(t(name, [n * d, H]), H, rows); // [R, H]
        let y = g.node("MatMul", [h, g.float(transpose(w, rows.length, H), [H, rows.length], "w")]);
        if (ck.tensors.has(`${p}.${biasName}`)) {
          const b = t(biasName, [n * d]);
          y = g.node("Add", [y, g.float(Float32Array.from(rows, (r) => b[r]), [rows.length], "b")]);
        }
        return y; // [B, T, R]
      };
      const heads4 = (y: string, n: number) =>
        g.node("Transpose", [g.node("Reshape", [y, g.int64([0, 0, n, d], [4], "shape")])], {
          perm: [0, 2, 1, 3],
        }); // [B, n, T, d]
      let q = heads4(proj("self_attn.q_proj.weight", nh, qRows, "self_attn.q_proj.bias"), S);
      let k = heads4(proj("self_attn.k_proj.weight", nkv, kvRows, "self_attn.k_proj.bias"), Skv);
      const v = heads4(proj("self_attn.v_proj.weight", nkv, kvRows, "self_attn.v_proj.bias"), Skv);
      if (cfg.qkNorm) {
        q = rms(q, t("self_attn.q_norm.weight", [d]));
        k = rms(k, t("self_attn.k_norm.weight", [d]));
      }
      q = rope(q);
      k = rope(k);
      const past = ["batch_size", Skv, "past_sequence_length", d];
      const pk = g.input(`past_key_values.${l}.key`, ONNX_FLOAT, past);
      const pv = g.input(`past_key_values.${l}.value`, ONNX_FLOAT, past);
      const kAll = g.node("Concat", [pk, k], { axis: 2 }); // [B, Skv, P+T, d]
      const vAll = g.node("Concat", [pv, v], { axis: 2 });
      const present = ["batch_size", Skv, "total_sequence_length", d];
      g.output(kAll, `present.${l}.key`, ONNX_FLOAT, present);
      g.output(vAll, `present.${l}.value`, ONNX_FLOAT, present);
      cacheLayers.push({ layer: l, kvHeads: Skv });
      const slot = g.int64(heads.map((hd) => kv.indexOf(Math.floor(hd / group))), [S], "kvof");
      const kx = g.node("Gather", [kAll, slot], { axis: 1 }); // [B, S, P+T, d]
      const vx = g.node("Gather", [vAll, slot], { axis: 1 });
      const scores = g.node("Add", [
        g.node("Mul", [
          g.node("MatMul", [q, g.node("Transpose", [kx], { perm: [0, 1, 3, 2] })]),
          scale,
        ]),
        bias,
      ]);
      const att = g.node("MatMul", [g.node("Softmax", [scores], { axis: -1 }), vx]); // [B, S, T, d]
      const flat = g.node("Reshape", [
        g.node("Transpose", [att], { perm: [0, 2, 1, 3] }),
        g.int64([0, 0, S * d], [3], "shape"),
      ]); // [B, T, S*d]
      const oT = transpose(t("self_attn.o_proj.weight", [H, nh * d]), H, nh * d); // [n_h*d, H]
      x = g.node("Add", [
        x,
        g.node("MatMul", [flat, g.float(gatherRows(oT, H, qRows), [S * d, H], "wo")]),
      ]);
    }
    if (lm.biasAttn) x = g.node("Add", [x, g.float(lm.biasAttn, [H], "battn")]);
    const h2 = rms(x, t("post_attention_layernorm.weight", [H]));
    const n = lm.neurons.length;
    if (n > 0) {
      const rows = [...lm.neurons];
      const gT = transpose(gatherRows(t("mlp.gate_proj.weight", [I, H]), H, rows), n, H); // [H, n]
      const uT = transpose(gatherRows(t("mlp.up_proj.weight", [I, H]), H, rows), n, H);
      const dT = gatherRows(transpose(t("mlp.down_proj.weight", [H, I]), H, I), H, rows); // [n, H]
      const gate = g.node("MatMul", [h2, g.float(gT, [H, n], "wg")]);
      const act = g.node("Mul", [
        g.node("Mul", [gate, g.node("Sigmoid", [gate])]),
        g.node("MatMul", [h2, g.float(uT, [H, n], "wu")]),
      ]);
      x = g.node("Add", [x, g.node("MatMul", [act, g.float(dT, [n, H], "wd")])]);
    }
    if (lm.biasFfn) x = g.node("Add", [x, g.float(lm.biasFfn, [H], "bffn")]);
  });
  const hf = rms(x, tensorF32(ck, "model.norm.weight", [H]));
  const head = cfg.tieWordEmbeddings
    ? g.node("Transpose", [embedName], { perm: [1, 0] })
    : g.float(transpose(tensorF32(ck, "lm_head.weight", [V, H]), V, H), [H, V], "lm_head");
  g.output(g.node("MatMul", [hf, head]), "logits", ONNX_FLOAT, [
    "batch_size",
    "sequence_length",
    V,
  ]);
  return { bytes: g.serialize(`seap-${cfg.family}`), config: cfg, cacheLayers };
}
