/**
 * Every pruning method's mask at a requested share of decoder parameters removed
 * (docs/design.md, Masks): SEAP task masks (UL-LD on a task's scores), the SEAP generic mask,
 * blends of the two (validated task masks), Wanda-sp (UL-UM) and FLAP (AL-AM). Each method's
 * nominal knob is found by bisection so that its selection removes the requested share
 * within ±1 point ({@link searchShare}); the name's number is that share.
 */

import { type Mask, type MaskCost, maskCost } from "../model/mask.ts";
import { compensationBias, headChannels } from "./bias_compensation.ts";
import type { CalibrationStats } from "./collect_stats.ts";
import {
  DEFAULT_LOGISTIC,
  type LogisticOptions,
  type LogisticParams,
  logisticSchedule,
  maxLogisticTarget,
  resolveLogistic,
  uniformSchedule,
} from "./layer_sparsity.ts";
import { computeScores, type LayerScores, type ScoreMethod, weightedScores } from "./scores.ts";
import { type KeptUnits, selectGlobal, selectPerLayer } from "./select_mask.ts";
import { searchShare, ShareError } from "./share_search.ts";
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
  /**
   * Shares of decoder-layer parameters removed to build masks at (the number in every mask's
   * name: `reverse@0.5` removes 50% ± 1 point, {@link maskCost}).
   */
  sparsities: number[];
  score: ScoreMethod;
  /** Structure of the SEAP masks (the baselines have their own). */
  structure: Structure;
  /** UL-LD parameters; m and n left out scale with depth ({@link resolveLogistic}). */
  logistic: LogisticOptions;
  /** Allow UL-LD to empty a layer (rho = 1) to reach a share (refused by default). */
  allowEmptyLayers?: boolean;
  /** Generic-mask weight per task; `*` for any task not named. */
  genericWeights: Record<string, number>;
  biasCompensation: boolean;
  /** Also build the Wanda-sp and FLAP baselines (default true). */
  baselines?: boolean;
  /**
   * Validated task masks: per share tag ({@link sparsityTag}), per task, the weight of the
   * generic scores chosen at calibration (0 = the task's own scores; 1 = the generic mask
   * itself). When given, `<task>@<share>` is the validated mask and `<task>.raw@<share>` the
   * paper's unvalidated task mask (method "seap-task-raw"); tasks or shares not listed get
   * their own mask only, named `<task>@<share>`.
   */
  validated?: Record<string, Record<string, number>>;
}

/** Defaults (the paper's): WIFV, UL-LD with k = 1.2, x0 = 0.3, m = n by depth, bias on. */
export const DEFAULT_MASK_PARAMS: MaskParams = {
  sparsities: [0.2, 0.5],
  score: "wifv",
  structure: "ul-ld",
  logistic: DEFAULT_LOGISTIC,
  genericWeights: { general: 3, wikitext2: 3, "*": 2 },
  biasCompensation: true,
  baselines: true,
};

/** Methods a mask can be built with. */
export type MaskMethod = "seap" | "seap-generic" | "seap-task-raw" | "wanda-sp" | "flap";

/** One built mask with what the manifest says about it. */
export interface BuiltMask {
  mask: Mask;
  method: MaskMethod;
  task: string | null;
  /** Requested share of decoder-layer parameters removed (the number in the name). */
  sparsity: number;
  /**
   * The method's knob that achieves it: the UL-LD whole-model target G, the UL-UM ratio, or
   * the AL-AM share of the cost.
   */
  nominal: number;
  /** What the mask removes: parameters, bytes and FLOPs per token ({@link maskCost}). */
  cost: MaskCost;
  /** Per-layer target ratio (null for AL-AM: global). */
  schedule: number[] | null;
  params: Record<string, unknown>;
}

/** Format a share for a mask name: 0.2 -> "0.2", 0.25 -> "0.25". */
export function sparsityTag(s: number): string {
  return String(Number(s.toFixed(4)));
}

/** Scores of every method from one set of statistics (computed once, reused per share). */
export interface ScoreSet {
  dims: Dims;
  proj: Projections[];
  /** Task order of the statistics. */
  tasks: string[];
  taskStats: TaskStats[];
  /** Per task: the task's SEAP scores (WIFV or WIFN). */
  taskScores: LayerScores[][];
  /** All tasks pooled (Chan merge): the baselines' and the generic mask's statistics. */
  pooled: TaskStats;
  /** Weighted sum of the task scores. */
  generic: LayerScores[];
  /** Weight of each task in {@link ScoreSet.generic}. */
  genericWeights: Record<string, number>;
  /** Wanda-sp scores of the pooled statistics. */
  wanda: LayerScores[];
  /** FLAP's WIFV scores of the pooled statistics. */
  flap: LayerScores[];
  params: MaskParams;
  /** The resolved UL-LD parameters. */
  logistic: LogisticParams;
}

/** Compute every method's scores from calibration statistics and output projections. */
export function scoreSet(cal: CalibrationStats, proj: Projections[], p: MaskParams): ScoreSet {
  const d = cal.dims;
  if (proj.length !== d.numLayers) {
    throw new Error(`scoreSet: ${proj.length} projections for ${d.numLayers} layers`);
  }
  const wcs = proj.map((w) => weightColumnStats(w.wO, w.wDown, d));
  const taskScores = cal.stats.map((ts) => computeScores(ts, wcs, d, p.score as ScoreMethod));
  const pooled = poolTaskStats("pooled", cal.stats, d);
  const gw = cal.stats.map((ts) => p.genericWeights[ts.task] ?? p.genericWeights["*"] ?? 1);
  return {
    dims: d,
    proj,
    tasks: cal.stats.map((s) => s.task),
    taskStats: cal.stats,
    taskScores,
    pooled,
    generic: weightedScores(taskScores, gw),
    genericWeights: Object.fromEntries(cal.stats.map((ts, i) => [ts.task, gw[i]])),
    wanda: computeScores(pooled, wcs, d, "wanda-sp"),
    flap: computeScores(pooled, wcs, d, "wifv"),
    params: p,
    logistic: resolveLogistic(d.numLayers, p.logistic),
  };
}

/**
 * (1 - w) * task + w * generic, each layer's head and neuron scores first divided by their
 * mean (so the blend does not depend on the scores' scale; per-layer selection only sees the
 * order within a layer and module).
 */
export function blendScores(
  task: LayerScores[],
  generic: LayerScores[],
  w: number,
): LayerScores[] {
  if (!(w >= 0 && w <= 1)) throw new Error(`blend weight must be in [0, 1], got ${w}`);
  const norm = (x: Float64Array) => {
    const m = x.reduce((a, b) => a + b, 0) / Math.max(1, x.length);
    return m > 0 ? 1 / m : 0;
  };
  const mix = (a: Float64Array, b: Float64Array) => {
    const na = norm(a);
    const nb = norm(b);
    return a.map((v, i) => (1 - w) * v * na + w * b[i] * nb);
  };
  return task.map((t, l) => ({
    heads: mix(t.heads, generic[l].heads),
    neurons: mix(t.neurons, generic[l].neurons),
  }));
}

/** Kept units of a structure at a knob; UL-LD's knob is the whole-model target. */
export function selectUnits(
  scores: LayerScores[],
  d: Dims,
  structure: Structure,
  knob: number,
  logistic: LogisticParams,
  allowEmptyLayers = false,
): { kept: KeptUnits; schedule: number[] | null } {
  if (structure === "al-am") {
    return { kept: selectGlobal(scores, d.hiddenSize, d.numHeads, knob), schedule: null };
  }
  const rho = structure === "ul-um"
    ? uniformSchedule(d.numLayers, knob)
    : logisticSchedule(d.numLayers, knob, logistic, { allowEmptyLayers }).rho;
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

/** The cost of kept units without computing bias vectors (placeholders where they would be). */
function keptCost(kept: KeptUnits, d: Dims, bias: boolean): MaskCost {
  const slot = new Float32Array(0);
  return maskCost({
    name: "candidate",
    layers: kept.heads.map((heads, l) => ({
      heads,
      neurons: kept.neurons[l],
      biasAttn: bias && heads.length < d.numHeads ? slot : null,
      biasFfn: bias && kept.neurons[l].length < d.intermediateSize ? slot : null,
    })),
  }, d);
}

/**
 * Kept units of `scores` under `structure` whose selection removes `share` of decoder
 * parameters (± 1 point), with the knob found by bisection.
 */
export function selectAtShare(
  what: string,
  scores: LayerScores[],
  d: Dims,
  structure: Structure,
  share: number,
  logistic: LogisticParams,
  opts: { bias: boolean; allowEmptyLayers?: boolean },
): { kept: KeptUnits; schedule: number[] | null; knob: number } {
  const below1 = 1 - 1e-9;
  const hi = structure === "ul-ld" && !opts.allowEmptyLayers
    ? maxLogisticTarget(d.numLayers, logistic) * below1
    : below1;
  try {
    const r = searchShare(what, share, hi, (knob) => {
      const sel = selectUnits(scores, d, structure, knob, logistic, opts.allowEmptyLayers);
      return { share: keptCost(sel.kept, d, opts.bias).params, value: sel };
    });
    return { ...r.value, knob: r.knob };
  } catch (e) {
    if (e instanceof ShareError && structure === "ul-ld" && !opts.allowEmptyLayers) {
      throw new ShareError(
        `${e.message} without emptying a layer (UL-LD with m=${logistic.m}, n=${logistic.n}, ` +
          `k=${logistic.k}, x0=${logistic.x0}); allow emptied layers explicitly ` +
          `(--allow-empty-layers) or protect fewer layers`,
      );
    }
    throw e;
  }
}

/** What to build with {@link buildMaskAt}. */
export interface MaskSpec {
  /** "seap" (a task's scores), "seap-generic", "wanda-sp" or "flap". */
  method: "seap" | "seap-generic" | "wanda-sp" | "flap";
  /** The task, for "seap". */
  task?: string | null;
  /** Share of decoder-layer parameters to remove. */
  share: number;
  /** For "seap": weight of the generic scores blended into the task's (default 0). */
  blend?: number;
  /** Mask name (default `<task or method>@<share>`). */
  name?: string;
}

/**
 * Build the mask of method X (for task T) that removes share S of decoder parameters:
 *
 * - "seap": the task's scores (blended with the generic scores at weight `blend`), the SEAP
 *   structure of the set's parameters (UL-LD by default), bias compensation from the task's
 *   statistics when the parameters ask for it;
 * - "seap-generic": the generic scores, the same structure, compensation from the pooled
 *   statistics;
 * - "wanda-sp": Wanda-sp scores of the pooled statistics, UL-UM, no compensation;
 * - "flap": WIFV of the pooled statistics, AL-AM, compensation.
 */
export function buildMaskAt(set: ScoreSet, spec: MaskSpec): BuiltMask {
  const d = set.dims;
  const p = set.params;
  const tag = sparsityTag(spec.share);
  const allowEmptyLayers = p.allowEmptyLayers ?? false;
  let scores: LayerScores[];
  let structure: Structure;
  let stats: TaskStats | null;
  let params: Record<string, unknown>;
  const seapParams = {
    score: p.score,
    structure: p.structure,
    logistic: p.structure === "ul-ld" ? set.logistic : undefined,
    allowEmptyLayers: p.structure === "ul-ld" ? allowEmptyLayers : undefined,
    biasCompensation: p.biasCompensation,
  };
  let task: string | null = null;
  if (spec.method === "seap") {
    task = spec.task ?? null;
    const i = task === null ? -1 : set.tasks.indexOf(task);
    if (i < 0) {
      throw new Error(`no statistics for task "${task}"; tasks: ${set.tasks.join(", ")}`);
    }
    const w = spec.blend ?? 0;
    scores = w > 0 ? blendScores(set.taskScores[i], set.generic, w) : set.taskScores[i];
    structure = p.structure;
    stats = p.biasCompensation ? set.taskStats[i] : null;
    params = {
      ...seapParams,
      samples: set.taskStats[i].samples,
      tokens: set.taskStats[i].tokens,
      ...(w > 0 ? { blend: w } : {}),
    };
  } else if (spec.method === "seap-generic") {
    scores = set.generic;
    structure = p.structure;
    stats = p.biasCompensation ? set.pooled : null;
    params = { ...seapParams, weights: set.genericWeights };
  } else if (spec.method === "wanda-sp") {
    scores = set.wanda;
    structure = "ul-um";
    stats = null;
    params = { score: "wanda-sp", structure, biasCompensation: false, pooled: true };
  } else if (spec.method === "flap") {
    scores = set.flap;
    structure = "al-am";
    stats = set.pooled;
    params = { score: "wifv", structure, biasCompensation: true, pooled: true };
  } else {
    throw new Error(`unknown mask method "${(spec as { method: string }).method}"`);
  }
  const name = spec.name ??
    `${task ?? (spec.method === "seap-generic" ? "generic" : spec.method)}@${tag}`;
  const sel = selectAtShare(name, scores, d, structure, spec.share, set.logistic, {
    bias: stats !== null,
    allowEmptyLayers,
  });
  const mask = assembleMask(name, sel.kept, d, set.proj, stats);
  return {
    mask,
    method: spec.method,
    task,
    sparsity: spec.share,
    nominal: sel.knob,
    cost: maskCost(mask, d),
    schedule: sel.schedule,
    params: { ...params, nominal: sel.knob },
  };
}

/** The same built mask under another name and method (e.g. a task's generic fallback). */
export function renamed(
  b: BuiltMask,
  name: string,
  method: MaskMethod,
  task: string | null,
  extra: Record<string, unknown> = {},
): BuiltMask {
  return {
    ...b,
    mask: { ...b.mask, name },
    method,
    task,
    params: { ...b.params, ...extra },
  };
}
