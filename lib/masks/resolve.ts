/**
 * Mask resolution (docs/design.md, Router): the one rule that turns a request's mask choice
 * (`{"mask": "auto" | "dense" | "generic" | "<task>" | "<name>", "sparsity": s}`) into one
 * servable mask. A forced choice resolves at once; "auto" with a router becomes a routed plan,
 * decided by {@link decideRouted} once the router has seen the prompt's feature. Everything a
 * request can get wrong is found by {@link planMask}, before any work is queued.
 */

import { type CatalogEntry, type MaskCatalog, SPARSITY_EPS } from "./catalog.ts";
import { MaskRequestConflictError, UnknownMaskError } from "./errors.ts";
import { route } from "./router.ts";

/** What a request asks for (its `seap` field), already validated for shape. */
export interface MaskRequest {
  mask?: string;
  sparsity?: number;
}

/** How the mask was chosen: routed to a task, a fallback to generic/dense, or named. */
export type MaskSelection = "auto" | "fallback" | "forced";

/** What a response reports about the mask that served it. */
export interface MaskInfo {
  mask: string;
  /** The routed or named task; null when none. */
  task: string | null;
  /** The router's confidence; null when the router did not run. */
  confidence: number | null;
  sparsity: number;
  selection: MaskSelection;
}

/** A resolved choice: the prepared mask plus what to report. */
export interface MaskChoice {
  entry: CatalogEntry;
  info: MaskInfo;
}

/** A router's decision for one prompt (lib/masks/router.ts, `route`). */
export interface RouteDecision {
  /** Most probable task. */
  task: string;
  /** Its probability among the tasks. */
  confidence: number;
  /**
   * The router's own verdict that the generic mask must serve (low confidence, or a prompt
   * its out-of-distribution test says belongs to no task); when absent, confidence below
   * the catalog's threshold decides.
   */
  useGeneric?: boolean;
}

/**
 * A request's mask before the prompt is seen: decided already (`fixed`), or to be routed on
 * the feature after the router's `layer` protected layers (`routed`).
 */
export type MaskPlan =
  | { kind: "fixed"; choice: MaskChoice }
  | { kind: "routed"; request: MaskRequest | undefined; layer: number };

/**
 * Plan a request's mask: a forced or fallback choice now, or a routed plan for "auto" with a
 * router. Throws {@link UnknownMaskError} for a mask or sparsity the catalog lacks and
 * {@link MaskRequestConflictError} for a named mask with another sparsity.
 */
export function planMask(catalog: MaskCatalog, req: MaskRequest | undefined): MaskPlan {
  const forced = resolveForced(catalog, req);
  if (forced) return { kind: "fixed", choice: forced };
  sparsityOf(catalog, req); // an unknown sparsity fails now, not after routing
  return { kind: "routed", request: req, layer: catalog.protectedLayers };
}

/** The mask of a routed plan for the prompt's router feature `[H]`. */
export function decideRouted(
  catalog: MaskCatalog,
  plan: Extract<MaskPlan, { kind: "routed" }>,
  feature: Float32Array,
): MaskChoice {
  return resolveRouted(catalog, plan.request, route(catalog.router!, feature));
}

/**
 * Resolve a forced choice (anything but "auto") without running the router. Returns null for
 * "auto" with a router (routing needed).
 */
export function resolveForced(
  catalog: MaskCatalog,
  req: MaskRequest | undefined,
): MaskChoice | null {
  const name = req?.mask ?? "auto";
  if (name === "auto" && catalog.router) return null;
  if (name === "dense") {
    if (req?.sparsity !== undefined && req.sparsity !== 0) {
      throw new UnknownMaskError(
        "The dense mask has sparsity 0; drop seap.sparsity or pick another mask",
        "sparsity",
      );
    }
    return choice(catalog.dense, null, null, "forced");
  }
  const s = sparsityOf(catalog, req);
  if (name === "auto") {
    // No router: the generic mask when there is one, else dense.
    const g = catalog.find("generic", null, s);
    return choice(g ?? catalog.dense, null, null, "fallback");
  }
  if (name === "generic") {
    const g = catalog.find("generic", null, s);
    if (!g) throw new UnknownMaskError(`No generic mask at sparsity ${s}`, "mask");
    return choice(g, null, null, "forced");
  }
  const byName = catalog.entries.find((e) => e.name === name);
  if (byName) {
    if (req?.sparsity !== undefined && Math.abs(req.sparsity - byName.sparsity) >= SPARSITY_EPS) {
      throw new MaskRequestConflictError(
        `The mask "${name}" has sparsity ${byName.sparsity} but seap.sparsity asks for ${req.sparsity}; give one of them`,
        "sparsity",
      );
    }
    return choice(byName, byName.kind === "task" ? byName.task : null, null, "forced");
  }
  const t = catalog.find("task", name, s) ?? catalog.find("baseline", name, s);
  if (t) return choice(t, t.kind === "task" ? name : null, null, "forced");
  const known = [
    "auto",
    "dense",
    "generic",
    ...new Set(catalog.entries.map((e) => e.task).filter(Boolean)),
  ];
  throw new UnknownMaskError(
    `Unknown mask "${name}" at sparsity ${s}; available: ${known.join(", ")}`,
    "mask",
  );
}

/**
 * Apply the router's decision for "auto": the task mask, or generic when the router says so
 * (out of distribution) or, for a decision that does not say, below the threshold.
 */
export function resolveRouted(
  catalog: MaskCatalog,
  req: MaskRequest | undefined,
  decision: RouteDecision,
): MaskChoice {
  const s = sparsityOf(catalog, req);
  const generic = catalog.find("generic", null, s) ?? catalog.dense;
  if (decision.useGeneric ?? decision.confidence < catalog.threshold) {
    return choice(generic, decision.task, decision.confidence, "fallback");
  }
  const t = catalog.find("task", decision.task, s);
  if (!t) return choice(generic, decision.task, decision.confidence, "fallback");
  return choice(t, decision.task, decision.confidence, "auto");
}

/** The request's sparsity, or the catalog's default; an unknown one is refused. */
function sparsityOf(catalog: MaskCatalog, req: MaskRequest | undefined): number {
  const s = req?.sparsity ?? catalog.defaultSparsity;
  if (req?.sparsity !== undefined && !catalog.hasSparsity(s)) {
    throw new UnknownMaskError(
      `No masks at sparsity ${s}; available: ${
        catalog.sparsities.join(", ") || "none (dense only)"
      }`,
      "sparsity",
    );
  }
  return s;
}

function choice(
  entry: CatalogEntry,
  task: string | null,
  confidence: number | null,
  selection: MaskSelection,
): MaskChoice {
  return {
    entry,
    info: { mask: entry.name, task, confidence, sparsity: entry.sparsity, selection },
  };
}
