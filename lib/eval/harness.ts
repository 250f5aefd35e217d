/**
 * The evaluation loop behind `deno task eval`: every contender (a way of choosing masks) on
 * every set (the task suite's held-out rows, per task, and the benchmark sets), reporting
 * progress over all rows and rows/second per set.
 */

import type { Model } from "../model/model.ts";
import { GENERAL_TASK, type SuiteRow } from "../tasks/suite.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { rng } from "../util/seeded_rng.ts";
import { type BenchmarkOptions, type DatasetResult, evaluateDataset } from "./benchmark_eval.ts";
import type { Contender } from "./contenders.ts";
import type { Dataset } from "./datasets.ts";
import { evaluateRows } from "./task_eval.ts";

/** What {@link runHarness} evaluates. */
export interface HarnessInput {
  model: Model;
  tok: Tokenizer;
  contenders: Contender[];
  /** Task-suite rows (exact match through the chat template); may be empty. */
  suite: SuiteRow[];
  /** Benchmark sets; may be empty. */
  datasets: Dataset[];
  bench: BenchmarkOptions;
  /** Most answer tokens per task-suite row (default 24). */
  maxNew?: number;
  /** Called after every row with rows done, rows in all and what is running. */
  progress?: (done: number, total: number, note: string) => void;
}

/** One contender's results. */
export interface ContenderResult {
  label: string;
  method: string;
  task: string | null;
  share: number;
  name: string;
  /** Share the contender's masks remove (see {@link Contender.removed}). */
  removed: number;
  /** One per suite task, then one per benchmark set. */
  results: DatasetResult[];
  /** Unweighted mean of {@link primaryAccuracy} over the sets that have one. */
  meanAcc: number;
  /** Same, over the task suite's tasks only (NaN without suite rows). */
  suiteMeanAcc: number;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

/**
 * The accuracy a set is ranked by: `acc` (exact match for the suite, log-likelihood argmax for
 * multiple choice and WinoGrande) or `exact_match` (GSM8K); null for perplexity sets.
 */
export function primaryAccuracy(r: DatasetResult): number | null {
  return r.metrics.acc ?? r.metrics.exact_match ?? null;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/**
 * At most `limit` rows per group (`key` of a row), chosen by a seeded shuffle (or the first
 * `limit` when `first`) and kept in their original order; `limit` <= 0 keeps everything.
 */
export function sampleRows<T>(
  rows: T[],
  limit: number,
  seed: number,
  key: (r: T) => string,
  first = false,
): T[] {
  if (limit <= 0) return rows;
  if (first) {
    const seen = new Map<string, number>();
    return rows.filter((r) => {
      const n = (seen.get(key(r)) ?? 0) + 1;
      seen.set(key(r), n);
      return n <= limit;
    });
  }
  const groups = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const k = key(r);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(i);
  });
  const keep = new Set<number>();
  for (const [k, idx] of groups) {
    const r = rng(seed + [...k].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7));
    const a = [...idx];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    for (const i of a.slice(0, limit)) keep.add(i);
  }
  return rows.filter((_, i) => keep.has(i));
}

/** Evaluate every contender on every set. */
export async function runHarness(inp: HarnessInput): Promise<ContenderResult[]> {
  const suiteByTask = new Map<string, SuiteRow[]>();
  for (const r of inp.suite) {
    if (!suiteByTask.has(r.task)) suiteByTask.set(r.task, []);
    suiteByTask.get(r.task)!.push(r);
  }
  const rowsPer = inp.suite.length + inp.datasets.reduce((a, d) => a + d.rows.length, 0);
  const total = rowsPer * inp.contenders.length;
  const bar = { tick: (d: number, note: string) => inp.progress?.(d, total, note) };
  let done = 0;
  const out: ContenderResult[] = [];
  for (const c of inp.contenders) {
    const results: DatasetResult[] = [];
    for (const [task, rows] of suiteByTask) {
      const before = done;
      const r = await evaluateRows(inp.model, inp.tok, rows, c.pick, {
        maxNew: inp.maxNew ?? 24,
        onProgress: (d) => {
          done = before + d;
          bar.tick(done, `${c.label} ${task}`);
        },
      });
      const s = r.perTask[task];
      results.push({
        task,
        kind: "suite",
        n: rows.length,
        metrics: task === GENERAL_TASK ? { perplexity: r.generalPpl } : {
          acc: s.ok / s.n,
          ...(s.heldN ? { held_out_phrasing_acc: s.heldOk / s.heldN } : {}),
        },
        truncated: 0,
        seconds: r.seconds,
        rowsPerSecond: rows.length / Math.max(r.seconds, 1e-9),
      });
    }
    for (const ds of inp.datasets) {
      results.push(
        await evaluateDataset(inp.model, inp.tok, ds, c.pick, {
          ...inp.bench,
          onRow: () => bar.tick(++done, `${c.label} ${ds.task}`),
        }),
      );
    }
    const accs = (rs: DatasetResult[]) =>
      rs.map(primaryAccuracy).filter((x): x is number => x !== null);
    const seconds = results.reduce((a, r) => a + r.seconds, 0);
    const rows = results.reduce((a, r) => a + r.n, 0);
    out.push({
      label: c.label,
      method: c.method,
      task: c.task,
      share: c.share,
      name: c.name,
      removed: c.removed,
      results,
      meanAcc: mean(accs(results)),
      suiteMeanAcc: mean(accs(results.filter((r) => r.kind === "suite"))),
      rows,
      seconds,
      rowsPerSecond: rows / Math.max(seconds, 1e-9),
    });
  }
  return out;
}
