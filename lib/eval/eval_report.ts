/**
 * Writing an evaluation: `eval.json` (everything), `eval.md` (tables), `eval.svg` (mean
 * accuracy per method and share), `curve.svg` (accuracy against share, when there are several
 * shares) and, in transfer mode, `transfer_<share>.svg` heatmaps (every task's mask on every
 * task) with their matrices in the JSON and Markdown.
 */

import { barChartSvg } from "./bar_chart_svg.ts";
import type { DatasetResult } from "./benchmark_eval.ts";
import { type ContenderResult, primaryAccuracy } from "./harness.ts";
import { heatmapSvg } from "./heatmap_svg.ts";
import { lineChartSvg } from "./line_chart_svg.ts";

/** A finished run with what describes it. */
export interface EvalRun {
  model: { name: string; dir: string; fingerprint: string };
  backend: string;
  weights: string;
  seed: number;
  limit: number;
  /** Rows were the first `limit` of each task rather than a seeded sample. */
  first: boolean;
  /** What the `removed` column measures. */
  costMeasure: string;
  /** Where the masks came from (mask-set folder, statistics file, or "none"). */
  masks: string;
  mode: "methods" | "transfer" | "curve";
  /** The command that reproduces the run. */
  command: string;
  sets: { task: string; kind: string; rows: number; source: string }[];
  results: ContenderResult[];
  seconds: number;
}

/** A transfer matrix at one share: `acc[r][c]` = mask `rows[r]` on task `cols[c]` (0..1). */
export interface TransferMatrix {
  share: number;
  rows: string[];
  cols: string[];
  acc: number[][];
}

const pct = (x: number | undefined | null) =>
  x === undefined || x === null || !Number.isFinite(x) ? "–" : (100 * x).toFixed(1);
const num = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? "–" : x >= 1e5 ? x.toExponential(3) : x.toFixed(3);
const tag = (s: number) => String(Number(s.toFixed(4)));

/** Sets ranked by accuracy, in the order of the first contender's results. */
function accuracyTasks(results: ContenderResult[]): string[] {
  return (results[0]?.results ?? []).filter((r) => primaryAccuracy(r) !== null).map((r) => r.task);
}

function find(c: ContenderResult, task: string): DatasetResult | undefined {
  return c.results.find((r) => r.task === task);
}

/** Transfer matrices: single task masks (plus generic and dense rows) per share. */
export function transferMatrices(results: ContenderResult[]): TransferMatrix[] {
  const cols = accuracyTasks(results);
  const dense = results.find((c) => c.method === "dense");
  const shares = [
    ...new Set(results.filter((c) => c.method === "mask").map((c) => c.share)),
  ].sort((a, b) => a - b);
  return shares.map((share) => {
    const masks = results.filter((c) => c.method === "mask" && c.share === share && c.task);
    const taskRows = masks.filter((c) => c.task !== "generic");
    taskRows.sort((a, b) => {
      const ia = cols.indexOf(a.task!), ib = cols.indexOf(b.task!);
      return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || a.task!.localeCompare(b.task!);
    });
    const rowsC = [...taskRows, ...masks.filter((c) => c.task === "generic")];
    if (dense) rowsC.push(dense);
    return {
      share,
      rows: rowsC.map((c) => c.task ?? c.label),
      cols,
      acc: rowsC.map((c) => cols.map((t) => primaryAccuracy(find(c, t)!) ?? NaN)),
    };
  });
}

/** The Markdown report. */
export function renderMarkdown(run: EvalRun, transfer: TransferMatrix[]): string {
  const rs = run.results;
  const accTasks = accuracyTasks(rs);
  const first = rs[0]?.results ?? [];
  const norms = first.filter((r) => r.metrics.acc_norm !== undefined).map((r) => r.task);
  const ppls = first.filter((r) => primaryAccuracy(r) === null).map((r) => r.task);
  const pplOf = (r: DatasetResult | undefined) =>
    r?.metrics.perplexity ?? r?.metrics.word_perplexity;
  const rowsTotal = run.sets.reduce((a, s) => a + s.rows, 0);
  const L: string[] = [
    `# Evaluation: ${run.model.name}`,
    "",
    `${run.sets.length} sets, ${rowsTotal} rows per contender` +
    (run.limit > 0
      ? ` (at most ${run.limit} per task, ${run.first ? "the first ones" : `seed ${run.seed}`})`
      : "") +
    `; backend ${run.backend}, ${run.weights} weights; masks from ${run.masks}; ` +
    `${run.seconds.toFixed(1)} s in all.`,
    "",
    "Accuracy in %: exact match for task-suite rows (greedy, chat template), `acc` (log-likelihood " +
    "argmax) for multiple choice and WinoGrande, exact match of the last number for GSM8K; " +
    "`norm` columns are acc_norm (log-likelihood per byte of the choice). `mean` is the " +
    "unweighted mean of the accuracy columns. `share` is the mask set's share of the method; " +
    `\`removed\` the share its masks remove: ${run.costMeasure}.`,
    "",
  ];
  const head = [
    "contender",
    "share",
    "removed",
    ...accTasks,
    ...norms.map((t) => `${t} norm`),
    "mean",
    ...ppls.map((t) => `${t} ppl`),
    "rows/s",
  ];
  L.push(`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`);
  for (const c of rs) {
    L.push(
      `| ${
        [
          c.label,
          tag(c.share),
          pct(c.removed),
          ...accTasks.map((t) => pct(primaryAccuracy(find(c, t)!))),
          ...norms.map((t) => pct(find(c, t)?.metrics.acc_norm)),
          `**${pct(c.meanAcc)}**`,
          ...ppls.map((t) => num(pplOf(find(c, t)))),
          c.rowsPerSecond.toFixed(2),
        ].join(" | ")
      } |`,
    );
  }
  L.push("", "## Sets", "", "| set | kind | rows | source |", "| --- | --- | --- | --- |");
  for (const s of run.sets) L.push(`| ${s.task} | ${s.kind} | ${s.rows} | \`${s.source}\` |`);
  const perplexity = first.filter((r) => r.kind === "text");
  if (perplexity.length) {
    L.push(
      "",
      "## Perplexity (rolling windows)",
      "",
      "| contender | set | token ppl | word ppl | byte ppl | bits/byte |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const c of rs) {
      for (const p of perplexity) {
        const m = find(c, p.task)!.metrics;
        L.push(
          `| ${c.label} | ${p.task} | ${num(m.token_perplexity)} | ${num(m.word_perplexity)} | ` +
            `${num(m.byte_perplexity)} | ${num(m.bits_per_byte)} |`,
        );
      }
    }
  }
  L.push(
    "",
    "## Throughput (rows per second; tokens run through the model per second)",
    "",
    `| contender | ${first.map((r) => r.task).join(" | ")} | all |`,
    `| --- | ${first.map(() => "---").join(" | ")} | --- |`,
  );
  for (const c of rs) {
    L.push(
      `| ${c.label} | ${
        c.results.map((r) =>
          r.rowsPerSecond.toFixed(2) +
          (r.tokens ? ` (${(r.tokens / Math.max(r.seconds, 1e-9)).toFixed(0)} tok/s)` : "")
        ).join(" | ")
      } | ` +
        `${c.rowsPerSecond.toFixed(2)} |`,
    );
  }
  const trunc = first.filter((r) => r.truncated > 0);
  if (trunc.length) {
    L.push(
      "",
      `Contexts cut on the left to fit the window: ${
        trunc.map((r) => `${r.task} ${r.truncated}/${r.n}`).join(", ")
      }.`,
    );
  }
  for (const m of transfer) {
    L.push(
      "",
      `## Transfer at share ${tag(m.share)} (mask ↓ on task →, accuracy %)`,
      "",
      `![transfer ${tag(m.share)}](transfer_${tag(m.share)}.svg)`,
      "",
      `| mask | ${m.cols.join(" | ")} |`,
      `| --- | ${m.cols.map(() => "---").join(" | ")} |`,
      ...m.rows.map((r, i) =>
        `| ${r} | ${
          m.acc[i].map((v, j) => m.cols[j] === r ? `**${pct(v)}**` : pct(v)).join(" | ")
        } |`
      ),
    );
  }
  L.push("", "Reproduce:", "", "```sh", run.command, "```");
  return L.join("\n") + "\n";
}

/** Methods with masks (not dense, not single masks) and their shares. */
function methodShares(rs: ContenderResult[]) {
  const methods = [
    ...new Set(
      rs.filter((c) => c.method !== "dense" && c.method !== "mask").map((
        c,
      ) => c.method),
    ),
  ];
  const shares = [...new Set(rs.filter((c) => c.method !== "dense").map((c) => c.share))].sort((
    a,
    b,
  ) => a - b);
  return { methods, shares };
}

/** Write every output of a run into `dir` (created); returns the paths written. */
export async function writeEvalOutputs(dir: string, run: EvalRun): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const transfer = run.mode === "transfer" ? transferMatrices(run.results) : [];
  const written: string[] = [];
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    written.push(`${dir}/${name}`);
  };
  await write("eval.json", JSON.stringify({ ...run, transfer }, null, 2) + "\n");
  await write("eval.md", renderMarkdown(run, transfer));
  const rs = run.results;
  const dense = rs.find((c) => c.method === "dense");
  const ref = dense ? 100 * dense.meanAcc : NaN;
  const { methods, shares } = methodShares(rs);
  if (methods.length && shares.length) {
    await write(
      "eval.svg",
      barChartSvg(
        `Mean accuracy (%), ${run.model.name}`,
        shares.map((s) => `share ${tag(s)}`),
        methods.map((m) => ({
          name: m,
          values: shares.map((s) =>
            100 * (rs.find((c) => c.method === m && c.share === s)?.meanAcc ?? NaN)
          ),
        })),
        ref,
      ),
    );
  }
  if (methods.length && shares.length >= 2) {
    await write(
      "curve.svg",
      lineChartSvg(
        `Mean accuracy against share removed, ${run.model.name}`,
        "share of the method (masks named <task>@<share>)",
        "mean accuracy (%)",
        methods.map((m) => ({
          name: m,
          points: rs.filter((c) => c.method === m).map((c): [number, number] => [
            c.share,
            100 * c.meanAcc,
          ]),
        })),
        {
          yRange: [0, 100],
          reference: Number.isFinite(ref) ? { y: ref, label: `dense ${ref.toFixed(1)}` } : null,
        },
      ),
    );
  }
  for (const m of transfer) {
    await write(
      `transfer_${tag(m.share)}.svg`,
      heatmapSvg(
        `Transfer at share ${tag(m.share)}: accuracy (%) of each mask on each task`,
        "mask",
        "task",
        m.rows,
        m.cols,
        m.acc.map((r) => r.map((v) => 100 * v)),
      ),
    );
  }
  return written;
}
