/** What the calibration report (lib/calibrate/report.ts) is written from. */

import type { BuiltMask, RouterReport } from "./build_masks.ts";
import type { LogisticParams } from "./layer_sparsity.ts";
import type { RoutingCost } from "./routing_cost.ts";
import type { Dims } from "./stats_types.ts";
import type { TaskValidation } from "./validate_masks.ts";

/** Everything the report shows. */
export interface ReportInput {
  model: { name: string; fingerprint: string; dims: Dims };
  params: Record<string, unknown>;
  masks: (BuiltMask & { achieved: number })[];
  /** The UL-LD parameters used (m, n resolved). */
  logistic?: LogisticParams;
  /** Held-out validation of the task masks (empty when skipped). */
  validation?: TaskValidation[];
  router: RouterReport | null;
  /** What routing costs a request (null: not measured). */
  routing?: RoutingCost | null;
  timing: Record<string, unknown>;
  perplexity?: Record<string, unknown>[];
}

/** The Jaccard overlap of the task masks' pruned units at one share. */
export interface JaccardSummary {
  tasks: string[];
  matrix: number[][];
  meanOffDiagonal: number;
  minOffDiagonal: number;
  maxOffDiagonal: number;
}
