/**
 * From saved calibration statistics and the model's output projections to every mask of a
 * mask set (docs/design.md, Masks): SEAP task masks, the generic mask, and the Wanda-sp and
 * FLAP baselines, each at the requested shares of decoder parameters removed, plus the router
 * (docs/design.md, Router). Pure: no forward pass.
 */

import type { CalibrationStats } from "./collect_stats.ts";
import {
  buildMaskAt,
  type BuiltMask,
  type MaskParams,
  type Projections,
  renamed,
  scoreSet,
  sparsityTag,
} from "./mask_methods.ts";
import type { OodFeatures } from "./ood_data.ts";
import { chooseOodThreshold, evaluateOod, type OodReport } from "./ood_eval.ts";
import { evaluateRouter, type RouterEvaluation, stratifiedSplit, trainRouter } from "./router.ts";
import type { Router } from "../masks/router.ts";

export {
  assembleMask,
  buildMaskAt,
  type BuiltMask,
  DEFAULT_MASK_PARAMS,
  type MaskParams,
  type MaskSpec,
  type Projections,
  scoreSet,
  selectUnits,
  sparsityTag,
  type Structure,
} from "./mask_methods.ts";

/**
 * Every mask of the set, for every share in `p.sparsities` (shares of decoder-layer
 * parameters removed, ± 1 point): per task `<task>@<share>` (SEAP, the task's scores; the
 * validated mask when `p.validated` lists the task, with the paper's own mask then as
 * `<task>.raw@<share>`), `generic@<share>`, and unless `p.baselines === false`
 * `wanda-sp@<share>` and `flap@<share>`. The evaluation harness calls this with shares of its
 * choice ("curve mode"); {@link buildMaskAt} builds a single one.
 */
export function buildMasks(cal: CalibrationStats, proj: Projections[], p: MaskParams): BuiltMask[] {
  const set = scoreSet(cal, proj, p);
  const out: BuiltMask[] = [];
  for (const s of p.sparsities) {
    const tag = sparsityTag(s);
    const generic = buildMaskAt(set, { method: "seap-generic", share: s });
    for (const task of set.tasks) {
      const w = p.validated?.[tag]?.[task];
      if (w === undefined) {
        out.push(buildMaskAt(set, { method: "seap", task, share: s }));
        continue;
      }
      const raw = buildMaskAt(set, { method: "seap", task, share: s, name: `${task}.raw@${tag}` });
      const validation = { validated: true, genericWeight: w };
      const served = w >= 1
        ? renamed(generic, `${task}@${tag}`, "seap", task, validation)
        : w > 0
        ? buildMaskAt(set, { method: "seap", task, share: s, blend: w })
        : renamed(raw, `${task}@${tag}`, "seap", task);
      served.params = { ...served.params, ...validation };
      out.push(served, { ...raw, method: "seap-task-raw" });
    }
    out.push(generic);
    if (p.baselines !== false) {
      out.push(buildMaskAt(set, { method: "wanda-sp", share: s }));
      out.push(buildMaskAt(set, { method: "flap", share: s }));
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
  /** Share of held-out in-task samples the OOD threshold may flag (default 0: none). */
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
