/**
 * The server's view of a mask set: every servable mask prepared once (indices uploaded, no
 * weight copies), the router, and the rule that turns a request's `seap` field plus the
 * router's decision into one prepared mask (docs/design.md, Router).
 */

import type { Mask } from "../model/mask.ts";
import { denseMask, maskCost } from "../model/mask.ts";
import type { Model } from "../model/model.ts";
import { denseFor, type PreparedMask, prepareMask } from "../model/prepared_mask.ts";
import { badRequest, notFound } from "./errors.ts";
import type { SeapInfo } from "./schemas.ts";

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

/** A router: task and confidence for a feature `[H]`. */
export interface RouterFn {
  /** Class names. */
  tasks: string[];
  /** Protected leading layers m: the feature is the mean hidden state after layer m-1. */
  layer: number;
  /** Below this confidence the generic mask is used. */
  threshold: number;
  /** Decision for one feature. */
  route(feature: Float32Array): RouteDecision;
}

/** A router's decision for one prompt. */
export interface RouteDecision {
  /** Most probable task. */
  task: string;
  /** Its probability among the tasks. */
  confidence: number;
  /**
   * The router's own verdict that the generic mask must serve (low confidence, or a prompt
   * its out-of-distribution test says belongs to no task); when absent, confidence below
   * the threshold decides.
   */
  useGeneric?: boolean;
}

/** What a request asks for (`seap` field), already validated for shape. */
export interface MaskRequest {
  mask?: string;
  sparsity?: number;
}

/** A resolved choice: the prepared mask plus what to report in `seap`. */
export interface MaskChoice {
  entry: CatalogEntry;
  info: SeapInfo;
}

const EPS = 1e-6;

/** Masks, router and selection rule for one loaded model. */
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
    masks: {
      mask: Mask;
      kind: Exclude<MaskKind, "dense">;
      task: string | null;
      sparsity: number;
    }[],
    readonly router: RouterFn | null,
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
    this.defaultSparsity = d !== undefined && this.sparsities.some((s) => Math.abs(s - d) < EPS)
      ? d
      : (this.sparsities[0] ?? 0);
    const taskNames = new Set(this.entries.filter((e) => e.kind === "task").map((e) => e.task!));
    this.tasks = router ? router.tasks.filter((t) => taskNames.has(t)) : [...taskNames];
  }

  /** Protected layers the router reads after (0 without a router). */
  get protectedLayers(): number {
    return this.router?.layer ?? 0;
  }

  /** Router threshold (1 without a router: never confident). */
  get threshold(): number {
    return this.router?.threshold ?? 1;
  }

  private find(kind: MaskKind, task: string | null, sparsity: number): CatalogEntry | undefined {
    return this.entries.find((e) =>
      e.kind === kind && e.task === task && Math.abs(e.sparsity - sparsity) < EPS
    );
  }

  private sparsityOf(req: MaskRequest | undefined): number {
    const s = req?.sparsity ?? this.defaultSparsity;
    if (req?.sparsity !== undefined && !this.sparsities.some((x) => Math.abs(x - s) < EPS)) {
      throw notFound(
        `No masks at sparsity ${s}; available: ${
          this.sparsities.join(", ") || "none (dense only)"
        }`,
        "seap.sparsity",
        "mask_not_found",
      );
    }
    return s;
  }

  /**
   * Resolve a forced choice (anything but "auto") without running the router; throws 404 for
   * an unknown mask or sparsity. Returns null for "auto" with a router (routing needed).
   */
  resolveForced(req: MaskRequest | undefined): MaskChoice | null {
    const name = req?.mask ?? "auto";
    if (name === "auto" && this.router) return null;
    if (name === "dense") {
      if (req?.sparsity !== undefined && req.sparsity !== 0) {
        throw notFound(
          "The dense mask has sparsity 0; drop seap.sparsity or pick another mask",
          "seap.sparsity",
          "mask_not_found",
        );
      }
      return this.choice(this.entries[0], null, null, "forced");
    }
    const s = this.sparsityOf(req);
    if (name === "auto") {
      // No router: the generic mask when there is one, else dense.
      const g = this.find("generic", null, s);
      return this.choice(g ?? this.entries[0], null, null, "fallback");
    }
    if (name === "generic") {
      const g = this.find("generic", null, s);
      if (!g) throw notFound(`No generic mask at sparsity ${s}`, "seap.mask", "mask_not_found");
      return this.choice(g, null, null, "forced");
    }
    const byName = this.entries.find((e) => e.name === name);
    if (byName) {
      if (req?.sparsity !== undefined && Math.abs(req.sparsity - byName.sparsity) >= EPS) {
        throw badRequest(
          `The mask "${name}" has sparsity ${byName.sparsity} but seap.sparsity asks for ${req.sparsity}; give one of them`,
          "seap.sparsity",
          "invalid_value",
        );
      }
      return this.choice(byName, byName.kind === "task" ? byName.task : null, null, "forced");
    }
    const t = this.find("task", name, s) ?? this.find("baseline", name, s);
    if (t) return this.choice(t, t.kind === "task" ? name : null, null, "forced");
    const known = [
      "auto",
      "dense",
      "generic",
      ...new Set(this.entries.map((e) => e.task).filter(Boolean)),
    ];
    throw notFound(
      `Unknown mask "${name}" at sparsity ${s}; available: ${known.join(", ")}`,
      "seap.mask",
      "mask_not_found",
    );
  }

  /**
   * Apply the router's decision for "auto": the task mask, or generic when the router says so
   * (out of distribution) or, for a router that does not say, below the threshold.
   */
  resolveRouted(req: MaskRequest | undefined, decision: RouteDecision): MaskChoice {
    const s = this.sparsityOf(req);
    const generic = this.find("generic", null, s) ?? this.entries[0];
    if (decision.useGeneric ?? decision.confidence < this.threshold) {
      return this.choice(generic, decision.task, decision.confidence, "fallback");
    }
    const t = this.find("task", decision.task, s);
    if (!t) return this.choice(generic, decision.task, decision.confidence, "fallback");
    return this.choice(t, decision.task, decision.confidence, "auto");
  }

  private choice(
    entry: CatalogEntry,
    task: string | null,
    confidence: number | null,
    selection: SeapInfo["selection"],
  ): MaskChoice {
    return {
      entry,
      info: { mask: entry.name, task, confidence, sparsity: entry.sparsity, selection },
    };
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
