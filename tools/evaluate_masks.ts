/**
 * `deno task eval:masks`: the pruning-method table on the task suite's held-out split. For each
 * sparsity in the mask set: Wanda-sp, FLAP, SEAP generic, SEAP with each task's own mask
 * (oracle task), and SEAP auto-routed (the router picks the mask, as the server does); plus
 * the dense model. Writes evaluation.{json,md,svg} beside the masks.
 *
 *   deno task eval:masks [--model DIR] [--masks DIR] [--per-task 40] [--backend wasm]
 *     [--weights f32|f16|q8]
 */

import { parseArgs } from "node:util";
import {
  type BackendChoice,
  parseWeightDType,
  selectBackend,
} from "../lib/backends/select_backend.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { type EvalResult, evaluateRows, type MaskPicker } from "../lib/eval/task_eval.ts";
import { loadModel } from "../lib/model/model.ts";
import type { PreparedMask } from "../lib/model/prepared_mask.ts";
import { maskSparsity } from "../lib/model/mask.ts";
import { loadCatalog } from "../lib/server/engine_handle.ts";
import type { SuiteRow } from "../lib/tasks/suite.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { barChartSvg } from "../lib/eval/bar_chart_svg.ts";

const HELP = `usage: deno task eval:masks [options]
  --model DIR      model folder (default: the embedded default model)
  --masks DIR      mask set (default: masks/<model name>)
  --eval FILE      held-out rows (default: <model>/eval.jsonl)
  --per-task N     rows per task (default 40; 0 = all)
  --backend NAME   auto | reference | wasm | webgpu (default wasm)
  --weights FMT    weight storage: f32 | f16 | q8 (default f32)
  --out DIR        where evaluation.{json,md,svg} go (default: the mask folder for f32
                   weights; required for f16 / q8, so the committed f32 table stays)`;

const { values: a } = parseArgs({
  options: {
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    masks: { type: "string" },
    eval: { type: "string" },
    "per-task": { type: "string", default: "40" },
    backend: { type: "string", default: "wasm" },
    weights: { type: "string", default: "f32" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (a.help) {
  console.log(HELP);
  Deno.exit(0);
}
if (a.weights !== "f32" && !a.out) {
  console.error(`--weights ${a.weights} needs --out DIR (the mask folder holds the f32 table)`);
  Deno.exit(2);
}
const model = await loadModel(a.model!, {
  backend: await selectBackend(a.backend as BackendChoice, {
    weightDType: parseWeightDType(a.weights!),
  }),
});
const tok = await Tokenizer.load(a.model!);
const maskDir = a.masks ?? new URL(`../masks/${model.name}`, import.meta.url).pathname;
const cat = await loadCatalog(model, maskDir);
const perTask = Number(a["per-task"]);
let rows = (await Deno.readTextFile(a.eval ?? `${a.model}/eval.jsonl`)).trim().split("\n")
  .map((l) => JSON.parse(l) as SuiteRow);
if (perTask > 0) {
  const seen = new Map<string, number>();
  rows = rows.filter((r) => {
    const n = (seen.get(r.task) ?? 0) + 1;
    seen.set(r.task, n);
    return n <= perTask;
  });
}

const methods: { name: string; sparsity: number; pick: MaskPicker; achieved: number }[] = [
  { name: "dense", sparsity: 0, pick: { kind: "fixed", mask: null }, achieved: 0 },
];
/** Fraction of prunable units removed (heads weighted by cost), averaged over masks. */
const achieved = (ms: (PreparedMask | null | undefined)[]) =>
  ms.reduce((a, m) => a + (m ? maskSparsity(m.mask, model.config) : 0), 0) / ms.length;
for (const s of cat.sparsities) {
  const at = (kind: string, task: string | null) =>
    cat.entries.find((e) => e.kind === kind && e.task === task && Math.abs(e.sparsity - s) < 1e-6)
      ?.prepared;
  for (const base of ["wanda-sp", "flap"]) {
    const m = at("baseline", base);
    if (m) {
      methods.push({
        name: base,
        sparsity: s,
        pick: { kind: "fixed", mask: m },
        achieved: achieved([m]),
      });
    }
  }
  const generic = at("generic", null) ?? null;
  if (generic) {
    methods.push({
      name: "seap-generic",
      sparsity: s,
      pick: { kind: "fixed", mask: generic },
      achieved: achieved([generic]),
    });
  }
  const own = new Map<string, PreparedMask>();
  for (const e of cat.entries) {
    if (e.kind === "task" && Math.abs(e.sparsity - s) < 1e-6) own.set(e.task!, e.prepared);
  }
  if (own.size > 0) {
    methods.push({
      name: "seap-task (oracle)",
      sparsity: s,
      pick: { kind: "per-task", masks: own, fallback: generic },
      achieved: achieved([...own.values()]),
    });
  }
  if (cat.router) {
    const r = cat.router;
    methods.push({
      name: "seap-auto (routed)",
      sparsity: s,
      achieved: achieved([...own.values()]),
      pick: {
        kind: "routed",
        layer: r.layer,
        choose: (f) => cat.resolveRouted({ sparsity: s }, r.route(f)).entry.prepared,
      },
    });
  }
}

const enc = new TextEncoder();
const results: { name: string; sparsity: number; achieved: number; r: EvalResult }[] = [];
const t0 = performance.now();
for (const [i, m] of methods.entries()) {
  const r = await evaluateRows(model, tok, rows, m.pick, {
    onProgress: (d, n) => {
      if (d % 20 === 0 || d === n) {
        const el = (performance.now() - t0) / 1000;
        const frac = (i + d / n) / methods.length;
        Deno.stderr.writeSync(enc.encode(
          `\r[evaluate] ${m.name}@${m.sparsity} ${d}/${n}  method ${i + 1}/${methods.length}  ` +
            `${el.toFixed(0)}s elapsed, ETA ${(el / frac - el).toFixed(0)}s   `,
        ));
      }
    },
  });
  results.push({ name: m.name, sparsity: m.sparsity, achieved: m.achieved, r });
}
Deno.stderr.writeSync(enc.encode("\n"));

const tasks = Object.keys(results[0].r.perTask);
const pct = (x: number) => (100 * x).toFixed(1);
const lines = [
  `# Pruning methods on the held-out task suite — ${model.name}`,
  "",
  `${rows.length} rows (${perTask > 0 ? `${perTask} per task` : "all"}), greedy decoding, ` +
  `backend ${model.backend.name}. Accuracy in %, perplexity on general text. "sparsity" is the ` +
  "method's target; SEAP's logistic schedule applies it to the prunable layers only (the first " +
  'and last layers stay dense), so "pruned" gives the share of all prunable units removed ' +
  "(heads weighted by their cost).",
  "",
  `| method | sparsity | pruned | ${tasks.join(" | ")} | mean | held-out phrasings | ppl |`,
  `| --- | --- | --- | ${tasks.map(() => "---").join(" | ")} | --- | --- | --- |`,
];
for (const { name, sparsity, achieved: pruned, r } of results) {
  const held = Object.values(r.perTask).reduce((a, s) => a + s.heldOk, 0) /
    Math.max(1, Object.values(r.perTask).reduce((a, s) => a + s.heldN, 0));
  lines.push(
    `| ${name} | ${sparsity} | ${pct(pruned)} | ${
      tasks.map((t) => pct(r.perTask[t].ok / r.perTask[t].n)).join(" | ")
    } | ` +
      `**${pct(r.meanAcc)}** | ${pct(held)} | ${r.generalPpl.toFixed(3)} |`,
  );
}
lines.push(
  "",
  "Reproduce: `deno task eval:masks" + (perTask !== 40 ? ` --per-task ${perTask}` : "") + "`",
);
const outDir = a.out ?? maskDir;
await Deno.writeTextFile(`${outDir}/evaluation.md`, lines.join("\n") + "\n");
await Deno.writeTextFile(
  `${outDir}/evaluation.json`,
  JSON.stringify({ model: model.name, rows: rows.length, results }, null, 2) + "\n",
);
await Deno.writeTextFile(
  `${outDir}/evaluation.svg`,
  barChartSvg(
    "Mean accuracy on held-out tasks (%)",
    [...new Set(results.map((x) => x.sparsity))].filter((s) => s > 0).map((s) =>
      `${s * 100}% pruned`
    ),
    [...new Set(results.filter((x) => x.sparsity > 0).map((x) => x.name))].map((name) => ({
      name,
      values: [...new Set(results.map((x) => x.sparsity))].filter((s) => s > 0).map((s) =>
        100 * (results.find((x) => x.name === name && x.sparsity === s)?.r.meanAcc ?? NaN)
      ),
    })),
    100 * results[0].r.meanAcc,
  ),
);
console.log(lines.join("\n"));
console.log(`\nwrote ${outDir}/evaluation.{md,json,svg}`);
