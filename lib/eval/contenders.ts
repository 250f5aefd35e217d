/**
 * The contenders of an evaluation, from a mask catalog: dense; per share the baselines
 * (Wanda-sp, FLAP, ...), SEAP generic, SEAP task (oracle: each row gets its task's own mask,
 * the generic mask when its task has none), SEAP validated (the same with the validated task
 * masks, when the set has them; SEAP task then uses the paper's unvalidated `<task>.raw`
 * masks), SEAP routed (the router picks, as the server does); and every single mask of the set
 * (method `mask`, for transfer matrices).
 */

import type { CatalogEntry, MaskCatalog } from "../masks/catalog.ts";
import { resolveRouted } from "../masks/resolve.ts";
import { route } from "../masks/router.ts";
import type { Mask } from "../model/mask.ts";
import type { PreparedMask } from "../model/prepared_mask.ts";
import type { MaskPicker } from "./mask_picker.ts";
import type { Selectable } from "./mask_selector.ts";

/** One way of choosing masks, evaluated on every row. */
export interface Contender extends Selectable {
  /** Row label in tables: "seap-task@0.5", "dense", "mask reverse@0.5". */
  label: string;
  pick: MaskPicker;
  /**
   * Share of the model the contender's masks remove, by the cost measure given to
   * {@link catalogContenders}, averaged over its masks; 0 for dense.
   */
  removed: number;
}

const EPS = 1e-6;

/** Every contender a catalog offers, dense first, then by share. */
export function catalogContenders(
  cat: MaskCatalog,
  cost: (mask: Mask) => number,
): Contender[] {
  const removed = (ms: (PreparedMask | null)[]) =>
    ms.reduce((a, m) => a + (m ? cost(m.mask) : 0), 0) / Math.max(1, ms.length);
  const out: Contender[] = [{
    label: "dense",
    method: "dense",
    task: null,
    share: 0,
    name: "dense",
    pick: { kind: "fixed", mask: null },
    removed: 0,
  }];
  const singles: Contender[] = [];
  for (const s of cat.sparsities) {
    const at = (e: CatalogEntry) => Math.abs(e.sparsity - s) < EPS;
    const tag = String(Number(s.toFixed(4)));
    const add = (method: string, pick: MaskPicker, ms: PreparedMask[]) =>
      out.push({
        label: `${method}@${tag}`,
        method,
        task: null,
        share: s,
        name: `${method}@${tag}`,
        pick,
        removed: removed(ms),
      });
    // The paper's unvalidated task masks, when the set also has validated ones, are listed as
    // baselines named "<task>.raw" (docs/design.md, Validated task masks).
    const isRaw = (e: CatalogEntry) => e.kind === "baseline" && (e.task ?? "").endsWith(".raw");
    for (const e of cat.entries.filter((e) => e.kind === "baseline" && at(e) && !isRaw(e))) {
      add(e.task ?? e.name, { kind: "fixed", mask: e.prepared }, [e.prepared]);
    }
    const generic = cat.entries.find((e) => e.kind === "generic" && at(e))?.prepared ?? null;
    if (generic) add("seap-generic", { kind: "fixed", mask: generic }, [generic]);
    const raw = new Map<string, PreparedMask>();
    for (const e of cat.entries.filter((e) => isRaw(e) && at(e))) {
      raw.set(e.task!.slice(0, -".raw".length), e.prepared);
    }
    if (raw.size > 0) {
      add("seap-task", { kind: "per-task", masks: raw, fallback: generic }, [...raw.values()]);
    }
    const own = new Map<string, PreparedMask>();
    for (const e of cat.entries) if (e.kind === "task" && at(e)) own.set(e.task!, e.prepared);
    if (own.size > 0) {
      add(raw.size > 0 ? "seap-validated" : "seap-task", {
        kind: "per-task",
        masks: own,
        fallback: generic,
      }, [...own.values()]);
      const r = cat.router;
      if (r) {
        add("seap-routed", {
          kind: "routed",
          layer: r.layer,
          choose: (f) => resolveRouted(cat, { sparsity: s }, route(r, f)).entry.prepared,
        }, [...own.values()]);
      }
    }
    for (const e of cat.entries.filter((e) => e.kind !== "dense" && at(e))) {
      singles.push({
        label: `mask ${e.name}`,
        method: "mask",
        task: e.kind === "task" ? e.task : e.kind === "generic" ? "generic" : e.task,
        share: s,
        name: e.name,
        pick: { kind: "fixed", mask: e.prepared },
        removed: cost(e.prepared.mask),
      });
    }
  }
  return [...out, ...singles];
}
