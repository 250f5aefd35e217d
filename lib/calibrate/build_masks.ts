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
import { evaluateRouter, type Router, stratifiedSplit, trainRouter } from "./router.ts";

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
  /**
   * Strict protocol, when the data flags held-out phrasings: a router trained only on the
   * other phrasings, tested on every sample whose phrasing it never saw.
   */
  unseenPhrasing: {
    trainSamples: number;
    samples: number;
    accuracy: number;
    confusion: number[][];
  } | null;
  /** Evaluation on a separate prompt file (--router-eval), when given. */
  extraEval?: {
    file: string;
    samples: number;
    accuracy: number;
    heldOutPhrasingSamples: number;
    heldOutPhrasingAccuracy: number | null;
    confusion: number[][];
    lowConfidence: number;
  };
}

/**
 * Train the router on a stratified (seeded) share of each task's samples and evaluate it on
 * the rest; with held-out phrasings flagged in the data, also run the strict protocol (train
 * on the other phrasings only, test on the held-out ones).
 */
export function buildRouter(
  cal: CalibrationStats,
  p: RouterParams,
): { router: Router; report: RouterReport } {
  const { features, labels, heldOut, tasks, layer } = cal.router;
  const H = cal.dims.hiddenSize;
  const pick = (idx: number[]) => {
    const x = new Float32Array(idx.length * H); // [n, H]
    idx.forEach((i, r) => x.set(features.subarray(i * H, (i + 1) * H), r * H));
    return { x, y: Int32Array.from(idx, (i) => labels[i]) };
  };
  const fit = (idx: number[]) => {
    const tr = pick(idx);
    return trainRouter(tr.x, tr.y, tasks, { layer, threshold: p.threshold, l2: p.l2 });
  };
  const trainPhrasings = p.trainPhrasings ?? "all";
  const pool = [...labels.keys()].filter((i) => trainPhrasings === "all" || !heldOut[i]);
  const split = stratifiedSplit(Int32Array.from(pool, (i) => labels[i]), p.testFraction, p.seed);
  const train = split.train.map((k) => pool[k]);
  const inTrain = new Set(train);
  const test = [...labels.keys()].filter((i) => !inTrain.has(i));
  const router = fit(train);
  const te = pick(test);
  const ev = evaluateRouter(router, te.x, te.y);

  let unseenPhrasing: RouterReport["unseenPhrasing"] = null;
  const hoIdx = [...labels.keys()].filter((i) => heldOut[i]);
  if (hoIdx.length) {
    const seen = [...labels.keys()].filter((i) => !heldOut[i]);
    const s2 = stratifiedSplit(Int32Array.from(seen, (i) => labels[i]), p.testFraction, p.seed);
    const strictTrain = s2.train.map((k) => seen[k]);
    const strict = fit(strictTrain);
    const h = pick(hoIdx);
    const e2 = evaluateRouter(strict, h.x, h.y);
    unseenPhrasing = {
      trainSamples: strictTrain.length,
      samples: hoIdx.length,
      accuracy: e2.accuracy,
      confusion: e2.confusion,
    };
  }
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
      unseenPhrasing,
    },
  };
}
