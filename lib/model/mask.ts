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

/** Fraction of prunable units (neurons + heads, heads weighted by their cost) removed. */
export function maskSparsity(mask: Mask, cfg: ModelConfig): number {
  const headCost = (4 / 3) * cfg.hiddenSize / cfg.numHeads;
  let kept = 0;
  let total = 0;
  for (const lm of mask.layers) {
    kept += lm.neurons.length + lm.heads.length * headCost;
    total += cfg.intermediateSize + cfg.numHeads * headCost;
  }
  return 1 - kept / total;
}
