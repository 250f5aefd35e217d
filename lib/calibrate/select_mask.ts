/**
 * From scores to kept units (docs/design.md, Layer sparsity): per-layer selection for UL-UM / UL-LD, and FLAP's
 * global AL-AM selection across layers and modules.
 */

import type { LayerScores } from "./scores.ts";

/** Kept units of every layer (sorted ascending). */
export interface KeptUnits {
  /** per layer: kept query heads */
  heads: Int32Array[];
  /** per layer: kept FFN neurons */
  neurons: Int32Array[];
}

/** Indices of `scores` sorted by ascending score, ties by ascending index (deterministic). */
function ascending(scores: Float64Array): number[] {
  return Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b] || a - b);
}

function keptAfterPruning(scores: Float64Array, prune: number): Int32Array {
  const order = ascending(scores);
  const dead = new Uint8Array(scores.length);
  for (let i = 0; i < prune; i++) dead[order[i]] = 1;
  const out: number[] = [];
  for (let i = 0; i < scores.length; i++) if (!dead[i]) out.push(i);
  return Int32Array.from(out);
}

/**
 * Per-layer selection: in layer l, the lowest-scoring floor(n * rho[l]) heads and
 * floor(I * rho[l]) neurons are pruned (ties broken by index).
 */
export function selectPerLayer(scores: LayerScores[], rho: number[]): KeptUnits {
  if (rho.length !== scores.length) {
    throw new Error(`selectPerLayer: ${rho.length} ratios for ${scores.length} layers`);
  }
  return {
    heads: scores.map((s, l) => keptAfterPruning(s.heads, Math.floor(s.heads.length * rho[l]))),
    neurons: scores.map((s, l) =>
      keptAfterPruning(s.neurons, Math.floor(s.neurons.length * rho[l]))
    ),
  };
}

/**
 * Robust standardisation of one layer's scores: (x - median) / (IQR + 1e-9), clipped to
 * [-3, 3]. Median is the lower middle value (torch.median); quartiles interpolate linearly
 * (torch.quantile).
 */
export function standardize(x: Float64Array, clip = 3): Float64Array {
  const s = Float64Array.from(x).sort();
  const n = s.length;
  const q = (p: number) => {
    const pos = p * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(n - 1, lo + 1);
    return s[lo] + (s[hi] - s[lo]) * (pos - lo);
  };
  const median = s[Math.floor((n - 1) / 2)];
  const iqr = q(0.75) - q(0.25);
  return x.map((v) => Math.max(-clip, Math.min(clip, (v - median) / (iqr + 1e-9))));
}

/** Cost of one head in neuron-equivalents: (4/3) * H / n_h. */
export function headCost(hiddenSize: number, numHeads: number): number {
  return (4 / 3) * hiddenSize / numHeads;
}

/**
 * AL-AM (FLAP): standardise head and neuron scores per layer, rank all units of all layers
 * together (descending), and keep the best-ranked units up to and including the first rank at
 * which the cumulative cost reaches (1 - ratio) of the total cost.
 */
export function selectGlobal(
  scores: LayerScores[],
  hiddenSize: number,
  numHeads: number,
  ratio: number,
): KeptUnits {
  if (!(ratio >= 0 && ratio < 1)) throw new Error(`sparsity ratio must be in [0, 1), got ${ratio}`);
  const hc = headCost(hiddenSize, numHeads);
  // all units: (score, cost, layer, isHead, index)
  const units: { s: number; c: number; l: number; head: boolean; i: number }[] = [];
  scores.forEach((ls, l) => {
    standardize(ls.heads).forEach((s, i) => units.push({ s, c: hc, l, head: true, i }));
  });
  scores.forEach((ls, l) => {
    standardize(ls.neurons).forEach((s, i) => units.push({ s, c: 1, l, head: false, i }));
  });
  // descending score; stable ties by insertion order (heads first, then by layer, index)
  const order = Array.from(units.keys()).sort((a, b) => units[b].s - units[a].s || a - b);
  const total = units.reduce((a, u) => a + u.c, 0);
  const target = (1 - ratio) * total;
  const keepH = scores.map((s) => new Uint8Array(s.heads.length));
  const keepN = scores.map((s) => new Uint8Array(s.neurons.length));
  let cum = 0;
  for (const k of order) {
    const u = units[k];
    (u.head ? keepH : keepN)[u.l][u.i] = 1;
    cum += u.c;
    if (cum >= target) break;
  }
  const idx = (m: Uint8Array) => Int32Array.from(Array.from(m.keys()).filter((i) => m[i]));
  return { heads: keepH.map(idx), neurons: keepN.map(idx) };
}
