/**
 * Decode and prefill speed of the engine, dense versus SEAP-shaped masks (logistic UL-LD
 * layer schedule, random kept units), with the ideal speedup each mask allows (weight bytes
 * read per token, dense over masked). Run alone:
 *
 *   deno run -A bench/decode_bench.ts [--model DIR] [--backend wasm|reference|webgpu]
 *     [--weights f32,f16,q8] [--tokens 16] [--prompt 32] [--rounds 3]
 *
 * `runDecodeBench` takes any backend, so a caller picks the weight format by creating it with
 * `selectBackend(name, { weightDType })` (what the flags above do).
 */

import process from "node:process";
import { parseArgs } from "node:util";
import type { Backend } from "../lib/backends/backend.ts";
import {
  type BackendChoice,
  parseWeightDType,
  selectBackend,
} from "../lib/backends/select_backend.ts";
import { loadModel, type Model, readConfig } from "../lib/model/model.ts";
import type { ModelConfig } from "../lib/model/config.ts";
import { keepFrequencyOrder } from "../lib/model/neuron_order.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { denseFor, type PreparedMask, prepareMask } from "../lib/model/prepared_mask.ts";
import type { Mask } from "../lib/model/mask.ts";
import { logisticSchedule } from "../lib/calibrate/layer_sparsity.ts";
import { PRESETS, writeRandomModel } from "../tools/make_random_model.ts";

/** One measured row. */
export interface DecodeRow {
  model: string;
  backend: string;
  mask: string;
  decodeTokS: number;
  prefillTokS: number;
  /** Dense weight bytes per token / this mask's. */
  idealSpeedup: number;
  /** Weight bytes read per decoded token in this backend's storage format (when known). */
  weightBytes?: number;
  /**
   * Median over rounds of (dense decode time / this mask's) in the same round: the speedup with
   * each round's load shared by the pair (masked rows only).
   */
  pairedSpeedup?: number;
}

/** Bytes per weight of a storage format (q8: 36-byte blocks of 32). */
export function bytesPerWeight(dtype: string): number {
  return dtype === "f16" ? 2 : dtype === "q8" ? 36 / 32 : 4;
}

/**
 * A SEAP-shaped mask for a model without calibration data: UL-LD schedule at `target`; units
 * kept by a shared importance score plus task-specific noise, so that masks of different
 * `task`s overlap the way calibrated task masks do (each task keeps the generally important
 * units and some of its own).
 */
export function seapShapedMask(cfg: ModelConfig, target: number, task = 0): Mask {
  const m = Math.min(2, Math.floor(cfg.numLayers / 4));
  const { rho } = logisticSchedule(cfg.numLayers, target, { m, n: m, k: 1.2, x0: 0.3 });
  const rand = (seed: number) => {
    let s = seed >>> 0;
    return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  };
  const base = rand(1);
  const noise = rand(1000 + task);
  const top = (n: number, keep: number) => {
    const score = Array.from({ length: n }, () => base() + 0.6 * noise());
    const idx = Array.from({ length: n }, (_, i) => i).sort((x, y) => score[y] - score[x]);
    return Int32Array.from(idx.slice(0, keep).sort((x, y) => x - y));
  };
  return {
    name: `seap-shaped-t${task}@${target}`,
    layers: rho.map((r) => ({
      neurons: top(cfg.intermediateSize, Math.round(cfg.intermediateSize * (1 - r))),
      heads: top(cfg.numHeads, Math.max(1, Math.round(cfg.numHeads * (1 - r)))),
      biasAttn: null,
      biasFfn: null,
    })),
  };
}

/** A family of 8 task masks at each sparsity (what a calibrated mask set looks like). */
export function seapShapedFamily(cfg: ModelConfig, sparsities: number[]): Mask[] {
  return sparsities.flatMap((t) => Array.from({ length: 8 }, (_, k) => seapShapedMask(cfg, t, k)));
}

/**
 * Time every (model, mask) pair side by side: an untimed warm-up prefill and decode each, then
 * `rounds` rounds in which each pair in turn prefills the prompt in a fresh sequence and decodes
 * `tokens` tokens; each pair's best round counts, for prefill and decode alike. Interleaving
 * makes the pairs (masks, and weight formats when several models are given) share whatever else
 * the (shared, noisy) machine is doing.
 */
async function timeMasks(
  pairs: { model: Model; mask: PreparedMask }[],
  promptLen: number,
  tokens: number,
  rounds = 3,
  cpu = false,
): Promise<{ decode: number; prefill: number; decodeMs: number[] }[]> {
  const ids = Int32Array.from({ length: promptLen }, (_, i) => 2 + (i * 31) % 200);
  const out = pairs.map(() => ({ decode: 0, prefill: 0, decodeMs: [] as number[] }));
  // Milliseconds: the wall clock, or this process's CPU time (every thread), which leaves out
  // the time slices other processes take on a shared machine.
  const now = cpu
    ? () => {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1000;
    }
    : () => performance.now();
  const once = async (k: number, r: number, timed: boolean) => {
    const { model, mask } = pairs[k];
    const seq = new Sequence(model, { mask, maxTokens: promptLen + tokens + 2 });
    const t0 = now();
    await seq.prefill(ids);
    const t1 = now();
    for (let i = 0; i < (timed ? tokens : 2); i++) await seq.decode(3 + ((i + r) % 50));
    const t2 = now();
    seq.free();
    if (!timed) return;
    out[k].prefill = Math.max(out[k].prefill, promptLen / ((t1 - t0) / 1000));
    out[k].decode = Math.max(out[k].decode, tokens / ((t2 - t1) / 1000));
    out[k].decodeMs.push(t2 - t1);
  };
  for (let k = 0; k < pairs.length; k++) await once(k, 0, false);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < pairs.length; k++) await once(k, r, true);
  }
  return out;
}

/** Options of {@link runDecodeBench}. */
export interface DecodeBenchOptions {
  tokens?: number;
  promptLen?: number;
  /** Interleaved timed rounds; each pair's best counts (default 3). */
  rounds?: number;
  /** Masks to time (default: SEAP-shaped task-0 masks at 20% and 50%). */
  masks?: Mask[];
  /**
   * Lay the FFN out by keep frequency over this mask family (what the server does with its
   * mask set); identity layout when null. Default: the SEAP-shaped family.
   */
  layoutFrom?: Mask[] | null;
  /** Time with the process's CPU time instead of the wall clock (default false). */
  cpu?: boolean;
}

/** Measure dense and masked decode on one model and backend, side by side. */
export function runDecodeBench(
  modelDir: string,
  backend: Backend,
  opts: DecodeBenchOptions = {},
): Promise<DecodeRow[]> {
  return runDecodeBenchMulti(modelDir, [backend], opts);
}

/**
 * Measure dense and masked decode and prefill of one model on several backends (e.g. the WASM
 * backend with f32, f16 and q8 weights), every (backend, mask) pair interleaved in the same
 * rounds, so that ratios between weight formats are measured side by side too.
 */
export async function runDecodeBenchMulti(
  modelDir: string,
  backends: Backend[],
  opts: DecodeBenchOptions = {},
): Promise<DecodeRow[]> {
  const { config: cfg } = await readConfig(modelDir);
  const chosen = opts.masks ?? [0.2, 0.5].map((t) => seapShapedMask(cfg, t, 0));
  const family = opts.layoutFrom === undefined
    ? seapShapedFamily(cfg, [0.2, 0.5])
    : opts.layoutFrom;
  const neuronOrder = family
    ? keepFrequencyOrder(family, cfg.numLayers, cfg.intermediateSize)
    : null;
  const pairs: { model: Model; mask: PreparedMask; dense: PreparedMask }[] = [];
  for (const backend of backends) {
    const model = await loadModel(modelDir, { backend, neuronOrder });
    const dense = denseFor(model);
    for (const mask of [dense, ...chosen.map((m) => prepareMask(model, m))]) {
      pairs.push({ model, mask, dense });
    }
  }
  const times = await timeMasks(
    pairs,
    opts.promptLen ?? 32,
    opts.tokens ?? 16,
    opts.rounds ?? 3,
    opts.cpu ?? false,
  );
  const rows: DecodeRow[] = [];
  for (const [k, { model, mask: pm, dense }] of pairs.entries()) {
    const r = times[k];
    const be = model.backend;
    // The dense pair of the same model (same backend) timed in the same rounds.
    const d = pairs.findIndex((p) => p.model === model && p.mask === dense);
    const paired = pm === dense ? undefined : median(
      r.decodeMs.map((ms, round) => times[d].decodeMs[round] / ms),
    );
    rows.push({
      model: model.name,
      backend: `${be.name}-${be.weightDType}${family ? "" : " (no reorder)"}`,
      mask: pm === dense ? "dense" : pm.name,
      decodeTokS: r.decode,
      prefillTokS: r.prefill,
      idealSpeedup: dense.weightBytesPerToken / pm.weightBytesPerToken,
      weightBytes: pm.weightBytesPerToken / 4 * bytesPerWeight(be.weightDType),
      pairedSpeedup: paired,
    });
    if (pm !== dense) pm.release();
  }
  return rows;
}

/** Median of a non-empty list. */
function median(x: number[]): number {
  const s = [...x].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Markdown table: tok/s, speedup over the same backend's dense, the ideal (bytes ratio), the
 * share of the ideal reached, and decode speed relative to onnxruntime-web dense on that model.
 */
export function formatDecodeTable(rows: DecodeRow[]): string {
  const out = [
    "| model | backend | mask | decode tok/s | weight GB/s | prefill tok/s | speedup | ideal | " +
    "of ideal | vs ort dense |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    const base = rows.find((x) =>
      x.model === r.model && x.backend === r.backend && x.mask === "dense"
    );
    const ort = rows.find((x) =>
      x.model === r.model && x.backend === "onnxruntime-web" && x.mask === "dense"
    );
    const sp = base ? r.decodeTokS / base.decodeTokS : NaN;
    const masked = r.mask !== "dense" && r.backend !== "onnxruntime-web";
    out.push(
      `| ${r.model} | ${r.backend} | ${r.mask} | ${r.decodeTokS.toFixed(1)} | ` +
        `${r.weightBytes ? (r.decodeTokS * r.weightBytes / 1e9).toFixed(1) : ""} | ` +
        `${r.prefillTokS.toFixed(1)} | ${masked ? sp.toFixed(2) + "x" : ""} | ` +
        `${masked ? r.idealSpeedup.toFixed(2) + "x" : ""} | ` +
        `${masked ? (100 * sp / r.idealSpeedup).toFixed(0) + "%" : ""} | ` +
        `${ort ? (r.decodeTokS / ort.decodeTokS).toFixed(2) + "x" : ""} |`,
    );
  }
  return out.join("\n");
}

/** Path of the SmolLM2-135M-shaped random model, written on first use. */
export async function smollmShapedModel(): Promise<string> {
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/seap_smollm2_135m_shape`;
  try {
    await Deno.stat(`${dir}/model.safetensors`);
  } catch {
    console.error(`writing a SmolLM2-135M-shaped random model to ${dir} ...`);
    await writeRandomModel(dir, PRESETS["smollm2-135m"], 1);
  }
  return dir;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      backend: { type: "string", default: "wasm" },
      weights: { type: "string", default: "f32" },
      tokens: { type: "string", default: "16" },
      prompt: { type: "string", default: "32" },
      rounds: { type: "string", default: "3" },
    },
  });
  const dir = values.model ?? await smollmShapedModel();
  const backends = [];
  for (const w of values.weights!.split(",")) {
    backends.push(
      await selectBackend(values.backend as BackendChoice, { weightDType: parseWeightDType(w) }),
    );
  }
  const rows = await runDecodeBenchMulti(dir, backends, {
    tokens: Number(values.tokens),
    promptLen: Number(values.prompt),
    rounds: Number(values.rounds),
  });
  console.log(formatDecodeTable(rows));
}
