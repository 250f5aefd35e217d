/**
 * A mask turned into backend index lists once, so that switching masks between requests (or
 * between decode steps of interleaved requests) costs a pointer and copies no weights.
 */

import type { IndexList, MatView } from "../backends/backend.ts";
import { denseMask, type Mask, validateMask } from "./mask.ts";
import type { Model } from "./model.ts";
import { inversePermutation } from "./neuron_order.ts";

/** Index lists of one layer under a mask. */
export interface PreparedLayer {
  /** Kept FFN neurons `[n_kept]`, rows of the gate/up/downT views. */
  neurons: IndexList;
  /** Kept query-head rows `[n_kept_heads * d_h]` of the q and oT views, head by head. */
  qRows: IndexList;
  /** Kept kv heads `[n_kept_kv]` (a kv head is kept when any query head of its group is). */
  kvHeads: IndexList;
  /** Rows of the k and v views for the kept kv heads `[n_kept_kv * d_h]`. */
  kvRows: IndexList;
  /** For each kept query-head slot, the kv head (cache block) it reads `[n_kept_heads]`. */
  kvOf: IndexList;
  /** o_proj bias compensation added to the attention output (q/k/v biases are indexed by row). */
  biasAttn: MatView | null; // [1, H]
  biasFfn: MatView | null; // [1, H]
  /** True when this layer keeps everything and adds no bias. */
  dense: boolean;
}

/** A mask ready for the forward pass. */
export interface PreparedMask {
  name: string;
  mask: Mask;
  layers: PreparedLayer[];
  /** Weight bytes read per decoded token under this mask (layers + LM head). */
  weightBytesPerToken: number;
  /** Release the backend index lists. */
  release(): void;
}

/** Upload a mask's index lists (and bias vectors) to the model's backend. */
export function prepareMask(model: Model, mask: Mask): PreparedMask {
  const cfg = model.config;
  validateMask(mask, cfg);
  const be = model.backend;
  const { headDim: d, hiddenSize: H, numHeads: nh, numKvHeads: nkv } = cfg;
  const group = nh / nkv;
  const owned: Parameters<typeof be.release>[0][] = [];
  const idx = (a: Int32Array) => {
    const l = be.indices(a);
    owned.push(l);
    return l;
  };
  const vec = (b: Float32Array | null): MatView | null => {
    if (!b) return null;
    const w = be.weights(b, "f32");
    owned.push(w);
    return { buf: w, offset: 0, stride: H, rows: 1, cols: H };
  };
  let bytes = cfg.vocabSize * H * 4;
  const layers = mask.layers.map((lm, l): PreparedLayer => {
    const heads = lm.heads;
    const qRows = new Int32Array(heads.length * d);
    heads.forEach((h, s) => {
      for (let i = 0; i < d; i++) qRows[s * d + i] = h * d + i;
    });
    const kvSet = [...new Set(Array.from(heads, (h) => Math.floor(h / group)))].sort((a, b) =>
      a - b
    );
    const kvRows = new Int32Array(kvSet.length * d);
    kvSet.forEach((g, s) => {
      for (let i = 0; i < d; i++) kvRows[s * d + i] = g * d + i;
    });
    const kvOf = Int32Array.from(heads, (h) => Math.floor(h / group));
    bytes += (2 * heads.length * d * H + 2 * kvSet.length * d * H + 3 * lm.neurons.length * H) *
      4;
    return {
      neurons: idx(bundleRows(model, l, lm.neurons)),
      qRows: idx(qRows),
      kvHeads: idx(Int32Array.from(kvSet)),
      kvRows: idx(kvRows),
      kvOf: idx(kvOf),
      biasAttn: vec(lm.biasAttn),
      biasFfn: vec(lm.biasFfn),
      dense: lm.neurons.length === cfg.intermediateSize && heads.length === nh &&
        !lm.biasAttn && !lm.biasFfn,
    };
  });
  return {
    name: mask.name,
    mask,
    layers,
    weightBytesPerToken: bytes,
    release: () => owned.forEach((o) => be.release(o)),
  };
}

/** Bundle rows (sorted) of a layer's kept neurons, given the model's neuron order. */
function bundleRows(model: Model, layer: number, neurons: Int32Array): Int32Array {
  const order = model.neuronOrder?.[layer];
  if (!order) return neurons;
  const pos = inversePermutation(order);
  return Int32Array.from(neurons, (j) => pos[j]).sort();
}

/** The model's dense mask, prepared once and cached on the model object. */
export function denseFor(model: Model): PreparedMask {
  const cache = model as Model & { _dense?: PreparedMask };
  cache._dense ??= prepareMask(model, denseMask(model.config));
  return cache._dense;
}
