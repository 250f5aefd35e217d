/**
 * Held-out perplexity under a mask (for the bias-compensation comparison of the report).
 */

import type { Mask } from "../model/mask.ts";
import type { Model } from "../model/model.ts";
import { prepareMask } from "../model/prepared_mask.ts";
import { Sequence } from "../model/sequence.ts";

/**
 * exp(mean next-token negative log-likelihood) over every position of every sequence, under
 * `mask` (dense when null). `seqs` are token ids (BOS included).
 */
export async function perplexity(
  model: Model,
  seqs: Int32Array[],
  mask: Mask | null,
): Promise<number> {
  const V = model.config.vocabSize;
  const prepared = mask ? prepareMask(model, mask) : null;
  let nll = 0;
  let n = 0;
  try {
    for (const ids of seqs) {
      if (ids.length < 2) continue;
      const seq = new Sequence(model, { maxTokens: ids.length, mask: prepared });
      try {
        const logits = await seq.prefill(ids, { allLogits: true }); // [T, V]
        for (let t = 0; t + 1 < ids.length; t++) {
          const o = t * V;
          let mx = -Infinity;
          for (let v = 0; v < V; v++) if (logits[o + v] > mx) mx = logits[o + v];
          let se = 0;
          for (let v = 0; v < V; v++) se += Math.exp(logits[o + v] - mx);
          nll += mx + Math.log(se) - logits[o + ids[t + 1]];
          n++;
        }
      } finally {
        seq.free();
      }
    }
  } finally {
    prepared?.release();
  }
  return Math.exp(nll / Math.max(1, n));
}

/** The same mask with its bias-compensation vectors removed. */
export function withoutBias(mask: Mask): Mask {
  return {
    name: `${mask.name} (no bias)`,
    layers: mask.layers.map((l) => ({ ...l, biasAttn: null, biasFfn: null })),
  };
}
