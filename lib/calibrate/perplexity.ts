/**
 * Held-out next-token log-likelihood under a mask: the perplexity of the report's
 * bias-compensation comparison and the held-out score of the mask validation.
 */

import type { Mask } from "../model/mask.ts";
import type { Model } from "../model/model.ts";
import { type PreparedMask, prepareMask } from "../model/prepared_mask.ts";
import { Sequence } from "../model/sequence.ts";

/** A scored sequence: token ids (BOS included); tokens at positions >= `from` are scored. */
export interface ScoredSequence {
  ids: Int32Array;
  /** First scored position (>= 1): 1 scores every token, the answer's start scores the answer. */
  from: number;
}

/** Summed negative log-likelihood (nats) and the number of tokens it covers. */
export interface NllSum {
  nll: number;
  tokens: number;
  /** Sequences scored (at least one scored token). */
  sequences: number;
  /**
   * Sequences whose every scored token is the model's top choice given the true prefix:
   * greedy decoding from position `from` would reproduce them exactly.
   */
  exact: number;
}

/**
 * Sum over positions t in [from, T) of -log p(ids[t] | ids[< t]) for every sequence, under
 * `mask` (dense when null), and how many sequences are reproduced exactly by greedy choice
 * (every scored token the argmax; a tie with another token counts as reproduced). Sequences
 * shorter than 2 tokens are skipped.
 */
export async function sequenceNll(
  model: Model,
  seqs: ScoredSequence[],
  mask: Mask | PreparedMask | null,
): Promise<NllSum> {
  const V = model.config.vocabSize;
  const own = mask && !("release" in mask) ? prepareMask(model, mask) : null;
  const prepared = own ?? (mask as PreparedMask | null);
  let nll = 0;
  let n = 0;
  let sequences = 0;
  let exact = 0;
  try {
    for (const { ids, from } of seqs) {
      if (ids.length < 2) continue;
      const seq = new Sequence(model, { maxTokens: ids.length, mask: prepared });
      try {
        const logits = await seq.prefill(ids, { allLogits: true }); // [T, V]
        let all = true;
        const first = Math.max(1, from);
        for (let t = first; t < ids.length; t++) {
          const o = (t - 1) * V;
          let mx = -Infinity;
          for (let v = 0; v < V; v++) if (logits[o + v] > mx) mx = logits[o + v];
          let se = 0;
          for (let v = 0; v < V; v++) se += Math.exp(logits[o + v] - mx);
          nll += mx + Math.log(se) - logits[o + ids[t]];
          if (logits[o + ids[t]] < mx) all = false;
          n++;
        }
        if (first < ids.length) {
          sequences++;
          if (all) exact++;
        }
      } finally {
        seq.free();
      }
    }
  } finally {
    own?.release();
  }
  return { nll, tokens: n, sequences, exact };
}

/**
 * exp(mean next-token negative log-likelihood) over every position of every sequence, under
 * `mask` (dense when null). `seqs` are token ids (BOS included).
 */
export async function perplexity(
  model: Model,
  seqs: Int32Array[],
  mask: Mask | null,
): Promise<number> {
  const r = await sequenceNll(model, seqs.map((ids) => ({ ids, from: 1 })), mask);
  return Math.exp(r.nll / Math.max(1, r.tokens));
}

/** The same mask with its bias-compensation vectors removed. */
export function withoutBias(mask: Mask): Mask {
  return {
    name: `${mask.name} (no bias)`,
    layers: mask.layers.map((l) => ({ ...l, biasAttn: null, biasFfn: null })),
  };
}
