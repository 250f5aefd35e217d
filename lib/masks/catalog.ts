/**
 * A model's servable masks: every mask of a loaded mask set prepared once on the model's
 * backend (indices uploaded, no weight copies), with its kind, task, nominal share and cost,
 * plus the router. What a request gets from it is decided in lib/masks/resolve.ts.
 */

import type { Mask } from "../model/mask.ts";
import { denseMask, maskCost } from "../model/mask.ts";
import type { Model } from "../model/model.ts";
import { denseFor, type PreparedMask, prepareMask } from "../model/prepared_mask.ts";
import { loadMaskSet, type MaskSet } from "./mask_io.ts";
import type { Router } from "./router.ts";

/** Kind of a servable mask. */
export type MaskKind = "dense" | "generic" | "task" | "baseline";

/** One servable mask. */
export interface CatalogEntry {
  /** e.g. "reverse@0.5", "generic@0.5", "flap@0.5", "dense". */
  name: string;
  kind: MaskKind;
  /** Task for task masks; method name for baselines ("flap", "wanda-sp"); null otherwise. */
  task: string | null;
  sparsity: number;
  /**
   * Shares of the dense model the mask removes (lib/model/mask.ts `maskCost`): decoder-layer
   * parameters, weight bytes read per decoded token, FLOPs per decoded token.
   */
  removed: { params: number; bytesPerToken: number; flopsPerToken: number };
  prepared: PreparedMask;
}

/** A mask to put in a catalog, with its kind, task and nominal sparsity. */
export interface CatalogMask {
  mask: Mask;
  kind: Exclude<MaskKind, "dense">;
  task: string | null;
  sparsity: number;
}

/** Two sparsities closer than this are the same. */
export const SPARSITY_EPS = 1e-6;

/** Masks and router for one loaded model. */
export class MaskCatalog {
  /** Every servable mask, dense first. */
  readonly entries: CatalogEntry[];
  /** Task names the router knows (and that have masks). */
  readonly tasks: string[];
  /** Sparsities with a generic or task mask, ascending. */
  readonly sparsities: number[];
  /** Sparsity used when the request does not say. */
  readonly defaultSparsity: number;
  /** Where the masks came from (a folder, "fixture", or "none"). */
  readonly source: string;

  /**
   * @param model the loaded model (masks are prepared on its backend)
   * @param masks servable masks with their kind, task and nominal sparsity
   * @param router the router, or null (auto then means generic if present, else dense)
   * @param opts defaultSparsity (else the smallest available), source label
   */
  constructor(
    readonly model: Model,
    masks: CatalogMask[],
    readonly router: Router | null,
    opts: { defaultSparsity?: number; source?: string } = {},
  ) {
    this.source = opts.source ?? "fixture";
    const dense = denseFor(model);
    const removed = (mask: Mask) => {
      const c = maskCost(mask, model.config);
      return { params: c.params, bytesPerToken: c.bytesPerToken, flopsPerToken: c.flopsPerToken };
    };
    this.entries = [{
      name: "dense",
      kind: "dense",
      task: null,
      sparsity: 0,
      removed: removed(denseMask(model.config)),
      prepared: dense,
    }];
    for (const m of masks) {
      this.entries.push({
        name: m.mask.name,
        kind: m.kind,
        task: m.task,
        sparsity: m.sparsity,
        removed: removed(m.mask),
        prepared: prepareMask(model, m.mask),
      });
    }
    this.sparsities = [
      ...new Set(this.entries.filter((e) => e.kind !== "dense").map((e) => e.sparsity)),
    ].sort((a, b) => a - b);
    const d = opts.defaultSparsity;
    this.defaultSparsity = d !== undefined && this.hasSparsity(d) ? d : (this.sparsities[0] ?? 0);
    const taskNames = new Set(this.entries.filter((e) => e.kind === "task").map((e) => e.task!));
    this.tasks = router ? router.tasks.filter((t) => taskNames.has(t)) : [...taskNames];
  }

  /** The dense entry (always first). */
  get dense(): CatalogEntry {
    return this.entries[0];
  }

  /** Protected layers the router reads after (0 without a router). */
  get protectedLayers(): number {
    return this.router?.layer ?? 0;
  }

  /** Router threshold (1 without a router: never confident). */
  get threshold(): number {
    return this.router?.threshold ?? 1;
  }

  /** Whether some generic or task mask has this sparsity. */
  hasSparsity(s: number): boolean {
    return this.sparsities.some((x) => Math.abs(x - s) < SPARSITY_EPS);
  }

  /** The entry of this kind, task and sparsity, if any. */
  find(kind: MaskKind, task: string | null, sparsity: number): CatalogEntry | undefined {
    return this.entries.find((e) =>
      e.kind === kind && e.task === task && Math.abs(e.sparsity - sparsity) < SPARSITY_EPS
    );
  }

  /** Release every prepared mask except the model's cached dense one. */
  release(): void {
    for (const e of this.entries) if (e.kind !== "dense") e.prepared.release();
  }
}

/**
 * Share of a mask name "x@0.5" (of decoder-layer parameters removed), else the share it
 * measurably removes.
 */
export function nominalSparsity(mask: Mask, model: Model): number {
  const m = /@([0-9.]+)$/.exec(mask.name);
  return m ? Number(m[1]) : maskCost(mask, model.config).params;
}

/**
 * How a mask of method `method` (and task `task`) is served: validated SEAP task masks
 * ("seap") as tasks, "seap-generic" as the generic mask, everything else as a baseline named
 * by its method, the paper's unvalidated task masks ("seap-task-raw") as "<task>.raw".
 */
export function catalogKind(
  method: string,
  task: string | null,
): { kind: CatalogMask["kind"]; task: string | null } {
  if (method === "seap" && task) return { kind: "task", task };
  if (method === "seap-generic") return { kind: "generic", task: null };
  return { kind: "baseline", task: method === "seap-task-raw" && task ? `${task}.raw` : method };
}

/** Build the catalog of an already loaded (verified) mask set found in `dir`. */
export function catalogFromSet(
  model: Model,
  set: MaskSet,
  dir: string,
  defaultSparsity?: number | null,
): MaskCatalog {
  const masks = set.manifest.masks.map((e) => {
    const mask = set.masks.get(e.name)!;
    return {
      mask,
      ...catalogKind(e.method, e.task),
      sparsity: Number.isFinite(e.sparsity) ? e.sparsity : nominalSparsity(mask, model),
    };
  });
  const p = set.manifest.params ?? {};
  const fromManifest = [p.defaultSparsity, p.default_sparsity, p.sparsity].find((x) =>
    typeof x === "number"
  ) as number | undefined;
  return new MaskCatalog(model, masks, set.router, {
    defaultSparsity: defaultSparsity ?? fromManifest,
    source: dir,
  });
}

/**
 * Load a calibrated mask set (manifest + masks + router) into a {@link MaskCatalog}.
 * Task masks (method "seap", validated), generic masks ("seap-generic") and the others
 * (baselines, and the paper's unvalidated task masks "seap-task-raw", requested as
 * `{"mask": "<task>.raw"}`) are prepared once.
 */
export async function loadCatalog(
  model: Model,
  dir: string,
  defaultSparsity?: number | null,
): Promise<MaskCatalog> {
  return catalogFromSet(model, await loadMaskSet(dir, model), dir, defaultSparsity);
}
