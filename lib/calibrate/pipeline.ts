/**
 * The whole `deno task calibrate` pipeline: load model and data, run (or reload) the dense
 * statistics pass, build every mask and the router, write them with a manifest bound to the
 * model, and write the report.
 */

import { type BackendChoice, selectBackend } from "../backends/select_backend.ts";
import { loadModel, type Model, readProjections } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import { Tokenizer } from "../text/tokenizer.ts";
import { buildMasks, buildRouter, type MaskParams, type RouterReport } from "./build_masks.ts";
import {
  type CalibrationSample,
  loadCalibrationFiles,
  samplesByTask,
  splitHeldOut,
} from "./calibration_data.ts";
import {
  type CalibrationStats,
  collectStats,
  decodeStats,
  encodeSample,
  encodeStats,
} from "./collect_stats.ts";
import {
  encodeMask,
  encodeRouter,
  type Manifest,
  MANIFEST_FORMAT,
  type ManifestMask,
  modelBlock,
  writeListedFile,
  writeManifest,
} from "../masks/mask_io.ts";
import { resolveLogistic } from "./layer_sparsity.ts";
import { scoreSet, sparsityTag } from "./mask_methods.ts";
import { perplexity, type ScoredSequence, withoutBias } from "./perplexity.ts";
import { generatedOod, loadBenchmarkOod, type OodFeatures, oodFeatures } from "./ood_data.ts";
import { evaluateRouter } from "./router.ts";
import { measureRoutingCost, type RoutingCost } from "./routing_cost.ts";
import { ProgressBar } from "./progress.ts";
import { formatDuration } from "./progress.ts";
import { writeReport } from "./report.ts";
import {
  heldOutSequences,
  type TaskValidation,
  validatedWeights,
  validateTaskMasks,
} from "./validate_masks.ts";

/** Everything the pipeline needs. */
export interface CalibrateOptions {
  modelDir: string;
  calibrationFiles: string[];
  outDir: string;
  samplesPerTask: number;
  /**
   * Router samples per task (>= samplesPerTask); those beyond the statistics samples only run
   * the protected leading layers over their prompt (default: samplesPerTask).
   */
  routerSamplesPerTask?: number;
  /** Phrasings the deployed router trains on (default "all"). */
  routerTrainPhrasings?: "all" | "seen";
  /** Compute backend (default "reference"); weights stay float32. */
  backend?: BackendChoice;
  maxTokens: number;
  mask: MaskParams;
  /**
   * Held-out samples per task for validating the task masks (rows never used for the
   * statistics, at most a quarter of a task's rows; default 64; 0 = no validation: every
   * `<task>@<share>` is then the paper's unvalidated task mask).
   */
  validateSamples?: number;
  routerThreshold: number;
  routerTestFraction: number;
  seed: number;
  /** Reuse statistics from this file instead of running the model. */
  fromStats?: string;
  /** Also time one plain dense prefill over the same tokens (cost comparison). */
  measureDense?: boolean;
  /** JSONL with held-out text for the bias-compensation perplexity comparison. */
  pplEval?: string;
  pplSamples?: number;
  /** Only rows of this task from --ppl-eval (e.g. "general" for plain text). */
  pplTask?: string;
  /** JSONL of other prompts (e.g. an eval split) to test the router on as well. */
  routerEval?: string;
  /** Sparsity the server uses by default (manifest params.defaultSparsity). */
  defaultSparsity?: number;
  /**
   * Generated out-of-distribution chat prompts per template split (lib/tasks/ood_prompts.ts)
   * for the router's OOD test (default 600; 0: none, and no OOD test unless `oodFiles`).
   */
  oodGenerated?: number;
  /** Benchmark JSONL files whose questions and texts become OOD prompts too. */
  oodFiles?: string[];
  /** Share of held-out in-task prompts the OOD threshold may flag (default 0: none). */
  oodBudget?: number;
  /** Prompts taken from each of `oodFiles` (default 60). */
  oodPerFile?: number;
  /** Requests timed for the routing-cost measurement (default 24; 0: skip). */
  routingCostPrompts?: number;
  progress?: boolean;
  /** Log lines go here (default console.error). */
  log?: (s: string) => void;
}

/** What a run produced. */
export interface CalibrateResult {
  outDir: string;
  model: Model;
  stats: CalibrationStats;
  masks: ManifestMask[];
  router: RouterReport;
  /** Held-out comparison of each task's mask with the generic mask (empty when skipped). */
  validation: TaskValidation[];
  report: Record<string, unknown>;
}

/** Peak resident memory sampler. */
function memorySampler() {
  let peak = Deno.memoryUsage().rss;
  const id = setInterval(() => {
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }, 50);
  return {
    stop() {
      clearInterval(id);
      peak = Math.max(peak, Deno.memoryUsage().rss);
      return peak;
    },
  };
}

/** Run the pipeline; see {@link CalibrateOptions}. */
export async function runCalibration(o: CalibrateOptions): Promise<CalibrateResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  const mem = memorySampler();
  const t0 = performance.now();
  const backend = await selectBackend(o.backend ?? "reference", { weightDType: "f32", log });
  const model = await loadModel(o.modelDir, { backend });
  const tok = await Tokenizer.load(o.modelDir);
  const tLoad = (performance.now() - t0) / 1000;
  const H = model.config.hiddenSize;
  log(
    `model ${model.name}: L=${model.config.numLayers} H=${H} I=${model.config.intermediateSize} ` +
      `heads=${model.config.numHeads} fingerprint ${model.fingerprint.slice(0, 12)}…`,
  );
  // The router's feature is read after the m protected leading layers of the schedule.
  const logistic = resolveLogistic(model.config.numLayers, o.mask.logistic);
  const routerLayer = logistic.m;
  const validateSamples = o.validateSamples ?? 64;
  let heldOutRows: Map<string, CalibrationSample[]> | null = null;

  let stats: CalibrationStats;
  let statsBytes: Uint8Array;
  let groups: Map<string, { text: string }[]> | null = null;
  if (o.fromStats) {
    statsBytes = await Deno.readFile(o.fromStats);
    stats = decodeStats(statsBytes, o.fromStats);
    if (stats.fingerprint !== model.fingerprint) {
      throw new Error(
        `${o.fromStats}: statistics are for model "${stats.modelName}" (fingerprint ${
          stats.fingerprint.slice(0, 12)
        }…), not ${model.name} (${model.fingerprint.slice(0, 12)}…)`,
      );
    }
    if (stats.router.layer !== routerLayer) {
      throw new Error(
        `${o.fromStats}: router features were taken after layer ${stats.router.layer}, --logistic-m is ${routerLayer}`,
      );
    }
    log(`statistics reused from ${o.fromStats} (${stats.tokens} tokens); model not run`);
    if (validateSamples > 0 && o.calibrationFiles.length > 0) {
      const rows = await loadCalibrationFiles(o.calibrationFiles);
      heldOutRows = splitHeldOut(rows, validateSamples, o.seed).heldOut;
    }
  } else {
    const rows = await loadCalibrationFiles(o.calibrationFiles);
    const nRouter = Math.max(o.samplesPerTask, o.routerSamplesPerTask ?? 0);
    let all: Map<string, CalibrationSample[]>;
    if (validateSamples > 0) {
      const split = splitHeldOut(rows, validateSamples, o.seed);
      heldOutRows = split.heldOut;
      all = new Map([...split.rest].map(([t, s]) => [t, s.slice(0, nRouter)]));
    } else {
      all = samplesByTask(rows, nRouter, o.seed);
    }
    const g = new Map([...all].map(([t, s]) => [t, s.slice(0, o.samplesPerTask)]));
    const extra = new Map([...all].map(([t, s]) => [t, s.slice(o.samplesPerTask)]));
    groups = g;
    log(
      `calibration: ${rows.length} rows, ${g.size} tasks, up to ${o.samplesPerTask} samples per task, ` +
        `max ${o.maxTokens} tokens`,
    );
    stats = await collectStats(model, tok, g, {
      maxTokens: o.maxTokens,
      routerLayer,
      progress: o.progress,
      routerOnly: extra,
    });
    statsBytes = encodeStats(stats);
    log(
      `dense statistics pass: ${stats.tokens} tokens in ${formatDuration(stats.seconds)}; ` +
        `router-only prompts: ${formatDuration(stats.routerSeconds)}`,
    );
  }

  let denseSeconds: number | null = null;
  if (o.measureDense && groups) {
    const t = performance.now();
    for (const samples of groups.values()) {
      for (const s of samples) {
        const ids = encodeSample(tok, s.text, o.maxTokens);
        const seq = new Sequence(model, { maxTokens: ids.length });
        await seq.prefill(ids);
        seq.free();
      }
    }
    denseSeconds = (performance.now() - t) / 1000;
    log(`plain dense pass over the same tokens: ${formatDuration(denseSeconds)}`);
  }

  // Out-of-distribution prompts: the protected layers over each prompt (cheap; also with
  // --from-stats, so older statistics files still get an OOD test).
  const oodSamples = [
    ...generatedOod(o.oodGenerated ?? 600, o.seed),
    ...(o.oodFiles?.length ? await loadBenchmarkOod(o.oodFiles, o.oodPerFile ?? 60, o.seed) : []),
  ];
  let ood: OodFeatures | undefined;
  if (oodSamples.length) {
    const tOod = performance.now();
    const bar = new ProgressBar(oodSamples.length, "ood prompts", o.progress ?? true);
    ood = await oodFeatures(model, tok, oodSamples, routerLayer, o.maxTokens, (n) => bar.tick(n));
    log(
      `out-of-distribution prompts: ${oodSamples.length} (${
        ood.split.filter((s) => s === "train").length
      } train) in ${formatDuration((performance.now() - tOod) / 1000)}`,
    );
  }

  const proj = await readProjections(o.modelDir, model.config);
  let validation: TaskValidation[] = [];
  let validationSeconds = 0;
  if (heldOutRows) {
    const t = performance.now();
    const seqs = new Map<string, ScoredSequence[]>(
      [...heldOutRows].map(([task, s]) => [task, heldOutSequences(tok, s, o.maxTokens)]),
    );
    validation = await validateTaskMasks(
      model,
      scoreSet(stats, proj, o.mask),
      seqs,
      o.mask.sparsities,
      { progress: o.progress },
    );
    validationSeconds = (performance.now() - t) / 1000;
    const lost = validation.filter((v) => v.choice !== "task");
    log(
      `validation: ${validation.length} task masks checked on held-out answers in ` +
        `${formatDuration(validationSeconds)}; ${lost.length} lost to the generic mask and were ` +
        `repaired (${
          lost.map((v) => `${v.task}@${v.share} -> ${v.choice} ${v.genericWeight}`).join(", ") ||
          "none"
        })`,
    );
  } else if (validateSamples > 0) {
    log("validation skipped: --from-stats without calibration files to hold out rows from");
  }

  const tBuild = performance.now();
  const built = buildMasks(stats, proj, {
    ...o.mask,
    validated: validation.length ? validatedWeights(validation) : undefined,
  });
  const { router, report: routerReport } = buildRouter(stats, {
    threshold: o.routerThreshold,
    testFraction: o.routerTestFraction,
    seed: o.seed,
    trainPhrasings: o.routerTrainPhrasings,
    ood,
    oodBudget: o.oodBudget,
  });
  const buildSeconds = (performance.now() - tBuild) / 1000;
  const up = routerReport.unseenPhrasing;
  log(
    `masks: ${built.length} built in ${formatDuration(buildSeconds)}; router (trained on ` +
      `${routerReport.trainPhrasings} phrasings) held-out accuracy ` +
      `${(routerReport.accuracy * 100).toFixed(1)}% of ${routerReport.testSamples}` +
      (up
        ? `; strict protocol (phrasings never trained on): ${
          (up.accuracy * 100).toFixed(1)
        }% of ${up.samples}`
        : ""),
  );
  const oo = routerReport.ood;
  if (oo) {
    log(
      `router OOD test (${oo.method}, P(other) > ${oo.threshold.toFixed(4)}): ` +
        `${(oo.heldOutGeneric * 100).toFixed(1)}% of ${oo.heldOutSamples} held-out ` +
        `out-of-distribution prompts served the generic mask`,
    );
  }

  if (o.routerEval) {
    const rows = (await loadCalibrationFiles([o.routerEval])).filter((r) =>
      router.tasks.includes(r.task)
    );
    const g = samplesByTask(rows, Number.MAX_SAFE_INTEGER, o.seed + 2);
    const samples = [...g.values()].flat();
    const x = new Float32Array(samples.length * H); // [N, H]
    for (const [i, s] of samples.entries()) {
      const seq = new Sequence(model, { maxTokens: o.maxTokens });
      x.set(await seq.prefillHead(encodeSample(tok, s.prompt, o.maxTokens), router.layer), i * H);
      seq.free();
    }
    const y = Int32Array.from(samples, (s) => router.tasks.indexOf(s.task));
    const ev = evaluateRouter(router, x, y);
    const hoIdx = [...samples.keys()].filter((i) => samples[i].heldOutPhrasing);
    const hx = new Float32Array(hoIdx.length * H);
    hoIdx.forEach((i, r) => hx.set(x.subarray(i * H, (i + 1) * H), r * H));
    const hoEv = hoIdx.length
      ? evaluateRouter(router, hx, Int32Array.from(hoIdx, (i) => y[i]))
      : null;
    routerReport.extraEval = {
      file: o.routerEval,
      samples: samples.length,
      accuracy: ev.accuracy,
      routedAccuracy: ev.routedAccuracy,
      heldOutPhrasingSamples: hoIdx.length,
      heldOutPhrasingAccuracy: hoEv?.accuracy ?? null,
      heldOutPhrasingRoutedAccuracy: hoEv?.routedAccuracy ?? null,
      confusion: ev.confusion,
      servedGeneric: ev.servedGeneric,
      lowConfidence: ev.lowConfidence,
    };
    log(
      `router on ${o.routerEval}: ${(ev.accuracy * 100).toFixed(1)}% of ${samples.length} ` +
        `(served their task's mask: ${(ev.routedAccuracy * 100).toFixed(1)}%)` +
        (hoEv === null
          ? ""
          : `, phrasings held out of model training ${(hoEv.accuracy * 100).toFixed(1)}% ` +
            `(served: ${(hoEv.routedAccuracy * 100).toFixed(1)}%) of ${hoIdx.length}`),
    );
  }

  // write
  await Deno.mkdir(o.outDir, { recursive: true });
  let oldFiles: string[] = [];
  try {
    const old = JSON.parse(await Deno.readTextFile(`${o.outDir}/manifest.json`)) as Manifest;
    oldFiles = [...old.masks.map((m) => m.file), old.router?.file, old.stats?.file].filter(
      (f): f is string => typeof f === "string" && !f.includes("/"),
    );
  } catch { /* no previous manifest */ }
  const fp = model.fingerprint;
  const entries: (ManifestMask & { built: typeof built[number] })[] = [];
  for (const b of built) {
    const achieved = b.cost.params;
    const cost = {
      params: b.cost.params,
      bytesPerToken: b.cost.bytesPerToken,
      flopsPerToken: b.cost.flopsPerToken,
      context: b.cost.context,
    };
    const v = b.method === "seap" && b.task
      ? validation.find((x) =>
        x.task === b.task && sparsityTag(x.share) === sparsityTag(b.sparsity)
      )
      : undefined;
    const vEntry = v
      ? {
        heldOutSamples: v.samples,
        heldOutTokens: v.tokens,
        metric: "held-out answers reproduced by greedy choice (accuracy, correct), then mean " +
          "NLL per answer token (nats)",
        own: v.own,
        generic: v.generic,
        blends: v.blends,
        choice: v.choice,
        genericWeight: v.genericWeight,
        raw: `${b.task}.raw@${sparsityTag(b.sparsity)}`,
      }
      : undefined;
    const meta = {
      fingerprint: fp,
      model: model.name,
      method: b.method,
      task: b.task ?? "",
      sparsity: b.sparsity,
      achieved,
      cost,
      nominal: b.nominal,
      schedule: b.schedule,
      params: b.params,
    };
    const f = await writeListedFile(
      o.outDir,
      `${b.mask.name}.safetensors`,
      encodeMask(b.mask, meta),
    );
    entries.push({
      ...f,
      name: b.mask.name,
      method: b.method,
      task: b.task,
      sparsity: b.sparsity,
      achieved,
      cost,
      nominal: b.nominal,
      ...(vEntry ? { validation: vEntry } : {}),
      params: b.params,
      built: b,
    });
  }
  let routing: RoutingCost | null = null;
  const nCost = o.routingCostPrompts ?? 24;
  if (nCost > 0) {
    // typical chat requests: the held-out generated OOD prompts, else the calibration prompts
    const prompts = oodSamples.filter((s) => s.split === "held-out" && !s.source.includes(":"))
      .map((s) => s.context).slice(0, nCost);
    routing = await measureRoutingCost(model, tok, router, prompts, { maxTokens: o.maxTokens });
    log(
      `routing cost: router ${(routing.routerShare * 100).toFixed(3)}% of request time ` +
        `(${routing.prompts} requests of ${routing.newTokens} tokens); with the head pass ` +
        `${(routing.headAndRouterShare * 100).toFixed(1)}%`,
    );
  }
  const rf = await writeListedFile(
    o.outDir,
    "router.safetensors",
    encodeRouter(router, { fingerprint: fp }),
  );
  const sf = await writeListedFile(o.outDir, "stats.safetensors", statsBytes);
  const params = {
    score: o.mask.score,
    structure: o.mask.structure,
    logistic,
    allowEmptyLayers: o.mask.allowEmptyLayers ?? false,
    sparsities: o.mask.sparsities,
    shareMeaning: "share of decoder-layer parameters removed (lib/model/mask.ts maskCost)",
    validateSamples,
    genericWeights: o.mask.genericWeights,
    biasCompensation: o.mask.biasCompensation,
    routerThreshold: o.routerThreshold,
    routerTestFraction: o.routerTestFraction,
    routerTrainPhrasings: o.routerTrainPhrasings ?? "all",
    samplesPerTask: o.samplesPerTask,
    maxTokens: o.maxTokens,
    seed: o.seed,
    calibrationFiles: o.calibrationFiles,
    defaultSparsity: o.defaultSparsity ?? o.mask.sparsities[0],
    oodGenerated: o.oodGenerated ?? 600,
    oodFiles: o.oodFiles ?? [],
    oodPerFile: o.oodFiles?.length ? o.oodPerFile ?? 60 : null,
    oodBudget: o.oodBudget ?? 0,
  };
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    model: modelBlock(model),
    created: new Date().toISOString(),
    masks: entries.map(({ built: _b, ...e }) => e),
    router: {
      ...rf,
      tasks: router.tasks,
      layer: router.layer,
      threshold: router.threshold,
      ...(router.ood && routerReport.ood
        ? {
          ood: {
            method: routerReport.ood.method,
            threshold: router.ood.threshold,
            thresholdRule: routerReport.ood.budget === 0
              ? "largest P(other) over the held-out in-task samples, in [0.01, 0.5]"
              : `(1 - ${routerReport.ood.budget}) quantile of P(other) over the held-out ` +
                "in-task samples, in [0.01, 0.5]",
            trainPrompts: routerReport.ood.trainSamples,
            heldOutPrompts: routerReport.ood.heldOutSamples,
            heldOutGeneric: routerReport.ood.heldOutGeneric,
            generatedPerSplit: o.oodGenerated ?? 600,
            files: o.oodFiles ?? [],
          },
        }
        : {}),
    },
    stats: sf,
    params,
  };
  await writeManifest(o.outDir, manifest);
  const keep = new Set([...manifest.masks.map((m) => m.file), rf.file, sf.file]);
  for (const f of oldFiles) {
    if (!keep.has(f)) await Deno.remove(`${o.outDir}/${f}`).catch(() => {});
  }

  // bias compensation: held-out perplexity with and without
  const ppl: Record<string, unknown>[] = [];
  if (o.pplEval) {
    const rows = (await loadCalibrationFiles([o.pplEval])).filter((r) =>
      !o.pplTask || r.task === o.pplTask
    );
    if (rows.length === 0) throw new Error(`${o.pplEval}: no rows of task "${o.pplTask}"`);
    const want = o.pplSamples ?? 32;
    const groups = [...samplesByTask(rows, want, o.seed + 1).values()];
    const texts: { text: string }[] = []; // round-robin over tasks
    for (let i = 0; texts.length < want && groups.some((g) => i < g.length); i++) {
      for (const g of groups) if (i < g.length && texts.length < want) texts.push(g[i]);
    }
    const seqs = texts.map((s) => encodeSample(tok, s.text, o.maxTokens));
    const dense = await perplexity(model, seqs, null);
    ppl.push({ mask: "dense", withBias: dense, withoutBias: dense, samples: seqs.length });
    for (const e of entries) {
      if (!(e.method === "seap-generic" || e.method === "flap")) continue;
      const m = e.built.mask;
      const hasBias = m.layers.some((l) => l.biasAttn || l.biasFfn);
      if (!hasBias) continue;
      ppl.push({
        mask: m.name,
        withBias: await perplexity(model, seqs, m),
        withoutBias: await perplexity(model, seqs, withoutBias(m)),
        samples: seqs.length,
      });
    }
    for (const p of ppl) {
      log(
        `ppl ${p.mask}: with bias ${Number(p.withBias).toFixed(4)}, without ${
          Number(p.withoutBias).toFixed(4)
        }`,
      );
    }
  }

  const peak = mem.stop();
  const total = (performance.now() - t0) / 1000;
  const timing: Record<string, unknown> = {
    loadSeconds: tLoad,
    statsPassSeconds: o.fromStats ? 0 : stats.seconds,
    statsTokens: stats.tokens,
    routerOnlyPromptSeconds: o.fromStats ? 0 : stats.routerSeconds,
    routerSamples: stats.router.labels.length,
    denseOnlySeconds: denseSeconds,
    statsVsDense: denseSeconds ? stats.seconds / denseSeconds : null,
    /** Stats pass + building every mask and the router, over one plain dense pass. */
    calibrationVsDense: denseSeconds ? (stats.seconds + buildSeconds) / denseSeconds : null,
    buildSeconds,
    validationSeconds,
    totalSeconds: total,
    peakRssMiB: peak / 2 ** 20,
  };
  const report = await writeReport(o.outDir, {
    model: { name: model.name, fingerprint: fp, dims: stats.dims },
    params,
    masks: entries.map((e) => ({ ...e.built, achieved: e.achieved })),
    logistic,
    validation,
    router: routerReport,
    routing,
    timing,
    perplexity: ppl,
  });
  log(
    `wrote ${entries.length} masks, router, stats, manifest and report to ${o.outDir} ` +
      `(total ${formatDuration(total)}, peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB)`,
  );
  return {
    outDir: o.outDir,
    model,
    stats,
    masks: manifest.masks,
    router: routerReport,
    validation,
    report,
  };
}
