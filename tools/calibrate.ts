/**
 * `deno task calibrate`: SEAP task masks, the generic mask, the Wanda-sp and FLAP baselines and
 * the router, from a calibration set (docs/design.md, The method). Run with --help for the options.
 */

import { parseArgs } from "node:util";
import { basename } from "node:path";
import {
  DEFAULT_MASK_PARAMS,
  type MaskParams,
  type Structure,
} from "../lib/calibrate/build_masks.ts";
import { runCalibration } from "../lib/calibrate/pipeline.ts";
import type { BackendChoice } from "../lib/backends/select_backend.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";

const HELP = `deno task calibrate [options]

Runs the dense model once over a multi-task calibration set, collects per-layer activation
statistics per task, and writes SEAP masks (one per task and share), the generic mask, the
Wanda-sp and FLAP baselines, the router, stats.safetensors, manifest.json and a report
(report.md / report.json / SVG plots) into the output folder. Every mask is named by the share
of decoder-layer parameters it removes (reverse@0.5 removes 50% ± 1 point); each task mask is
validated on held-out rows against the generic mask (the paper's own mask: <task>.raw@<share>).

Options:
  --model DIR            model folder (default: the default model, lib/default_model.ts)
  --data FILE            calibration JSONL, repeatable (default: <model>/calibration.jsonl).
                         Rows {task, text}, or the richer rows of the benchmark sets.
  --out DIR              output folder (default: masks/<model-name>/)
  --sparsity LIST        shares of decoder-layer parameters to remove, comma separated
                         (default: 0.2,0.5)
  --samples N            samples per task (default: 64)
  --router-samples N     samples per task for the router (default: 256, at least --samples);
                         those beyond --samples only run the first m layers over their prompt
                         (cheap; the OOD threshold is estimated on a quarter of them)
  --backend NAME         auto (default: hardware WebGPU, else wasm, else reference) | reference
                         | wasm | webgpu; weights stay float32
  --max-tokens N         max tokens per sample (default: 256)
  --score NAME           wifv (default) | wifn | wanda-sp (the SEAP masks' scores; ablation)
  --structure NAME       ul-ld (default) | ul-um | al-am
  --logistic-m N         leading dense layers; also the router layer (default: 2 from 32
                         layers on, else 1/16 of the layers, at least 1)
  --logistic-n N         trailing dense layers (default: as --logistic-m)
  --logistic-k X         logistic steepness (default: 1.2)
  --logistic-x0 X        logistic midpoint (default: 0.3)
  --allow-empty-layers   let UL-LD empty a layer (rho = 1) to reach a share; refused otherwise,
                         with the highest share reachable
  --validate-samples N   held-out rows per task (never in the statistics, at most a quarter
                         of the task's rows) to validate each task mask against the generic
                         mask (default: 64; 0 = serve the paper's unvalidated task masks)
  --generic-weights W    generic-mask weights, task=w,...; * = others (default: general=3,wikitext2=3,*=2)
  --bias-compensation B  on (default) | off, for the SEAP masks (FLAP always compensates)
  --no-baselines         skip the Wanda-sp and FLAP masks
  --router-threshold X   confidence below which the generic mask is used (default: 0.5)
  --router-phrasings P   all (default) | seen: phrasings the deployed router trains on (seen =
                         rows not flagged held_out_phrasing); the strict unseen-phrasing
                         evaluation is reported either way
  --router-test X        share of each task's samples held out to test the router (default: 0.25)
  --default-sparsity X   sparsity the server uses by default (default: the first of --sparsity)
  --seed N               seed for sampling and splits (default: 0)
  --from-stats FILE      reuse saved statistics (stats.safetensors) instead of running the model
  --measure-dense        also time a plain dense pass over the same tokens (cost ratio)
  --ppl-eval FILE        JSONL of held-out text: perplexity with vs without bias compensation
  --ppl-samples N        rows of --ppl-eval to use (default: 32)
  --ppl-task NAME        only rows of this task from --ppl-eval (e.g. general)
  --router-eval FILE     JSONL of other prompts (e.g. eval split) to test the router on too
  --ood-generated N      generated out-of-distribution chat prompts per template split
                         (lib/tasks/ood_prompts.ts) for the router's OOD test (default: 600;
                         0 = none)
  --ood-data FILE        benchmark JSONL (e.g. ../shared/datasets/real/*.jsonl), repeatable:
                         its questions and texts become OOD chat prompts too (half train,
                         half held out, by row)
  --ood-per-file N       prompts taken from each --ood-data file (default: 60)
  --ood-budget X         share of held-out in-task prompts the OOD threshold may send to the
                         generic mask (default: 0, none: the threshold is the largest P(other) of a
                         held-out in-task prompt, at most 0.5)
  --routing-cost N       chat requests timed for the routing-cost share (default: 24; 0 = skip)
  --quiet                no progress bar
  -h, --help             this text
`;

function num(v: string | undefined, name: string, fallback: number, int = false): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (!Number.isFinite(x) || (int && !Number.isInteger(x))) {
    throw new Error(`--${name}: expected ${int ? "an integer" : "a number"}, got "${v}"`);
  }
  return x;
}

function parseWeights(s: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of s.split(",").filter(Boolean)) {
    const [k, v] = part.split("=");
    const w = Number(v);
    if (!k || !Number.isFinite(w)) throw new Error(`--generic-weights: bad entry "${part}"`);
    out[k.trim()] = w;
  }
  return out;
}

function routerPhrasings(v: string | undefined): "all" | "seen" {
  if (v === undefined || v === "all" || v === "seen") return v ?? "all";
  throw new Error(`--router-phrasings: all or seen, got "${v}"`);
}

/** The embedded default model's folder; a missing one is an error naming --model. */
async function defaultModelDir(): Promise<string> {
  try {
    await Deno.stat(`${DEFAULT_MODEL_DIR}/config.json`);
    return DEFAULT_MODEL_DIR;
  } catch {
    throw new Error(`the default model ${DEFAULT_MODEL_DIR} has no config.json; pass --model DIR`);
  }
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      data: { type: "string", multiple: true },
      out: { type: "string" },
      sparsity: { type: "string" },
      samples: { type: "string" },
      "max-tokens": { type: "string" },
      "router-samples": { type: "string" },
      backend: { type: "string" },
      score: { type: "string" },
      structure: { type: "string" },
      "logistic-m": { type: "string" },
      "logistic-n": { type: "string" },
      "logistic-k": { type: "string" },
      "logistic-x0": { type: "string" },
      "allow-empty-layers": { type: "boolean" },
      "validate-samples": { type: "string" },
      "generic-weights": { type: "string" },
      "bias-compensation": { type: "string" },
      "no-baselines": { type: "boolean" },
      "router-threshold": { type: "string" },
      "router-test": { type: "string" },
      "router-phrasings": { type: "string" },
      "default-sparsity": { type: "string" },
      seed: { type: "string" },
      "from-stats": { type: "string" },
      "measure-dense": { type: "boolean" },
      "ppl-eval": { type: "string" },
      "ppl-samples": { type: "string" },
      "router-eval": { type: "string" },
      "ppl-task": { type: "string" },
      "ood-generated": { type: "string" },
      "ood-data": { type: "string", multiple: true },
      "ood-per-file": { type: "string" },
      "ood-budget": { type: "string" },
      "routing-cost": { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (a.help) {
    console.log(HELP);
    return 0;
  }
  const modelDir = (a.model ?? await defaultModelDir()).replace(/\/+$/, "");
  const sparsities = (a.sparsity ?? "0.2,0.5").split(",").map((s) =>
    num(s.trim(), "sparsity", NaN)
  );
  for (const s of sparsities) {
    if (!(s > 0 && s < 1)) throw new Error(`--sparsity: ${s} is not in (0, 1)`);
  }
  const score = a.score ?? "wifv";
  if (score !== "wifv" && score !== "wifn" && score !== "wanda-sp") {
    throw new Error(`--score: wifv, wifn or wanda-sp, got "${score}"`);
  }
  const structure = a.structure ?? "ul-ld";
  if (!["ul-ld", "ul-um", "al-am"].includes(structure)) {
    throw new Error(`--structure: ul-ld, ul-um or al-am, got "${structure}"`);
  }
  const bias = a["bias-compensation"] ?? "on";
  if (bias !== "on" && bias !== "off") {
    throw new Error(`--bias-compensation: on or off, got "${bias}"`);
  }
  const d = DEFAULT_MASK_PARAMS;
  const mask: MaskParams = {
    sparsities,
    score,
    structure: structure as Structure,
    logistic: {
      m: a["logistic-m"] === undefined ? undefined : num(a["logistic-m"], "logistic-m", 0, true),
      n: a["logistic-n"] === undefined ? undefined : num(a["logistic-n"], "logistic-n", 0, true),
      k: num(a["logistic-k"], "logistic-k", d.logistic.k ?? 1.2),
      x0: num(a["logistic-x0"], "logistic-x0", d.logistic.x0 ?? 0.3),
    },
    allowEmptyLayers: a["allow-empty-layers"] ?? false,
    genericWeights: a["generic-weights"] ? parseWeights(a["generic-weights"]) : d.genericWeights,
    biasCompensation: bias === "on",
    baselines: !a["no-baselines"],
  };
  await runCalibration({
    modelDir,
    calibrationFiles: a.data ?? [`${modelDir}/calibration.jsonl`],
    outDir: a.out ?? `masks/${basename(modelDir)}`,
    samplesPerTask: num(a.samples, "samples", 64, true),
    routerSamplesPerTask: num(a["router-samples"], "router-samples", 256, true),
    backend: (a.backend ?? "auto") as BackendChoice,
    maxTokens: num(a["max-tokens"], "max-tokens", 256, true),
    validateSamples: num(a["validate-samples"], "validate-samples", 64, true),
    mask,
    routerThreshold: num(a["router-threshold"], "router-threshold", 0.5),
    routerTrainPhrasings: routerPhrasings(a["router-phrasings"]),
    routerTestFraction: num(a["router-test"], "router-test", 0.25),
    seed: num(a.seed, "seed", 0, true),
    fromStats: a["from-stats"],
    measureDense: a["measure-dense"] ?? false,
    pplEval: a["ppl-eval"],
    routerEval: a["router-eval"],
    pplTask: a["ppl-task"],
    pplSamples: num(a["ppl-samples"], "ppl-samples", 32, true),
    defaultSparsity: a["default-sparsity"] === undefined
      ? undefined
      : num(a["default-sparsity"], "default-sparsity", NaN),
    oodGenerated: num(a["ood-generated"], "ood-generated", 600, true),
    oodFiles: a["ood-data"] ?? [],
    oodPerFile: num(a["ood-per-file"], "ood-per-file", 60, true),
    oodBudget: num(a["ood-budget"], "ood-budget", 0),
    routingCostPrompts: num(a["routing-cost"], "routing-cost", 24, true),
    progress: !a.quiet,
  });
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`calibrate: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
