/**
 * Router inference (docs/design.md, Router): the trained router's data (standardisation,
 * multinomial logistic regression over the tasks, optional out-of-distribution "other" class)
 * and the decision it makes for one prompt's feature. Training lives in lib/calibrate/router.ts;
 * the server, evaluation and tools route through {@link route} here.
 */

/** A trained router. */
export interface Router {
  /** Class names, index = class id. */
  tasks: string[];
  /** Layers run before the feature is read (the feature is the hidden state after layer m-1). */
  layer: number;
  /** [H] feature mean used for standardisation */
  mean: Float32Array;
  /** [H] feature standard deviation (floored at 1e-6) */
  std: Float32Array;
  /** [C, H] row c = weights of class c, on standardised features */
  weight: Float32Array;
  /** [C] class biases */
  bias: Float32Array;
  /** Below this confidence the generic mask is used. */
  threshold: number;
  /** Out-of-distribution test; null or absent for routers calibrated without OOD prompts. */
  ood?: OodTest | null;
}

/**
 * The "other" class of the regression: trained on out-of-distribution prompts jointly with
 * the task classes. Its probability is the softmax over the C task logits and this one.
 */
export interface OodTest {
  /** [H] weights of the "other" class, on standardised features */
  weight: Float32Array;
  /** Bias of the "other" class. */
  bias: number;
  /** P(other) above this: the prompt belongs to no task (generic mask). */
  threshold: number;
}

/** Result of routing one prompt. */
export interface RouteResult {
  /** Most probable task. */
  task: string;
  /** Its probability. */
  confidence: number;
  /** [C] class probabilities, in `router.tasks` order */
  probs: Float32Array;
  /** P(other) under the out-of-distribution test, null without one. */
  oodScore: number | null;
  /** True when the OOD test says the prompt belongs to no task. */
  ood: boolean;
  /** True when confidence < threshold or the prompt is OOD: use the generic mask. */
  useGeneric: boolean;
}

/**
 * Logits of one feature [H]: [C] task logits, then the "other" logit when the router has an
 * OOD test.
 */
export function routerLogits(r: Router, feature: Float32Array): Float64Array {
  const H = r.mean.length;
  const C = r.tasks.length;
  if (feature.length !== H) {
    throw new Error(`router: feature size ${feature.length}, expected ${H}`);
  }
  const logits = new Float64Array(C + (r.ood ? 1 : 0));
  const z = new Float64Array(H); // [H] standardised feature
  for (let h = 0; h < H; h++) z[h] = (feature[h] - r.mean[h]) / r.std[h];
  for (let c = 0; c < C; c++) {
    let s = r.bias[c];
    for (let h = 0; h < H; h++) s += r.weight[c * H + h] * z[h];
    logits[c] = s;
  }
  if (r.ood) {
    let s = r.ood.bias;
    for (let h = 0; h < H; h++) s += r.ood.weight[h] * z[h];
    logits[C] = s;
  }
  return logits;
}

/** Softmax of logits. */
function softmax(logits: Float64Array): Float64Array {
  const mx = Math.max(...logits);
  let se = 0;
  for (const v of logits) se += Math.exp(v - mx);
  return logits.map((v) => Math.exp(v - mx) / se);
}

/** Task probabilities [C] for one feature [H] (softmax over the task classes only). */
export function routerProbs(r: Router, feature: Float32Array): Float32Array {
  return Float32Array.from(softmax(routerLogits(r, feature).subarray(0, r.tasks.length)));
}

/** P(other) for one feature [H] (softmax over tasks and "other"); null without an OOD test. */
export function oodScore(r: Router, feature: Float32Array): number | null {
  if (!r.ood) return null;
  const p = softmax(routerLogits(r, feature));
  return p[r.tasks.length];
}

/**
 * Route one feature [H]: most probable task, its confidence, and whether to fall back to the
 * generic mask (confidence below the threshold, or the OOD test fires).
 */
export function route(r: Router, feature: Float32Array): RouteResult {
  const logits = routerLogits(r, feature);
  const C = r.tasks.length;
  const probs = Float32Array.from(softmax(logits.subarray(0, C)));
  let best = 0;
  for (let c = 1; c < C; c++) if (probs[c] > probs[best]) best = c;
  const score = r.ood ? softmax(logits)[C] : null;
  const ood = score !== null && score > r.ood!.threshold;
  return {
    task: r.tasks[best],
    confidence: probs[best],
    probs,
    oodScore: score,
    ood,
    useGeneric: ood || probs[best] < r.threshold,
  };
}
