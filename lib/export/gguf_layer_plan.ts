/**
 * Which original heads, kv heads and FFN neurons fill each slot of one exported GGUF layer.
 * llama.cpp wants every kv head to serve the same number of consecutive query heads, so a
 * mask's uneven groups are padded with zero query heads (slot -1: zero q rows, zero o_proj
 * columns: they add exactly 0). A layer that keeps no head or no neuron keeps one zero slot so
 * its bias-compensation vector still has a tensor to live in (attn_output.bias /
 * ffn_down.bias), and Q8_0 pads the neuron count to a multiple of 32 with zero neurons.
 */

import type { ModelConfig } from "../model/config.ts";
import type { LayerMask } from "../model/mask.ts";

/** Slots of one exported layer; -1 is a zero-weight padding slot. */
export interface LayerPlan {
  /** Query head per slot, grouped by kv slot: slot s*group+i serves kv slot s. */
  qHeads: number[];
  /** Original kv head per kv slot. */
  kvHeads: number[];
  /** Original FFN neuron per slot. */
  neurons: number[];
}

/** Plan one layer kept by `lm`; `neuronMultiple` rounds the FFN width up (32 for Q8_0). */
export function planLayer(cfg: ModelConfig, lm: LayerMask, neuronMultiple = 1): LayerPlan {
  const group = cfg.numHeads / cfg.numKvHeads;
  const byKv = new Map<number, number[]>();
  for (const h of lm.heads) {
    const kv = Math.floor(h / group);
    if (!byKv.has(kv)) byKv.set(kv, []);
    byKv.get(kv)!.push(h);
  }
  let kvHeads = [...byKv.keys()].sort((a, b) => a - b);
  let qHeads: number[];
  if (kvHeads.length === 0) {
    kvHeads = [-1];
    qHeads = [-1];
  } else {
    const g = Math.max(...[...byKv.values()].map((hs) => hs.length));
    qHeads = kvHeads.flatMap((kv) => {
      const hs = byKv.get(kv)!;
      return [...hs, ...new Array(g - hs.length).fill(-1)];
    });
  }
  const neurons: number[] = lm.neurons.length ? [...lm.neurons] : [-1];
  while (neurons.length % neuronMultiple !== 0) neurons.push(-1);
  return { qHeads, kvHeads, neurons };
}

/** Zero-weight slots a plan adds over what the mask keeps (heads, neurons). */
export function paddingOf(plan: LayerPlan): { heads: number; neurons: number } {
  return {
    heads: plan.qHeads.filter((h) => h < 0).length,
    neurons: plan.neurons.filter((j) => j < 0).length,
  };
}
