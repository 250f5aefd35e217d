/**
 * The task router (docs/design.md, Router): multinomial logistic regression on standardised
 * router features (mean-pooled hidden state after the protected leading layers), trained with
 * L-BFGS, evaluated on held-out prompts with a confusion matrix.
 *
 * Out-of-distribution test: when trained with out-of-distribution prompts (chat requests that
 * belong to no task), the regression has one more class, "other", and {@link route} sends a
 * prompt to the generic mask when P(other) exceeds a threshold chosen at calibration. Chosen
 * by measurement on the default model over the maximum-softmax, energy and Mahalanobis
 * (shared covariance) scores. The router's data and its inference (`route`) live in
 * lib/masks/router.ts, which the server uses without this training code.
 */

import { rng } from "../util/seeded_rng.ts";
import { route, type Router } from "../masks/router.ts";

/**
 * Stratified split: for each class, a seeded shuffle of its samples, `testFraction` of them
 * (at least 1 when a class has 2 or more) go to the test set. Returns sample indices.
 */
export function stratifiedSplit(
  labels: Int32Array,
  testFraction: number,
  seed: number,
): { train: number[]; test: number[] } {
  const rand = rng(seed);
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => byClass.set(y, [...(byClass.get(y) ?? []), i]));
  const train: number[] = [];
  const test: number[] = [];
  for (const [, idx] of [...byClass].sort((a, b) => a[0] - b[0])) {
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    let nTest = Math.round(idx.length * testFraction);
    if (idx.length >= 2) nTest = Math.min(idx.length - 1, Math.max(1, nTest));
    test.push(...idx.slice(0, nTest));
    train.push(...idx.slice(nTest));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** Options of {@link trainRouter}. */
export interface TrainOptions {
  /** L2 penalty on the weights (default 1e-3). */
  l2?: number;
  /** L-BFGS iterations (default 300). */
  maxIter?: number;
  /** Confidence threshold stored in the router (default 0.5). */
  threshold?: number;
  /** Router layer m stored in the router. */
  layer: number;
  /**
   * [M, H] features of out-of-distribution prompts: trained as an extra "other" class (the
   * router then has an {@link OodTest}, threshold `oodThreshold`).
   */
  oodX?: Float32Array;
  /** P(other) threshold stored in the router (default 0.5). */
  oodThreshold?: number;
}

/**
 * Fit a multinomial logistic regression: x [N, H] row i = feature of sample i, y [N] class ids
 * in [0, tasks.length). Minimises mean cross-entropy + l2/2 ||W||^2 with L-BFGS.
 */
export function trainRouter(
  xTask: Float32Array,
  yTask: Int32Array,
  tasks: string[],
  opts: TrainOptions,
): Router {
  const H = xTask.length / yTask.length;
  if (!Number.isInteger(H) || yTask.length === 0) {
    throw new Error(`trainRouter: ${xTask.length} values, ${yTask.length} labels`);
  }
  const M = opts.oodX ? opts.oodX.length / H : 0;
  if (!Number.isInteger(M)) throw new Error(`trainRouter: OOD features not a multiple of ${H}`);
  // OOD prompts are class C ("other"); the standardisation uses the task samples only
  const C = tasks.length + (M > 0 ? 1 : 0);
  const N = yTask.length + M;
  const x = new Float32Array(N * H); // [N, H] task samples, then OOD samples
  x.set(xTask);
  if (M > 0) x.set(opts.oodX!, xTask.length);
  const y = new Int32Array(N).fill(tasks.length);
  y.set(yTask);
  const NT = yTask.length;
  const l2 = opts.l2 ?? 1e-3;
  // standardisation
  const mean = new Float64Array(H); // [H]
  const sd = new Float64Array(H); // [H]
  for (let i = 0; i < NT; i++) for (let h = 0; h < H; h++) mean[h] += x[i * H + h] / NT;
  for (let i = 0; i < NT; i++) {
    for (let h = 0; h < H; h++) sd[h] += (x[i * H + h] - mean[h]) ** 2 / NT;
  }
  for (let h = 0; h < H; h++) sd[h] = Math.max(1e-6, Math.sqrt(sd[h]));
  const z = new Float64Array(N * H); // [N, H] standardised
  for (let i = 0; i < N; i++) {
    for (let h = 0; h < H; h++) z[i * H + h] = (x[i * H + h] - mean[h]) / sd[h];
  }
  const P = C * H + C; // params: W [C, H] then b [C]
  const logits = new Float64Array(C);
  const f = (th: Float64Array, g: Float64Array): number => {
    g.fill(0);
    let loss = 0;
    for (let i = 0; i < N; i++) {
      let mx = -Infinity;
      for (let c = 0; c < C; c++) {
        let s = th[C * H + c];
        for (let h = 0; h < H; h++) s += th[c * H + h] * z[i * H + h];
        logits[c] = s;
        if (s > mx) mx = s;
      }
      let se = 0;
      for (let c = 0; c < C; c++) se += Math.exp(logits[c] - mx);
      loss += mx + Math.log(se) - logits[y[i]];
      for (let c = 0; c < C; c++) {
        const d = (Math.exp(logits[c] - mx) / se - (c === y[i] ? 1 : 0)) / N;
        g[C * H + c] += d;
        for (let h = 0; h < H; h++) g[c * H + h] += d * z[i * H + h];
      }
    }
    loss /= N;
    for (let k = 0; k < C * H; k++) {
      loss += 0.5 * l2 * th[k] * th[k];
      g[k] += l2 * th[k];
    }
    return loss;
  };
  const th = lbfgs(f, new Float64Array(P), opts.maxIter ?? 300);
  const T = tasks.length;
  return {
    tasks: [...tasks],
    layer: opts.layer,
    mean: Float32Array.from(mean),
    std: Float32Array.from(sd),
    weight: Float32Array.from(th.subarray(0, T * H)),
    bias: Float32Array.from(th.subarray(C * H, C * H + T)),
    threshold: opts.threshold ?? 0.5,
    ood: M > 0
      ? {
        weight: Float32Array.from(th.subarray(T * H, C * H)),
        bias: th[C * H + T],
        threshold: opts.oodThreshold ?? 0.5,
      }
      : null,
  };
}

/** Minimise f (which writes its gradient into g) with L-BFGS (history 10, Armijo backtracking). */
export function lbfgs(
  f: (x: Float64Array, g: Float64Array) => number,
  x0: Float64Array,
  maxIter: number,
  tol = 1e-7,
): Float64Array {
  const n = x0.length;
  const M = 10;
  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  let fx = f(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const dot = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * b[i];
    return s;
  };
  const xn = new Float64Array(n);
  const gn = new Float64Array(n);
  for (let it = 0; it < maxIter; it++) {
    if (Math.sqrt(dot(g, g)) < tol) break;
    // two-loop recursion: d = -H g
    const q = Float64Array.from(g);
    const alpha: number[] = [];
    for (let k = S.length - 1; k >= 0; k--) {
      const a = dot(S[k], q) / dot(Y[k], S[k]);
      alpha[k] = a;
      for (let i = 0; i < n; i++) q[i] -= a * Y[k][i];
    }
    if (S.length) {
      const gamma = dot(S[S.length - 1], Y[Y.length - 1]) / dot(Y[Y.length - 1], Y[Y.length - 1]);
      for (let i = 0; i < n; i++) q[i] *= gamma;
    }
    for (let k = 0; k < S.length; k++) {
      const b = dot(Y[k], q) / dot(Y[k], S[k]);
      for (let i = 0; i < n; i++) q[i] += S[k][i] * (alpha[k] - b);
    }
    for (let i = 0; i < n; i++) q[i] = -q[i];
    let gd = dot(g, q);
    if (gd >= 0) { // not a descent direction: restart with steepest descent
      S.length = 0;
      Y.length = 0;
      for (let i = 0; i < n; i++) q[i] = -g[i];
      gd = dot(g, q);
    }
    let step = S.length ? 1 : 1 / Math.max(1, Math.sqrt(-gd));
    let fn = Infinity;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < n; i++) xn[i] = x[i] + step * q[i];
      fn = f(xn, gn);
      if (fn <= fx + 1e-4 * step * gd) break;
      step /= 2;
    }
    if (!(fn < fx)) break;
    const s = new Float64Array(n);
    const yv = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xn[i] - x[i];
      yv[i] = gn[i] - g[i];
    }
    const done = fx - fn < 1e-12 * Math.max(1, Math.abs(fx));
    x.set(xn);
    g.set(gn);
    fx = fn;
    if (dot(s, yv) > 1e-12) {
      S.push(s);
      Y.push(yv);
      if (S.length > M) {
        S.shift();
        Y.shift();
      }
    }
    if (done) break;
  }
  return x;
}

/** What {@link evaluateRouter} measures. */
export interface RouterEvaluation {
  /** Share whose most probable task is the true one. */
  accuracy: number;
  /** Share served their own task's mask: right task and no fallback to generic. */
  routedAccuracy: number;
  /** Rows = true class, columns = most probable task. */
  confusion: number[][];
  /** [C] per true class: samples served the generic mask (low confidence or OOD). */
  servedGeneric: number[];
  /** Samples that fell back to generic (low confidence or OOD). */
  lowConfidence: number;
  /** Of those, samples the OOD test flagged. */
  flaggedOod: number;
}

/** Accuracy and confusion matrix (rows = true class, columns = predicted) on x [N, H], y [N]. */
export function evaluateRouter(r: Router, x: Float32Array, y: Int32Array): RouterEvaluation {
  const H = r.mean.length;
  const C = r.tasks.length;
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  const servedGeneric = new Array<number>(C).fill(0);
  let correct = 0;
  let routed = 0;
  let low = 0;
  let flagged = 0;
  for (let i = 0; i < y.length; i++) {
    const res = route(r, x.subarray(i * H, (i + 1) * H));
    const p = r.tasks.indexOf(res.task);
    confusion[y[i]][p]++;
    if (p === y[i]) correct++;
    if (p === y[i] && !res.useGeneric) routed++;
    if (res.useGeneric) {
      low++;
      servedGeneric[y[i]]++;
    }
    if (res.ood) flagged++;
  }
  const n = y.length;
  return {
    accuracy: n ? correct / n : NaN,
    routedAccuracy: n ? routed / n : NaN,
    confusion,
    servedGeneric,
    lowConfidence: low,
    flaggedOod: flagged,
  };
}

/** Share of features x [N, H] that {@link route} serves the generic mask (NaN when N = 0). */
export function genericShare(r: Router, x: Float32Array): number {
  const H = r.mean.length;
  const N = x.length / H;
  let g = 0;
  for (let i = 0; i < N; i++) if (route(r, x.subarray(i * H, (i + 1) * H)).useGeneric) g++;
  return N ? g / N : NaN;
}
