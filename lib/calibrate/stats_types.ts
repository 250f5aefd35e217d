/**
 * Shapes of the statistics one dense calibration pass produces (docs/design.md, Statistics) and of the weight
 * column norms the scores need (docs/design.md, Scores).
 */

import type { CostShape } from "../model/mask.ts";
import { RunningStats } from "./running_stats.ts";

/**
 * Sizes the calibration code needs from a model config, including those of the cost measure
 * (n_kv, vocabulary, q/k/v biases, q/k norms).
 */
export interface Dims extends CostShape {
  /** L */
  numLayers: number;
  /** H */
  hiddenSize: number;
  /** I */
  intermediateSize: number;
  /** n_h */
  numHeads: number;
  /** d_h */
  headDim: number;
}

/** One layer's activation statistics over every token of a task. */
export interface LayerStats {
  /** Input of o_proj (concatenated head outputs), D = n_h * d_h. */
  attnOut: RunningStats;
  /** Input of down_proj, silu(gate(x)) * up(x), D = I. */
  mlpAct: RunningStats;
  /** Post-norm input of the attention block, D = H. */
  attnIn: RunningStats;
  /** Post-norm input of the MLP block, D = H. */
  mlpIn: RunningStats;
}

/** Statistics of one task: one {@link LayerStats} per layer. */
export interface TaskStats {
  task: string;
  /** Calibration samples seen. */
  samples: number;
  /** Tokens seen (= count of every RunningStats). */
  tokens: number;
  layers: LayerStats[];
}

/** Per-layer column statistics of W_o and W_down (HF orientation: W_o [H, n_h*d_h], W_down [H, I]). */
export interface WeightColumnStats {
  /** [n_h*d_h] ||W_o[:, c]||^2 */
  oColSq: Float64Array;
  /** [n_h*d_h] sum_r |W_o[r, c]| */
  oColAbs: Float64Array;
  /** [I] ||W_down[:, j]||^2 */
  downColSq: Float64Array;
  /** [I] sum_r |W_down[r, j]| */
  downColAbs: Float64Array;
}

/** Empty statistics for one task. */
export function emptyTaskStats(task: string, d: Dims): TaskStats {
  return {
    task,
    samples: 0,
    tokens: 0,
    layers: Array.from({ length: d.numLayers }, () => ({
      attnOut: new RunningStats(d.numHeads * d.headDim),
      mlpAct: new RunningStats(d.intermediateSize),
      attnIn: new RunningStats(d.hiddenSize),
      mlpIn: new RunningStats(d.hiddenSize),
    })),
  };
}

/** Statistics of several tasks pooled into one (Chan merge), e.g. for the baselines. */
export function poolTaskStats(name: string, all: TaskStats[], d: Dims): TaskStats {
  const out = emptyTaskStats(name, d);
  for (const t of all) {
    out.samples += t.samples;
    out.tokens += t.tokens;
    t.layers.forEach((ls, l) => {
      out.layers[l].attnOut.merge(ls.attnOut);
      out.layers[l].mlpAct.merge(ls.mlpAct);
      out.layers[l].attnIn.merge(ls.attnIn);
      out.layers[l].mlpIn.merge(ls.mlpIn);
    });
  }
  return out;
}

/**
 * Column norms of a row-major matrix `w` [rows, cols]: returns `{ sq, abs }`, both [cols],
 * `sq[c] = sum_r w[r, c]^2`, `abs[c] = sum_r |w[r, c]|`.
 */
export function columnNorms(
  w: Float32Array,
  rows: number,
  cols: number,
): { sq: Float64Array; abs: Float64Array } {
  if (w.length !== rows * cols) throw new Error(`columnNorms: ${w.length} != ${rows}x${cols}`);
  const sq = new Float64Array(cols);
  const abs = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = w[o + c];
      sq[c] += v * v;
      abs[c] += Math.abs(v);
    }
  }
  return { sq, abs };
}

/** Column statistics of one layer from W_o [H, n_h*d_h] and W_down [H, I]. */
export function weightColumnStats(
  wO: Float32Array,
  wDown: Float32Array,
  d: Dims,
): WeightColumnStats {
  const o = columnNorms(wO, d.hiddenSize, d.numHeads * d.headDim);
  const dn = columnNorms(wDown, d.hiddenSize, d.intermediateSize);
  return { oColSq: o.sq, oColAbs: o.abs, downColSq: dn.sq, downColAbs: dn.abs };
}
