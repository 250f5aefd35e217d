/**
 * From saved calibration statistics and the model's output projections to every mask of a
 * mask set (DESIGN §4.2-4.5): SEAP task masks, the generic mask, and the Wanda-sp and FLAP
 * baselines, plus the router (§4.6). Pure: no forward pass.
 */

import type { Mask } from "../model/mask.ts";
import { compensationBias, headChannels } from "./bias_compensation.ts";
import type { CalibrationStats } from "./collect_stats.ts";
import {
  DEFAULT_LOGISTIC,
  type LogisticParams,
  logisticSchedule,
  uniformSchedule,
} from "./layer_sparsity.ts";
import type { OodFeatures } from "./ood_data.ts";
import { chooseOodThreshold, evaluateOod, type OodReport } from "./ood_eval.ts";
import {
  evaluateRouter,
  type Router,
  type RouterEvaluation,
  stratifiedSplit,
  trainRouter,
} from "./router.ts";
import { computeScores, type LayerScores, type ScoreMethod, weightedScores } from "./scores.ts";
import { type KeptUnits, selectGlobal, selectPerLayer } from "./select_mask.ts";
import { type Dims, poolTaskStats, type TaskStats, weightColumnStats } from "./stats_types.ts";

/** Layer-sparsity structures. */
export type Structure = "ul-ld" | "ul-um" | "al-am";

/** Host copies of one layer's output projections (HF orientation). */
export interface Projections {
  wDown: Float32Array; // [H, I]
  wO: Float32Array; // [H, n_h*d_h]
}

/** Parameters of mask construction. */
export interface MaskParams {
  sparsities: number[];
  score: "wifv" | "wifn";
  structure: Structure;
  logistic: LogisticParams;
  /** Generic-mask weight per task; `*` for any task not named. */
  genericWeights: Record<string, number>;
  biasCompensation: boolean;
  /** Also build the Wanda-sp and FLAP baselines (default true). */
  baselines?: boolean;
}

/** Defaults (the paper's): WIFV, UL-LD with m = n = 2, k = 1.2, x0 = 0.3, bias on. */
export const DEFAULT_MASK_PARAMS: MaskParams = {
  sparsities: [0.2, 0.5],
  score: "wifv",
  structure: "ul-ld",
  logistic: DEFAULT_LOGISTIC,
  genericWeights: { general: 3, wikitext2: 3, "*": 2 },
  biasCompensation: true,
  baselines: true,
};

/** One built mask with what the manifest says about it. */
export interface BuiltMask {
  mask: Mask;
  method: "seap" | "seap-generic" | "wanda-sp" | "flap";
  task: string | null;
  sparsity: number;
  /** Per-layer target ratio (null for AL-AM: global). */
  schedule: number[] | null;
  params: Record<string, unknown>;
}

/** Kept units for a structure. */
export function selectUnits(
  scores: LayerScores[],
  d: Dims,
  structure: Structure,
  ratio: number,
  logistic: LogisticParams,
): { kept: KeptUnits; schedule: number[] | null } {
  if (structure === "al-am") {
    return { kept: selectGlobal(scores, d.hiddenSize, d.numHeads, ratio), schedule: null };
  }
  const rho = structure === "ul-um"
    ? uniformSchedule(d.numLayers, ratio)
    : logisticSchedule(d.numLayers, ratio, logistic).rho;
  return { kept: selectPerLayer(scores, rho), schedule: rho };
}

/** Assemble a {@link Mask}, with FLAP bias compensation from `stats` means when asked. */
export function assembleMask(
  name: string,
  kept: KeptUnits,
  d: Dims,
  proj: Projections[],
  stats: TaskStats | null,
): Mask {
  const H = d.hiddenSize;
  return {
    name,
    layers: kept.heads.map((heads, l) => {
      const neurons = kept.neurons[l];
      let biasAttn: Float32Array | null = null;
      let biasFfn: Float32Array | null = null;
      if (stats) {
        const ls = stats.layers[l];
        if (neurons.length < d.intermediateSize) {
          biasFfn = compensationBias(proj[l].wDown, H, d.intermediateSize, ls.mlpAct.mean, neurons);
        }
        if (heads.length < d.numHeads) {
          biasAttn = compensationBias(
            proj[l].wO,
            H,
            d.numHeads * d.headDim,
            ls.attnOut.mean,
            headChannels(heads, d.headDim),
          );
        }
      }
      return { neurons, heads, biasAttn, biasFfn };
    }),
  };
}

/** Format a sparsity for a mask name: 0.2 -> "0.2", 0.25 -> "0.25". */
export function sparsityTag(s: number): string {
  return String(Number(s.toFixed(4)));
}

/** Every mask of the set, for every sparsity. */
export function buildMasks(cal: CalibrationStats, proj: Projections[], p: MaskParams): BuiltMask[] {
  const d = cal.dims;
  const wcs = proj.map((w) => weightColumnStats(w.wO, w.wDown, d));
  const out: BuiltMask[] = [];
  const taskScores = cal.stats.map((ts) => computeScores(ts, wcs, d, p.score as ScoreMethod));
  const pooled = poolTaskStats("pooled", cal.stats, d);
  const gw = cal.stats.map((ts) => p.genericWeights[ts.task] ?? p.genericWeights["*"] ?? 1);
  const generic = weightedScores(taskScores, gw);
  const baseParams = {
    score: p.score,
    structure: p.structure,
    logistic: p.structure === "ul-ld" ? p.logistic : undefined,
    biasCompensation: p.biasCompensation,
  };
  const wanda = p.baselines === false ? null : computeScores(pooled, wcs, d, "wanda-sp");
  const flap = p.baselines === false ? null : computeScores(pooled, wcs, d, "wifv");
  for (const s of p.sparsities) {
    const tag = sparsityTag(s);
    cal.stats.forEach((ts, i) => {
      const { kept, schedule } = selectUnits(taskScores[i], d, p.structure, s, p.logistic);
      out.push({
        mask: assembleMask(`${ts.task}@${tag}`, kept, d, proj, p.biasCompensation ? ts : null),
        method: "seap",
        task: ts.task,
        sparsity: s,
        schedule,
        params: { ...baseParams, samples: ts.samples, tokens: ts.tokens },
      });
    });
    const g = selectUnits(generic, d, p.structure, s, p.logistic);
    out.push({
      mask: assembleMask(`generic@${tag}`, g.kept, d, proj, p.biasCompensation ? pooled : null),
      method: "seap-generic",
      task: null,
      sparsity: s,
      schedule: g.schedule,
      params: {
        ...baseParams,
        weights: Object.fromEntries(cal.stats.map((ts, i) => [ts.task, gw[i]])),
      },
    });
    if (wanda && flap) {
      const w = selectUnits(wanda, d, "ul-um", s, p.logistic);
      out.push({
        mask: assembleMask(`wanda-sp@${tag}`, w.kept, d, proj, null),
        method: "wanda-sp",
        task: null,
        sparsity: s,
        schedule: w.schedule,
        params: { score: "wanda-sp", structure: "ul-um", biasCompensation: false, pooled: true },
      });
      const f = selectUnits(flap, d, "al-am", s, p.logistic);
      out.push({
        mask: assembleMask(`flap@${tag}`, f.kept, d, proj, pooled),
        method: "flap",
        task: null,
        sparsity: s,
        schedule: null,
        params: { score: "wifv", structure: "al-am", biasCompensation: true, pooled: true },
      });
    }
  }
  return out;
}

/** Router training parameters. */
export interface RouterParams {
  threshold: number;
  /** Share of each task's samples held out for evaluation. */
  testFraction: number;
  seed: number;
  l2?: number;
  /**
   * Which samples the deployed router may train on: "all" phrasings (default), or only
   * "seen" ones (rows not flagged `held_out_phrasing`).
   */
  trainPhrasings?: "all" | "seen";
  /**
   * Out-of-distribution prompts: the "train" ones become the router's "other" class, its
   * threshold is chosen on the held-out in-task samples, the "held-out" ones test it.
   */
  ood?: OodFeatures;
  /** Share of held-out in-task samples the OOD threshold may flag (default 0.005). */
  oodBudget?: number;
}

/** Router evaluation. */
export interface RouterReport {
  tasks: string[];
  /** Phrasings the deployed router was trained on. */
  trainPhrasings: "all" | "seen";
  trainSamples: number;
  testSamples: number;
  /** Accuracy of the deployed router on its held-out samples. */
  accuracy: number;
  /** Rows = true task, columns = predicted. */
  confusion: number[][];
  /** Held-out samples below the confidence threshold (would use the generic mask). */
  lowConfidence: number;
  /** Share of held-out samples served their own task's mask (right task, no fallback). */
  routedAccuracy: number;
  /** [C] held-out samples of each task served the generic mask. */
  servedGeneric: number[];
  /** The OOD test on held-out prompts, when the router has one. */
  ood: OodReport | null;
  /**
   * Strict protocol, when the data flags held-out phrasings: a router trained only on the
   * other phrasings, tested on every sample whose phrasing it never saw.
   */
  unseenPhrasing: {
    trainSamples: number;
    samples: number;
    accuracy: number;
    routedAccuracy: number;
    confusion: number[][];
  } | null;
  /** Evaluation on a separate prompt file (--router-eval), when given. */
  extraEval?: {
    file: string;
    samples: number;
    accuracy: number;
    routedAccuracy: number;
    heldOutPhrasingSamples: number;
    heldOutPhrasingAccuracy: number | null;
    heldOutPhrasingRoutedAccuracy: number | null;
    confusion: number[][];
    servedGeneric: number[];
    lowConfidence: number;
  };
}

/**
 * Train the router on a stratified (seeded) share of each task's samples and evaluate it on
 * the rest; with held-out phrasings flagged in the data, also run the strict protocol (train
 * on the other phrasings only, test on the held-out ones). With OOD prompts, the router gets
 * an "other" class trained on their "train" split, a P(other) threshold chosen on the
 * held-out in-task samples, and an evaluation on their "held-out" split.
 */
export function buildRouter(
  cal: CalibrationStats,
  p: RouterParams,
): { router: Router; report: RouterReport } {
  const { features, labels, heldOut, tasks, layer } = cal.router;
  const H = cal.dims.hiddenSize;
  const pick = (src: Float32Array, idx: number[]) => {
    const x = new Float32Array(idx.length * H); // [n, H]
    idx.forEach((i, r) => x.set(src.subarray(i * H, (i + 1) * H), r * H));
    return x;
  };
  const pickTask = (idx: number[]) => ({
    x: pick(features, idx),
    y: Int32Array.from(idx, (i) => labels[i]),
  });
  const ood = p.ood;
  const oodIdx = (split: "train" | "held-out") =>
    ood ? [...ood.split.keys()].filter((i) => ood.split[i] === split) : [];
  const oodTrain = ood ? pick(ood.features, oodIdx("train")) : undefined;
  /** Fit on `idx`; with OOD prompts, the threshold comes from the in-task samples `tuneIdx`. */
  const fit = (idx: number[], tuneIdx: number[]) => {
    const tr = pickTask(idx);
    const r = trainRouter(tr.x, tr.y, tasks, {
      layer,
      threshold: p.threshold,
      l2: p.l2,
      oodX: oodTrain?.length ? oodTrain : undefined,
    });
    if (r.ood) r.ood.threshold = chooseOodThreshold(r, pickTask(tuneIdx).x, p.oodBudget);
    return r;
  };
  const trainPhrasings = p.trainPhrasings ?? "all";
  const pool = [...labels.keys()].filter((i) => trainPhrasings === "all" || !heldOut[i]);
  const split = stratifiedSplit(Int32Array.from(pool, (i) => labels[i]), p.testFraction, p.seed);
  const train = split.train.map((k) => pool[k]);
  const inTrain = new Set(train);
  const test = [...labels.keys()].filter((i) => !inTrain.has(i));
  const router = fit(train, test);
  const te = pickTask(test);
  const ev: RouterEvaluation = evaluateRouter(router, te.x, te.y);

  let unseenPhrasing: RouterReport["unseenPhrasing"] = null;
  const hoIdx = [...labels.keys()].filter((i) => heldOut[i]);
  if (hoIdx.length) {
    const seen = [...labels.keys()].filter((i) => !heldOut[i]);
    const s2 = stratifiedSplit(Int32Array.from(seen, (i) => labels[i]), p.testFraction, p.seed);
    const strictTrain = s2.train.map((k) => seen[k]);
    const strict = fit(strictTrain, s2.test.map((k) => seen[k]));
    const h = pickTask(hoIdx);
    const e2 = evaluateRouter(strict, h.x, h.y);
    unseenPhrasing = {
      trainSamples: strictTrain.length,
      samples: hoIdx.length,
      accuracy: e2.accuracy,
      routedAccuracy: e2.routedAccuracy,
      confusion: e2.confusion,
    };
  }
  const ho = oodIdx("held-out");
  const oodReport = ood && router.ood
    ? evaluateOod(
      router,
      te.x,
      pick(ood.features, ho),
      ho.map((i) => ood.sources[i]),
      ho.map((i) => ood.groups[i]),
      oodIdx("train").length,
      p.oodBudget,
      pickTask(train),
    )
    : null;
  return {
    router,
    report: {
      tasks,
      trainPhrasings,
      trainSamples: train.length,
      testSamples: test.length,
      accuracy: ev.accuracy,
      confusion: ev.confusion,
      lowConfidence: ev.lowConfidence,
      routedAccuracy: ev.routedAccuracy,
      servedGeneric: ev.servedGeneric,
      ood: oodReport,
      unseenPhrasing,
    },
  };
}
