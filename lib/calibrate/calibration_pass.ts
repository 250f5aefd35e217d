/**
 * The model-running part of a calibration run before any mask is built: the dense statistics
 * pass over the calibration samples (checkpointed, resumable) or the statistics it reuses
 * (`--from-stats`), the held-out rows set aside for validating the task masks, and the optional
 * plain dense pass timed for comparison (`--measure-dense`).
 */

import type { Backend } from "../backends/backend.ts";
import type { Model } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import type { CalibrateOptions } from "./calibrate_options.ts";
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
import { formatDuration } from "./progress.ts";

/** The statistics a run builds its masks from, and the rows it holds out. */
export interface CalibrationPass {
  stats: CalibrationStats;
  /** `stats` encoded as stats.safetensors. */
  statsBytes: Uint8Array;
  /** The statistics samples per task (null when the statistics were reused). */
  groups: Map<string, { text: string }[]> | null;
  /** Held-out rows per task for validating the task masks (null: no validation). */
  heldOutRows: Map<string, CalibrationSample[]> | null;
}

/** Where the statistics pass checkpoints (removed once stats.safetensors is written). */
export function checkpointPath(outDir: string): string {
  return `${outDir}/stats.partial.safetensors`;
}

/**
 * Run the dense statistics pass over `o.calibrationFiles` (features for the router read after
 * `routerLayer`), or reload `o.fromStats`, refused when it is for another model or router layer.
 * Rows for validation (`validateSamples` per task) are held out of the statistics either way.
 */
export async function calibrationPass(
  o: CalibrateOptions,
  model: Model,
  tok: Tokenizer,
  backend: Backend,
  routerLayer: number,
  validateSamples: number,
  log: (s: string) => void,
): Promise<CalibrationPass> {
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
    const every = o.checkpointEvery ?? 16;
    if (!(Number.isInteger(every) && every >= 0)) {
      throw new RangeError(`checkpoint every ${every} samples: expected an integer >= 0`);
    }
    if (every > 0) await Deno.mkdir(o.outDir, { recursive: true });
    stats = await collectStats(model, tok, g, {
      maxTokens: o.maxTokens,
      routerLayer,
      progress: o.progress,
      routerOnly: extra,
      checkpoint: every > 0 ? { path: checkpointPath(o.outDir), every } : undefined,
      log,
    });
    statsBytes = encodeStats(stats);
    log(
      `dense statistics pass (${backend.name}, ${backend.weightDType} weights, float64 ` +
        `statistics): ${stats.tokens} tokens in ${formatDuration(stats.seconds)}; ` +
        `router-only prompts: ${formatDuration(stats.routerSeconds)}`,
    );
  }
  return { stats, statsBytes, groups, heldOutRows };
}

/**
 * Seconds of one plain dense prefill over the same tokens as the statistics pass (each sample
 * of `groups` cut to `maxTokens`), for the statistics pass's cost ratio.
 */
export async function timeDensePass(
  model: Model,
  tok: Tokenizer,
  groups: Map<string, { text: string }[]>,
  maxTokens: number,
): Promise<number> {
  const t = performance.now();
  for (const samples of groups.values()) {
    for (const s of samples) {
      const ids = encodeSample(tok, s.text, maxTokens);
      const seq = new Sequence(model, { maxTokens: ids.length });
      await seq.prefill(ids);
      seq.free();
    }
  }
  return (performance.now() - t) / 1000;
}
