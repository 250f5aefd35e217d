/**
 * The whole `deno task calibrate` pipeline: load model and data, run (or reload) the dense
 * statistics pass, build every mask and the router, write them with a manifest bound to the
 * model, and write the report.
 */

import { selectBackend } from "../backends/select_backend.ts";
import { loadModel, type Model, readProjections } from "../model/model.ts";
import { Tokenizer } from "../text/tokenizer.ts";
import {
  encodeRouter,
  type ManifestMask,
  writeListedFile,
  writeManifest,
} from "../masks/mask_io.ts";
import { biasCompensationPerplexity } from "./bias_perplexity.ts";
import { buildMasks, buildRouter, type RouterReport } from "./build_masks.ts";
import type { CalibrateOptions } from "./calibrate_options.ts";
import { calibrationManifest, calibrationParams } from "./calibration_manifest.ts";
import { calibrationPass, checkpointPath, timeDensePass } from "./calibration_pass.ts";
import type { CalibrationStats } from "./collect_stats.ts";
import { resolveLogistic } from "./layer_sparsity.ts";
import { scoreSet } from "./mask_methods.ts";
import type { ScoredSequence } from "./perplexity.ts";
import { generatedOod, loadBenchmarkOod, type OodFeatures, oodFeatures } from "./ood_data.ts";
import { measureRoutingCost, type RoutingCost } from "./routing_cost.ts";
import { ProgressBar } from "./progress.ts";
import { formatDuration } from "./progress.ts";
import { writeReport } from "./report.ts";
import { evaluateRouterOnFile } from "./router_file_eval.ts";
import {
  heldOutSequences,
  type TaskValidation,
  validatedWeights,
  validateTaskMasks,
} from "./validate_masks.ts";
import { listedFiles, removeUnlisted, writeMaskFiles } from "./write_mask_files.ts";

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
  const backend = await selectBackend(o.backend ?? "reference", {
    weightDType: o.weights ?? "f32",
    log,
  });
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

  const { stats, statsBytes, groups, heldOutRows } = await calibrationPass(
    o,
    model,
    tok,
    backend,
    routerLayer,
    validateSamples,
    log,
  );

  let denseSeconds: number | null = null;
  if (o.measureDense && groups) {
    denseSeconds = await timeDensePass(model, tok, groups, o.maxTokens);
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
    routerReport.extraEval = await evaluateRouterOnFile(
      model,
      tok,
      router,
      o.routerEval,
      o.maxTokens,
      o.seed + 2,
      log,
    );
  }

  // write
  await Deno.mkdir(o.outDir, { recursive: true });
  const oldFiles = await listedFiles(o.outDir);
  const entries = await writeMaskFiles(o.outDir, built, validation, model);
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
  const fp = model.fingerprint;
  const rf = await writeListedFile(
    o.outDir,
    "router.safetensors",
    encodeRouter(router, { fingerprint: fp }),
  );
  const sf = await writeListedFile(o.outDir, "stats.safetensors", statsBytes);
  await Deno.remove(checkpointPath(o.outDir)).catch(() => {}); // the statistics are saved for good
  const params = calibrationParams(o, logistic, validateSamples);
  const manifest = calibrationManifest({
    model,
    masks: entries.map(({ built: _b, ...e }) => e),
    router,
    routerReport,
    routerFile: rf,
    statsFile: sf,
    params,
    oodGenerated: o.oodGenerated ?? 600,
    oodFiles: o.oodFiles ?? [],
  });
  await writeManifest(o.outDir, manifest);
  await removeUnlisted(
    o.outDir,
    oldFiles,
    new Set([...manifest.masks.map((m) => m.file), rf.file, sf.file]),
  );

  // bias compensation: held-out perplexity with and without
  const ppl = o.pplEval
    ? await biasCompensationPerplexity(model, tok, entries, {
      file: o.pplEval,
      task: o.pplTask,
      samples: o.pplSamples,
      maxTokens: o.maxTokens,
      seed: o.seed + 1,
    }, log)
    : [];

  const peak = mem.stop();
  const total = (performance.now() - t0) / 1000;
  const timing: Record<string, unknown> = {
    loadSeconds: tLoad,
    statsBackend: stats.backend ?? null,
    statsWeights: stats.weightDType ?? null,
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
