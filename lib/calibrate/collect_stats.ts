/**
 * The calibration pass (docs/design.md, Statistics): one dense prefill per calibration sample, streaming
 * per-layer statistics of the o_proj input, the down_proj input and the two post-norm inputs
 * into per-task {@link TaskStats}, and the router feature of every sample's prompt. The
 * statistics are saved as safetensors so masks can be recomputed without running the model.
 */

import type { Model } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import type { CalibrationSample } from "./calibration_data.ts";
import { ProgressBar } from "./progress.ts";
import { RunningStats } from "./running_stats.ts";
import { type Dims, emptyTaskStats, type TaskStats } from "./stats_types.ts";
import { decodeTensors, encodeTensors, need, type TensorEntry } from "../masks/tensor_file.ts";

/** Router features of every calibration sample. */
export interface RouterData {
  /** Class names (task order). */
  tasks: string[];
  /** Layers run before the feature is read. */
  layer: number;
  /** [N, H] row i = mean hidden state after layer m-1 over sample i's prompt tokens */
  features: Float32Array;
  /** [N] task index of sample i */
  labels: Int32Array;
  /** [N] 1 when sample i's phrasing is held out of training */
  heldOut: Int32Array;
}

/** Everything one calibration pass produces. */
export interface CalibrationStats {
  dims: Dims;
  /** Fingerprint of the model the statistics come from. */
  fingerprint: string;
  modelName: string;
  maxTokens: number;
  stats: TaskStats[];
  router: RouterData;
  /** Wall seconds of the statistics pass (router-only prompts excluded), tokens processed. */
  seconds: number;
  /** Wall seconds spent on router-only prompts (first m layers). */
  routerSeconds: number;
  tokens: number;
}

/** Sizes from a model config. */
export function dimsOf(model: Model): Dims {
  const c = model.config;
  return {
    numLayers: c.numLayers,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numHeads: c.numHeads,
    headDim: c.headDim,
    numKvHeads: c.numKvHeads,
    vocabSize: c.vocabSize,
    attentionBias: c.attentionBias,
    qkNorm: c.qkNorm,
  };
}

/**
 * Token ids of a calibration text: encoded without special tokens (chat-rendered rows already
 * hold their BOS), BOS prepended when the model has one and the text lacks it, cut to `max`.
 */
export function encodeSample(tok: Tokenizer, text: string, max: number): Int32Array {
  const ids = tok.encode(text, { addSpecialTokens: false });
  if (tok.bosTokenId !== null && ids[0] !== tok.bosTokenId) ids.unshift(tok.bosTokenId);
  return Int32Array.from(ids.slice(0, max));
}

/** Options of {@link collectStats}. */
export interface CollectOptions {
  /** Max tokens per sample (longer samples are cut). */
  maxTokens: number;
  /** Router layer m (feature = hidden state after layer m-1). */
  routerLayer: number;
  /** Show a progress bar on stderr (default true). */
  progress?: boolean;
  /** More samples per task for the router only: their prompts run the first m layers. */
  routerOnly?: Map<string, CalibrationSample[]>;
}

/** Run the dense calibration pass over `groups` (task -> samples). */
export async function collectStats(
  model: Model,
  tok: Tokenizer,
  groups: Map<string, CalibrationSample[]>,
  opts: CollectOptions,
): Promise<CalibrationStats> {
  const d = dimsOf(model);
  const H = d.hiddenSize;
  const m = opts.routerLayer;
  if (!(Number.isInteger(m) && m >= 0 && m < d.numLayers)) {
    throw new Error(`router layer ${m} must be in [0, ${d.numLayers})`);
  }
  const tasks = [...groups.keys()];
  const total = [...groups.values()].reduce((a, g) => a + g.length, 0) +
    [...(opts.routerOnly?.values() ?? [])].reduce((a, g) => a + g.length, 0);
  const bar = new ProgressBar(total, "calibrate", opts.progress ?? true);
  const feats: Float32Array[] = [];
  const labels: number[] = [];
  const held: number[] = [];
  const all: TaskStats[] = [];
  const t0 = performance.now();
  let tokens = 0;
  let done = 0;
  let routerMs = 0;
  for (const [ti, task] of tasks.entries()) {
    const ts = emptyTaskStats(task, d);
    for (const s of groups.get(task)!) {
      const ids = encodeSample(tok, s.text, opts.maxTokens);
      const pids = encodeSample(tok, s.prompt, opts.maxTokens);
      const isPrefix = m > 0 && pids.length <= ids.length && pids.every((v, i) => v === ids[i]);
      let feat: Float32Array | null = null;
      const seq = new Sequence(model, { maxTokens: ids.length });
      try {
        await seq.prefill(ids, {
          capture: {
            onLayer(l, a) {
              const ls = ts.layers[l];
              ls.attnOut.update(a.attnOut);
              ls.mlpAct.update(a.mlpAct);
              ls.attnIn.update(a.attnIn);
              ls.mlpIn.update(a.mlpIn);
            },
            onHidden: isPrefix
              ? (l, h) => {
                if (l !== m - 1) return;
                // [T, H] -> mean over the prompt's tokens (causal: same as the prompt alone)
                feat = new Float32Array(H);
                const acc = new Float64Array(H);
                for (let t = 0; t < pids.length; t++) {
                  for (let i = 0; i < H; i++) acc[i] += h[t * H + i];
                }
                for (let i = 0; i < H; i++) feat[i] = acc[i] / pids.length;
              }
              : undefined,
          },
        });
      } finally {
        seq.free();
      }
      if (!feat) {
        const hs = new Sequence(model, { maxTokens: pids.length });
        try {
          feat = await hs.prefillHead(pids, m);
        } finally {
          hs.free();
        }
      }
      feats.push(feat);
      labels.push(ti);
      held.push(s.heldOutPhrasing ? 1 : 0);
      ts.samples++;
      ts.tokens += ids.length;
      tokens += ids.length;
      bar.tick(++done, `${task} ${tokens} tok`);
    }
    all.push(ts);
    for (const s of opts.routerOnly?.get(task) ?? []) {
      const tr = performance.now();
      const pids = encodeSample(tok, s.prompt, opts.maxTokens);
      const hs = new Sequence(model, { maxTokens: pids.length });
      try {
        feats.push(await hs.prefillHead(pids, m));
      } finally {
        hs.free();
      }
      labels.push(ti);
      held.push(s.heldOutPhrasing ? 1 : 0);
      routerMs += performance.now() - tr;
      bar.tick(++done, `${task} (router)`);
    }
  }
  const features = new Float32Array(feats.length * H); // [N, H]
  feats.forEach((f, i) => features.set(f, i * H));
  return {
    dims: d,
    fingerprint: model.fingerprint,
    modelName: model.name,
    maxTokens: opts.maxTokens,
    stats: all,
    router: {
      tasks,
      layer: m,
      features,
      labels: Int32Array.from(labels),
      heldOut: Int32Array.from(held),
    },
    seconds: (performance.now() - t0 - routerMs) / 1000,
    routerSeconds: routerMs / 1000,
    tokens,
  };
}

const STAT_KEYS = ["attnOut", "mlpAct", "attnIn", "mlpIn"] as const;

/** Serialise calibration statistics (float64, exact) to safetensors bytes. */
export function encodeStats(c: CalibrationStats): Uint8Array {
  const t: Record<string, TensorEntry> = {};
  const L = c.dims.numLayers;
  for (const ts of c.stats) {
    for (const k of STAT_KEYS) {
      const D = ts.layers[0][k].dim;
      const mean = new Float64Array(L * D); // [L, D] row l = layer l
      const m2 = new Float64Array(L * D); // [L, D]
      const count = new Float64Array(L); // [L]
      ts.layers.forEach((ls, l) => {
        mean.set(ls[k].mean, l * D);
        m2.set(ls[k].m2, l * D);
        count[l] = ls[k].count;
      });
      t[`task/${ts.task}/${k}.mean`] = { dtype: "F64", shape: [L, D], data: mean };
      t[`task/${ts.task}/${k}.m2`] = { dtype: "F64", shape: [L, D], data: m2 };
      t[`task/${ts.task}/${k}.count`] = { dtype: "F64", shape: [L], data: count };
    }
  }
  const N = c.router.labels.length;
  const H = c.dims.hiddenSize;
  t["router/features"] = { dtype: "F32", shape: [N, H], data: c.router.features };
  t["router/labels"] = { dtype: "I32", shape: [N], data: c.router.labels };
  t["router/held_out"] = { dtype: "I32", shape: [N], data: c.router.heldOut };
  return encodeTensors(t, {
    kind: "seap-calibration-stats",
    fingerprint: c.fingerprint,
    model: c.modelName,
    dims: JSON.stringify(c.dims),
    tasks: JSON.stringify(
      c.stats.map((s) => ({ task: s.task, samples: s.samples, tokens: s.tokens })),
    ),
    router_tasks: JSON.stringify(c.router.tasks),
    router_layer: String(c.router.layer),
    max_tokens: String(c.maxTokens),
    seconds: String(c.seconds),
    router_seconds: String(c.routerSeconds),
    tokens: String(c.tokens),
  });
}

/** Parse statistics written by {@link encodeStats}. */
export function decodeStats(bytes: Uint8Array, what = "stats file"): CalibrationStats {
  const { tensors, metadata } = decodeTensors(bytes, what);
  if (metadata.kind !== "seap-calibration-stats") {
    throw new Error(`${what}: not a calibration statistics file`);
  }
  const dims = JSON.parse(metadata.dims) as Dims;
  if (!(dims.numKvHeads > 0 && dims.vocabSize > 0)) {
    throw new Error(
      `${what}: statistics predate the cost measure (no numKvHeads / vocabSize in dims); ` +
        `rerun deno task calibrate without --from-stats`,
    );
  }
  const taskInfo = JSON.parse(metadata.tasks) as {
    task: string;
    samples: number;
    tokens: number;
  }[];
  const stats: TaskStats[] = taskInfo.map((ti) => {
    const ts = emptyTaskStats(ti.task, dims);
    ts.samples = ti.samples;
    ts.tokens = ti.tokens;
    for (const k of STAT_KEYS) {
      const mean = need(tensors, `task/${ti.task}/${k}.mean`, what).data as Float64Array;
      const m2 = need(tensors, `task/${ti.task}/${k}.m2`, what).data as Float64Array;
      const count = need(tensors, `task/${ti.task}/${k}.count`, what).data as Float64Array;
      const D = ts.layers[0][k].dim;
      if (mean.length !== dims.numLayers * D) throw new Error(`${what}: ${ti.task} ${k} size`);
      ts.layers.forEach((ls, l) => {
        ls[k] = RunningStats.from(
          count[l],
          mean.subarray(l * D, (l + 1) * D),
          m2.subarray(l * D, (l + 1) * D),
        );
      });
    }
    return ts;
  });
  return {
    dims,
    fingerprint: metadata.fingerprint,
    modelName: metadata.model,
    maxTokens: Number(metadata.max_tokens),
    stats,
    router: {
      tasks: JSON.parse(metadata.router_tasks),
      layer: Number(metadata.router_layer),
      features: need(tensors, "router/features", what).data as Float32Array,
      labels: need(tensors, "router/labels", what).data as Int32Array,
      heldOut: need(tensors, "router/held_out", what).data as Int32Array,
    },
    seconds: Number(metadata.seconds),
    routerSeconds: Number(metadata.router_seconds ?? 0),
    tokens: Number(metadata.tokens),
  };
}
