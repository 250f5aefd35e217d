/**
 * The manifest a calibration run writes beside its files (lib/masks/mask_io.ts reads it): the
 * model it is bound to, the masks, the router with its OOD test, the statistics, and the run's
 * parameters.
 */

import type { Router } from "../masks/router.ts";
import {
  type Manifest,
  MANIFEST_FORMAT,
  type ManifestFile,
  type ManifestMask,
  modelBlock,
  type ModelIdentity,
} from "../masks/mask_io.ts";
import type { RouterReport } from "./build_masks.ts";
import type { CalibrateOptions } from "./calibrate_options.ts";
import type { LogisticParams } from "./layer_sparsity.ts";

/**
 * The run's parameters as the manifest and the report record them (`logistic` resolved,
 * defaults filled in).
 */
export function calibrationParams(
  o: CalibrateOptions,
  logistic: LogisticParams,
  validateSamples: number,
): Record<string, unknown> {
  return {
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
}

/** What goes into a calibration run's manifest. */
export interface ManifestParts {
  model: ModelIdentity;
  masks: ManifestMask[];
  router: Router;
  routerReport: RouterReport;
  /** The written router and statistics files. */
  routerFile: ManifestFile;
  statsFile: ManifestFile;
  params: Record<string, unknown>;
  /** OOD prompts generated per template split, and the benchmark files used as OOD prompts. */
  oodGenerated: number;
  oodFiles: string[];
}

/** The manifest of a calibration run, created now. */
export function calibrationManifest(p: ManifestParts): Manifest {
  const { router, routerReport } = p;
  return {
    format: MANIFEST_FORMAT,
    model: modelBlock(p.model),
    created: new Date().toISOString(),
    masks: p.masks,
    router: {
      ...p.routerFile,
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
            generatedPerSplit: p.oodGenerated,
            files: p.oodFiles,
          },
        }
        : {}),
    },
    stats: p.statsFile,
    params: p.params,
  };
}
