/**
 * What a mask prunes, layer by layer and compared with other masks: the per-layer share of
 * heads and neurons pruned, and the Jaccard overlap of masks' pruned units (the calibration
 * report's tables and plots, lib/calibrate/report.ts).
 */

import type { Mask } from "../model/mask.ts";
import type { Dims } from "./stats_types.ts";

/** Set of pruned units of a mask as a bitset over [L * (I + n_h)]. */
export function prunedSet(mask: Mask, d: Dims): Uint8Array {
  const per = d.intermediateSize + d.numHeads;
  const out = new Uint8Array(d.numLayers * per).fill(1);
  mask.layers.forEach((lm, l) => {
    for (const j of lm.neurons) out[l * per + j] = 0;
    for (const h of lm.heads) out[l * per + d.intermediateSize + h] = 0;
  });
  return out;
}

/** Jaccard |A ∩ B| / |A ∪ B| of two bitsets (1 when both are empty). */
export function jaccard(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  let u = 0;
  for (let k = 0; k < a.length; k++) {
    i += a[k] & b[k];
    u += a[k] | b[k];
  }
  return u === 0 ? 1 : i / u;
}

/** Pairwise Jaccard matrix of the pruned units of `masks`. */
export function jaccardMatrix(masks: Mask[], d: Dims): number[][] {
  const sets = masks.map((m) => prunedSet(m, d));
  return sets.map((a) => sets.map((b) => jaccard(a, b)));
}

/** Per-layer fraction of heads and neurons pruned. */
export function perLayerSparsity(mask: Mask, d: Dims): { heads: number[]; neurons: number[] } {
  return {
    heads: mask.layers.map((l) => 1 - l.heads.length / d.numHeads),
    neurons: mask.layers.map((l) => 1 - l.neurons.length / d.intermediateSize),
  };
}
