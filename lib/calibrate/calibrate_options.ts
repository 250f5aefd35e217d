/** The options of a calibration run (`deno task calibrate`, lib/calibrate/pipeline.ts). */

import type { WeightDType } from "../backends/backend.ts";
import type { BackendChoice } from "../backends/select_backend.ts";
import type { MaskParams } from "./build_masks.ts";

/** Everything the calibration pipeline needs. */
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
  /** Compute backend (default "reference"). */
  backend?: BackendChoice;
  /**
   * Weight format the model is loaded in (default "f32"); f16 and q8 fit larger models in the
   * backend's memory and run faster, the statistics accumulate in float64 either way.
   */
  weights?: WeightDType;
  /**
   * Checkpoint the statistics pass every N samples to `<outDir>/stats.partial.safetensors` and
   * resume from it after an interruption (default 16; 0: no checkpoints). Removed once
   * stats.safetensors is written.
   */
  checkpointEvery?: number;
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
