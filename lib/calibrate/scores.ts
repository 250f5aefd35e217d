/**
 * Importance scores of FFN neurons and attention heads (docs/design.md, Scores): WIFV (SEAP's default,
 * from FLAP), WIFN, and the Wanda-sp baseline. Higher score = more important.
 */

import type { Dims, TaskStats, WeightColumnStats } from "./stats_types.ts";

/** Score method names. */
export type ScoreMethod = "wifv" | "wifn" | "wanda-sp";

/** One layer's scores. */
export interface LayerScores {
  /** [n_h] one score per query head */
  heads: Float64Array;
  /** [I] one score per FFN neuron */
  neurons: Float64Array;
}

/**
 * Scores of every layer from a task's statistics and the weights' column statistics.
 *
 * - wifv: neuron s_j = var(mlp_act_j) * ||W_down[:, j]||^2; head = mean over its d_h channels
 *   of var(attn_out_c) * ||W_o[:, c]||^2.
 * - wifn: as wifv with sqrt(mean of squares) in place of the variance.
 * - wanda-sp: neuron s_j = sum_r |W_down[r, j]| * sqrt(meansq(mlp_act_j)); head = sum over its
 *   channels of sum_r |W_o[r, c]| * sqrt(meansq(attn_out_c)).
 */
export function computeScores(
  stats: TaskStats,
  weights: WeightColumnStats[],
  d: Dims,
  method: ScoreMethod,
): LayerScores[] {
  return stats.layers.map((ls, l) => {
    const w = weights[l];
    const I = d.intermediateSize;
    const nh = d.numHeads;
    const dh = d.headDim;
    const neurons = new Float64Array(I); // [I]
    const heads = new Float64Array(nh); // [n_h]
    if (method === "wanda-sp") {
      const mq = ls.mlpAct.meanSquare(); // [I]
      for (let j = 0; j < I; j++) neurons[j] = w.downColAbs[j] * Math.sqrt(mq[j]);
      const aq = ls.attnOut.meanSquare(); // [n_h*d_h]
      for (let h = 0; h < nh; h++) {
        let s = 0;
        for (let c = h * dh; c < (h + 1) * dh; c++) s += w.oColAbs[c] * Math.sqrt(aq[c]);
        heads[h] = s;
      }
      return { heads, neurons };
    }
    const act = (x: { variance(): Float64Array; meanSquare(): Float64Array }) =>
      method === "wifv" ? x.variance() : x.meanSquare().map(Math.sqrt);
    const mv = act(ls.mlpAct); // [I]
    for (let j = 0; j < I; j++) neurons[j] = mv[j] * w.downColSq[j];
    const av = act(ls.attnOut); // [n_h*d_h]
    for (let h = 0; h < nh; h++) {
      let s = 0;
      for (let c = h * dh; c < (h + 1) * dh; c++) s += av[c] * w.oColSq[c];
      heads[h] = s / dh;
    }
    return { heads, neurons };
  });
}

/** Weighted sum of several tasks' scores (the generic mask's scores, docs/design.md, Scores). */
export function weightedScores(all: LayerScores[][], weights: number[]): LayerScores[] {
  if (all.length === 0) throw new Error("weightedScores: no tasks");
  if (all.length !== weights.length) throw new Error("weightedScores: one weight per task");
  return all[0].map((first, l) => {
    const heads = new Float64Array(first.heads.length);
    const neurons = new Float64Array(first.neurons.length);
    all.forEach((s, t) => {
      for (let i = 0; i < heads.length; i++) heads[i] += weights[t] * s[l].heads[i];
      for (let i = 0; i < neurons.length; i++) neurons[i] += weights[t] * s[l].neurons[i];
    });
    return { heads, neurons };
  });
}
