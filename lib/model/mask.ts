/**
 * SEAP masks: per layer, which FFN neurons and query heads are kept, plus FLAP's two
 * bias-compensation vectors. A mask never copies weights: kernels read only the kept rows.
 */

import type { ModelConfig } from "./config.ts";

/** What one decoder layer keeps. */
export interface LayerMask {
  /** Kept FFN neuron indices, sorted ascending, each in [0, I). */
  neurons: Int32Array;
  /** Kept query heads, sorted ascending, each in [0, n_h). */
  heads: Int32Array;
  /** Added to the attention block's output (o_proj bias compensation), [H], or null. */
  biasAttn: Float32Array | null;
  /** Added to the FFN block's output (down_proj bias compensation), [H], or null. */
  biasFfn: Float32Array | null;
}

/** A whole-model mask. */
export interface Mask {
  /** Name shown to users, e.g. "reverse@0.5" or "generic@0.2". */
  name: string;
  /** One entry per decoder layer. */
  layers: LayerMask[];
}

/** Error for a mask that does not fit the model it is applied to. */
export class MaskError extends Error {
  override name = "MaskError";
}

/** Check a mask against a model's sizes; throws {@link MaskError} saying what does not match. */
export function validateMask(mask: Mask, cfg: ModelConfig): void {
  if (mask.layers.length !== cfg.numLayers) {
    throw new MaskError(
      `mask "${mask.name}" has ${mask.layers.length} layers, the model has ${cfg.numLayers}`,
    );
  }
  mask.layers.forEach((lm, l) => {
    checkSorted(lm.neurons, cfg.intermediateSize, `mask "${mask.name}" layer ${l} neurons`);
    checkSorted(lm.heads, cfg.numHeads, `mask "${mask.name}" layer ${l} heads`);
    for (const [name, b] of [["biasAttn", lm.biasAttn], ["biasFfn", lm.biasFfn]] as const) {
      if (b && b.length !== cfg.hiddenSize) {
        throw new MaskError(
          `mask "${mask.name}" layer ${l} ${name} has size ${b.length}, hidden size is ${cfg.hiddenSize}`,
        );
      }
    }
  });
}

function checkSorted(idx: Int32Array, n: number, what: string): void {
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] < 0 || idx[i] >= n) throw new MaskError(`${what}: index ${idx[i]} out of [0, ${n})`);
    if (i > 0 && idx[i] <= idx[i - 1]) {
      throw new MaskError(`${what}: indices must be strictly increasing`);
    }
  }
}

/** The dense mask (everything kept, no bias) for a config. */
export function denseMask(cfg: ModelConfig, name = "dense"): Mask {
  const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  return {
    name,
    layers: Array.from({ length: cfg.numLayers }, () => ({
      neurons: all(cfg.intermediateSize),
      heads: all(cfg.numHeads),
      biasAttn: null,
      biasFfn: null,
    })),
  };
}

/**
 * Model sizes the cost measure needs ({@link ModelConfig} has them all; the calibration
 * statistics carry them too).
 */
export interface CostShape {
  numLayers: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** q/k/v projections carry biases (Qwen2). */
  attentionBias?: boolean;
  /** RMSNorm weights over each q and k head (Qwen3). */
  qkNorm?: boolean;
}

/** Context length at which {@link maskCost} counts attention FLOPs by default. */
export const COST_CONTEXT = 256;

/** What a mask removes, as shares of the dense model (0 = dense), with the absolute counts. */
export interface MaskCost {
  /** Share of decoder-layer parameters removed (the name's number: `reverse@0.5` ~ 0.5). */
  params: number;
  /** Share of weight bytes read per decoded token removed (embedding row and LM head included). */
  bytesPerToken: number;
  /** Share of FLOPs of one decode step removed, at context length {@link MaskCost.context}. */
  flopsPerToken: number;
  /** Decoder-layer parameters kept / in the dense model. */
  keptParams: number;
  denseParams: number;
  /** Weight elements read per decoded token, masked / dense. */
  keptRead: number;
  denseRead: number;
  /** FLOPs of one decode step, masked / dense. */
  keptFlops: number;
  denseFlops: number;
  /** Positions attended to in the FLOP count. */
  context: number;
}

/**
 * Kept counts of one layer: query heads, K/V groups with at least one kept query head (a K/V
 * head is removed only when its whole GQA group is), FFN neurons, compensation vectors.
 */
function layerCounts(lm: LayerMask, c: CostShape) {
  const group = c.numHeads / c.numKvHeads;
  const groups = new Set(Array.from(lm.heads, (h) => Math.floor(h / group)));
  return {
    heads: lm.heads.length,
    groups: groups.size,
    neurons: lm.neurons.length,
    vectors: (lm.biasAttn ? 1 : 0) + (lm.biasFfn ? 1 : 0),
  };
}

/**
 * Parameters of one decoder layer keeping `k.heads` query heads, `k.groups` K/V heads,
 * `k.neurons` FFN neurons and `k.vectors` bias-compensation vectors:
 * q and o rows/columns 2 H kh d_h, k and v 2 H kg d_h, gate/up/down 3 H kn, the two RMSNorm
 * weights 2 H (always kept), q/k/v biases kh d_h + 2 kg d_h (Qwen2), q/k norms 2 d_h (Qwen3,
 * always kept), and H per compensation vector (counted as kept parameters).
 */
function layerParams(
  k: { heads: number; groups: number; neurons: number; vectors: number },
  c: CostShape,
): number {
  const H = c.hiddenSize;
  const d = c.headDim;
  return 2 * H * k.heads * d + 2 * H * k.groups * d + 3 * H * k.neurons + 2 * H +
    (c.attentionBias ? k.heads * d + 2 * k.groups * d : 0) + (c.qkNorm ? 2 * d : 0) +
    H * k.vectors;
}

/**
 * FLOPs of one layer in one decode step attending to `T` positions: 2 per multiply-add of the
 * q, k, v, o, gate, up and down matrix-vector products (2 x their weight elements), 4 d_h T
 * per kept query head (scores q.k and the weighted sum of v), and 1 per element of every bias
 * added (q/k/v biases, compensation vectors). Element-wise work (norms, RoPE, SiLU, softmax,
 * residual adds) is not counted.
 */
function layerFlops(
  k: { heads: number; groups: number; neurons: number; vectors: number },
  c: CostShape,
  T: number,
): number {
  const H = c.hiddenSize;
  const d = c.headDim;
  return 2 * (2 * H * k.heads * d + 2 * H * k.groups * d + 3 * H * k.neurons) +
    4 * d * T * k.heads + (c.attentionBias ? k.heads * d + 2 * k.groups * d : 0) +
    H * k.vectors;
}

/**
 * The one cost measure of every mask and method (docs/design.md, Masks), as shares removed
 * relative to the dense model:
 *
 * - `params`: decoder-layer parameters (see `layerParams`: K/V rows go only with a whole GQA
 *   group, compensation vectors count as kept, norms are kept); embeddings and LM head are not
 *   decoder-layer parameters.
 * - `bytesPerToken`: weight elements read to decode one token = every kept decoder-layer
 *   parameter + one embedding row (H) + the final norm (H) + the LM head (V H, read even when
 *   tied to the embedding); at one storage dtype this is the share of bytes.
 * - `flopsPerToken`: FLOPs of one decode step at context length `context` (default
 *   {@link COST_CONTEXT}): the layers' FLOPs (see `layerFlops`) + 2 V H for the LM head.
 */
export function maskCost(mask: Mask, c: CostShape, context = COST_CONTEXT): MaskCost {
  if (mask.layers.length !== c.numLayers) {
    throw new MaskError(
      `mask "${mask.name}" has ${mask.layers.length} layers, the model has ${c.numLayers}`,
    );
  }
  const full = { heads: c.numHeads, groups: c.numKvHeads, neurons: c.intermediateSize, vectors: 0 };
  const H = c.hiddenSize;
  const outside = 2 * H + c.vocabSize * H;
  const headFlops = 2 * c.vocabSize * H;
  let keptParams = 0;
  let keptFlops = headFlops;
  for (const lm of mask.layers) {
    const k = layerCounts(lm, c);
    keptParams += layerParams(k, c);
    keptFlops += layerFlops(k, c, context);
  }
  const denseParams = c.numLayers * layerParams(full, c);
  const denseFlops = headFlops + c.numLayers * layerFlops(full, c, context);
  return {
    params: 1 - keptParams / denseParams,
    bytesPerToken: 1 - (keptParams + outside) / (denseParams + outside),
    flopsPerToken: 1 - keptFlops / denseFlops,
    keptParams,
    denseParams,
    keptRead: keptParams + outside,
    denseRead: denseParams + outside,
    keptFlops,
    denseFlops,
    context,
  };
}
