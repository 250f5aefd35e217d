/**
 * Selecting evaluation contenders (a method at a share, or one mask) with short selectors:
 *
 * - `key=value[,key=value...]` with keys `method`, `task`, `share`, `name`; a value may list
 *   alternatives with `|` and use `*` / `?` globs: `method=seap-task|seap-routed,share=0.5`,
 *   `method=mask,task=reverse`, `share=0.*`;
 * - a bare glob over mask names, one mask applied to every row: `reverse@0.5`, `*@0.2`.
 *
 * Several selectors are separated by `;` (or given as repeated flags); a contender is kept when
 * any selector matches it. Single masks (method `mask`) are only kept by a selector that names
 * them (a `name` or `task` key, a bare glob, or `method=mask`).
 */

/** What a selector is matched against. */
export interface Selectable {
  method: string;
  /** The mask's task (single masks of task masks), else null. */
  task: string | null;
  share: number;
  /** The mask's name ("reverse@0.5"), or the contender's label. */
  name: string;
}

/** One parsed selector: per key, alternatives (globs). */
export type Selector = Partial<Record<"method" | "task" | "share" | "name", string[]>>;

/** A selector that does not parse. */
export class SelectorError extends Error {
  override name = "SelectorError";
}

const KEYS = new Set(["method", "task", "share", "name"]);

/** Parse selector strings (each may hold several, separated by `;`). */
export function parseSelectors(specs: string[]): Selector[] {
  const out: Selector[] = [];
  for (const spec of specs.flatMap((s) => s.split(";"))) {
    const s = spec.trim();
    if (!s) continue;
    if (!s.includes("=")) {
      out.push({ name: s.split("|") });
      continue;
    }
    const sel: Selector = {};
    for (const part of s.split(",")) {
      const eq = part.indexOf("=");
      const key = part.slice(0, eq).trim();
      const value = part.slice(eq + 1).trim();
      if (eq < 0 || !KEYS.has(key) || !value) {
        throw new SelectorError(
          `bad selector "${s}": "${part}" is not key=value with key method, task, share or name`,
        );
      }
      sel[key as keyof Selector] = value.split("|");
    }
    out.push(sel);
  }
  return out;
}

/** Whether `glob` (`*`, `?` wildcards) matches all of `s`. */
export function globMatch(glob: string, s: string): boolean {
  const re = glob.replace(/[.+^${}()[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(s);
}

function shareMatches(alt: string, share: number): boolean {
  const n = Number(alt);
  if (alt !== "" && Number.isFinite(n)) return Math.abs(n - share) < 1e-6;
  return globMatch(alt, String(Number(share.toFixed(4))));
}

/** Whether one selector keeps `c`. */
export function selectorMatches(sel: Selector, c: Selectable): boolean {
  const names = sel.name !== undefined || sel.task !== undefined ||
    (sel.method ?? []).includes("mask");
  if (c.method === "mask" && !names) return false;
  if (sel.method && !sel.method.some((g) => globMatch(g, c.method))) return false;
  if (sel.task && !sel.task.some((g) => c.task !== null && globMatch(g, c.task))) return false;
  if (sel.name && !sel.name.some((g) => globMatch(g, c.name))) return false;
  if (sel.share && !sel.share.some((g) => shareMatches(g, c.share))) return false;
  return true;
}

/** The items any selector keeps (all but single masks when there are no selectors), in order. */
export function selectContenders<T extends Selectable>(items: T[], sels: Selector[]): T[] {
  if (sels.length === 0) return items.filter((c) => c.method !== "mask");
  return items.filter((c) => sels.some((s) => selectorMatches(s, c)));
}
