/**
 * The router's out-of-distribution test at calibration: the P(other) threshold chosen on
 * held-out in-task prompts, and what it does on held-out out-of-distribution prompts (share
 * served the generic mask, per source group), beside the scores it was chosen over
 * (maximum softmax probability, energy) at thresholds chosen the same way.
 */

import { oodScore, route, type Router, routerLogits } from "../masks/router.ts";

/**
 * P(other) threshold: the (1 - budget) quantile of P(other) over held-out in-task features
 * x [N, H], so that about `budget` of in-task prompts would be sent to the generic mask
 * (budget 0: the largest, none of them), capped at `cap` (default 0.5, where "other" is at
 * least as likely as all tasks together), floored at `floor` (default 0.01).
 */
export function chooseOodThreshold(
  r: Router,
  x: Float32Array,
  budget = 0,
  cap = 0.5,
  floor = 0.01,
): number {
  if (!r.ood) throw new Error("chooseOodThreshold: the router has no OOD test");
  if (!(budget >= 0 && budget < 1)) throw new Error(`OOD budget ${budget} not in [0, 1)`);
  const H = r.mean.length;
  const s = Array.from(
    { length: x.length / H },
    (_, i) => oodScore(r, x.subarray(i * H, (i + 1) * H))!,
  );
  if (!s.length) return cap;
  return Math.min(cap, Math.max(floor, budgetThreshold(s, budget)));
}

/**
 * The smallest threshold with at most floor(budget * N) of `scores` above it (the largest
 * score when budget * N < 1).
 */
export function budgetThreshold(scores: number[], budget: number): number {
  const s = [...scores].sort((a, b) => a - b);
  return s[s.length - 1 - Math.floor(budget * s.length)];
}

/** Area under the ROC curve of `score` separating `inScores` (negatives) from `outScores`. */
export function auroc(inScores: number[], outScores: number[]): number {
  if (!inScores.length || !outScores.length) return NaN;
  let wins = 0;
  const sorted = [...inScores].sort((a, b) => a - b);
  for (const o of outScores) {
    // count in-task scores below o (ties count half)
    let lo = 0, hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < o) lo = mid + 1;
      else hi = mid;
    }
    let eq = lo;
    while (eq < sorted.length && sorted[eq] === o) eq++;
    wins += lo + (eq - lo) / 2;
  }
  return wins / (inScores.length * outScores.length);
}

/** One candidate OOD score, measured on held-out data. */
export interface OodMethodResult {
  /** "other-class" (deployed), "max-softmax", "energy", "mahalanobis" (shared covariance). */
  method: string;
  /** Threshold chosen on held-out in-task prompts (the same budget as the deployed test). */
  threshold: number;
  /** AUROC, held-out in-task vs held-out OOD prompts (1 = perfectly separated). */
  auroc: number;
  /** Share of held-out OOD prompts flagged at that threshold. */
  oodFlagged: number;
}

/** What the OOD test does on held-out prompts. */
export interface OodReport {
  method: "other-class";
  threshold: number;
  /** Share of held-out in-task samples the threshold may send to the generic mask. */
  budget: number;
  trainSamples: number;
  heldOutSamples: number;
  /** Share of held-out OOD prompts the router serves the generic mask. */
  heldOutGeneric: number;
  /** Per group (template category or benchmark file): [served generic, samples]. */
  byGroup: Record<string, [number, number]>;
  /** Held-out OOD prompts served a task mask, with the task, at most 20. */
  misses: { source: string; task: string; oodScore: number }[];
  /** Candidate scores compared on the same held-out data. */
  methods: OodMethodResult[];
}

/**
 * Squared Mahalanobis distance to the nearest class mean, with one covariance shared by the
 * classes (shrunk toward its mean variance by `shrink`), on the router's standardised
 * features: fitted on x [N, H] with labels y [N]; returns a scorer for one feature [H].
 */
export function mahalanobisScorer(
  r: Router,
  x: Float32Array,
  y: Int32Array,
  shrink = 0.01,
): (feature: Float32Array) => number {
  const H = r.mean.length;
  const C = r.tasks.length;
  const N = y.length;
  const z = (f: Float32Array, i: number) => (f[i] - r.mean[i]) / r.std[i];
  const means = new Float64Array(C * H); // [C, H] class means, standardised
  const count = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    count[y[n]]++;
    const f = x.subarray(n * H, (n + 1) * H);
    for (let h = 0; h < H; h++) means[y[n] * H + h] += z(f, h);
  }
  for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) means[c * H + h] /= Math.max(1, count[c]);
  const cov = new Float64Array(H * H); // [H, H] shared within-class covariance
  const d = new Float64Array(H);
  for (let n = 0; n < N; n++) {
    const f = x.subarray(n * H, (n + 1) * H);
    for (let h = 0; h < H; h++) d[h] = z(f, h) - means[y[n] * H + h];
    for (let i = 0; i < H; i++) for (let j = 0; j <= i; j++) cov[i * H + j] += d[i] * d[j] / N;
  }
  let tr = 0;
  for (let i = 0; i < H; i++) tr += cov[i * H + i];
  for (let i = 0; i < H; i++) {
    for (let j = 0; j <= i; j++) cov[i * H + j] *= 1 - shrink;
    cov[i * H + i] += shrink * tr / H;
  }
  // Cholesky, lower triangle in place: cov = L L^T
  for (let j = 0; j < H; j++) {
    let s = cov[j * H + j];
    for (let k = 0; k < j; k++) s -= cov[j * H + k] ** 2;
    const ljj = Math.sqrt(Math.max(s, 1e-12));
    cov[j * H + j] = ljj;
    for (let i = j + 1; i < H; i++) {
      let t = cov[i * H + j];
      for (let k = 0; k < j; k++) t -= cov[i * H + k] * cov[j * H + k];
      cov[i * H + j] = t / ljj;
    }
  }
  const v = new Float64Array(H);
  return (f) => {
    let best = Infinity;
    for (let c = 0; c < C; c++) {
      // solve L v = z - mean_c; distance = |v|^2
      let dist = 0;
      for (let i = 0; i < H; i++) {
        let t = z(f, i) - means[c * H + i];
        for (let k = 0; k < i; k++) t -= cov[i * H + k] * v[k];
        v[i] = t / cov[i * H + i];
        dist += v[i] * v[i];
      }
      best = Math.min(best, dist);
    }
    return best;
  };
}

function scores(r: Router, x: Float32Array, f: (logits: Float64Array) => number): number[] {
  const H = r.mean.length;
  return Array.from(
    { length: x.length / H },
    (_, i) => f(routerLogits(r, x.subarray(i * H, (i + 1) * H))),
  );
}

function logSumExp(v: Float64Array): number {
  const mx = Math.max(...v);
  let s = 0;
  for (const x of v) s += Math.exp(x - mx);
  return mx + Math.log(s);
}

/**
 * Evaluate the deployed router's OOD test: `inX` [N, H] held-out in-task features,
 * `oodX` [M, H] held-out OOD features with their `sources` and `groups` [M].
 */
export function evaluateOod(
  r: Router,
  inX: Float32Array,
  oodX: Float32Array,
  sources: string[],
  groups: string[],
  trainSamples: number,
  budget = 0,
  taskTrain?: { x: Float32Array; y: Int32Array },
): OodReport {
  if (!r.ood) throw new Error("evaluateOod: the router has no OOD test");
  const H = r.mean.length;
  const C = r.tasks.length;
  const M = oodX.length / H;
  const byGroup: Record<string, [number, number]> = {};
  const misses: OodReport["misses"] = [];
  let generic = 0;
  for (let i = 0; i < M; i++) {
    const res = route(r, oodX.subarray(i * H, (i + 1) * H));
    const g = (byGroup[groups[i]] ??= [0, 0]);
    g[1]++;
    if (res.useGeneric) {
      generic++;
      g[0]++;
    } else if (misses.length < 20) {
      misses.push({ source: sources[i], task: res.task, oodScore: res.oodScore ?? NaN });
    }
  }
  // candidate scores, higher = more out of distribution
  const cands: [string, (l: Float64Array) => number][] = [
    ["other-class", (l) => Math.exp(l[C] - logSumExp(l))],
    ["max-softmax", (l) => -Math.exp(Math.max(...l.subarray(0, C)) - logSumExp(l.subarray(0, C)))],
    ["energy", (l) => -logSumExp(l.subarray(0, C))],
  ];
  const maha = taskTrain ? mahalanobisScorer(r, taskTrain.x, taskTrain.y) : null;
  const perRow = (x: Float32Array, f: (v: Float32Array) => number) =>
    Array.from({ length: x.length / H }, (_, i) => f(x.subarray(i * H, (i + 1) * H)));
  type Scorer = (x: Float32Array) => number[];
  const all: [string, Scorer][] = cands.map(([m, f]) => [m, (x) => scores(r, x, f)]);
  if (maha) all.push(["mahalanobis", (x) => perRow(x, maha)]);
  const methods = all.map(([method, sc]) => {
    const si = sc(inX);
    const so = sc(oodX);
    const t = budgetThreshold(si, budget);
    return {
      method,
      threshold: t,
      auroc: auroc(si, so),
      oodFlagged: so.filter((s) => s > t).length / Math.max(1, so.length),
    };
  });
  return {
    method: "other-class",
    threshold: r.ood.threshold,
    budget,
    trainSamples,
    heldOutSamples: M,
    heldOutGeneric: M ? generic / M : NaN,
    byGroup,
    misses,
    methods,
  };
}
