/**
 * `deno task eval`: load a model with the project's engine, greedy-generate every row of the
 * held-out eval split through the chat template, and print per-skill exact-match accuracy
 * (plus general-text perplexity). Defaults to the embedded default model.
 *
 *   deno run -A tools/eval_model.ts [--model DIR] [--backend auto|reference|wasm|webgpu]
 *     [--weights f32|f16|q8] [--per-task N] [--eval FILE] [--out FILE]
 *
 * The full f32 run writes `<model>/eval_engine.json`; other weight formats write a file only
 * with --out.
 */

import { parseArgs } from "node:util";
import {
  type BackendChoice,
  parseWeightDType,
  selectBackend,
} from "../lib/backends/select_backend.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { loadModel } from "../lib/model/model.ts";
import type { SuiteRow } from "../lib/tasks/suite.ts";
import { evaluateRows } from "../lib/eval/task_eval.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    backend: { type: "string", default: "wasm" },
    weights: { type: "string", default: "f32" },
    "per-task": { type: "string", default: "0" },
    eval: { type: "string" },
    out: { type: "string" },
    "max-new": { type: "string", default: "24" },
  },
});
const dir = args.model!;
const evalPath = args.eval ?? `${dir}/eval.jsonl`;
const perTask = Number(args["per-task"]);
const maxNew = Number(args["max-new"]);

const weights = parseWeightDType(args.weights!);
const backend = await selectBackend(args.backend as BackendChoice, {
  weightDType: weights,
  log: (m) => console.error(m),
});
const model = await loadModel(dir, { backend });
const tok = await Tokenizer.load(dir);
let rows = (await Deno.readTextFile(evalPath)).trim().split("\n").map((l) =>
  JSON.parse(l) as SuiteRow
);
if (perTask > 0) {
  const seen = new Map<string, number>();
  rows = rows.filter((r) => {
    const n = seen.get(r.task) ?? 0;
    seen.set(r.task, n + 1);
    return n < perTask;
  });
}

const enc = new TextEncoder();
const evalResult = await evaluateRows(model, tok, rows, { kind: "fixed", mask: null }, {
  maxNew,
  onProgress: (done, total) => {
    if (done % 10 === 0 || done === total) {
      Deno.stderr.writeSync(enc.encode(`\r[eval] ${done}/${total} rows`));
    }
  },
});
console.error();
const stats = new Map(Object.entries(evalResult.perTask));
const perTaskAcc: Record<string, unknown> = {};
console.log(
  `${"task".padEnd(14)}${"acc".padStart(8)}${"n".padStart(6)}${"held-out phr.".padStart(15)}`,
);
let sum = 0, min = 1;
for (const [task, s] of stats) {
  const acc = s.ok / s.n;
  sum += acc;
  min = Math.min(min, acc);
  const held = s.heldOk / Math.max(1, s.heldN);
  perTaskAcc[task] = { acc, n: s.n, held_out_phrasing_acc: held, held_out_n: s.heldN };
  console.log(
    `${task.padEnd(14)}${(acc * 100).toFixed(1).padStart(7)}%${String(s.n).padStart(6)}${
      (held * 100).toFixed(1).padStart(14)
    }%`,
  );
}
const mean = sum / stats.size;
const ppl = evalResult.generalPpl;
const seconds = evalResult.seconds;
console.log(
  `${"mean".padEnd(14)}${(mean * 100).toFixed(1).padStart(7)}%   min ${(min * 100).toFixed(1)}%` +
    `   general ppl ${ppl.toFixed(3)}   (${seconds.toFixed(0)}s, backend ${args.backend}, ` +
    `weights ${weights})`,
);
const result = {
  per_task: perTaskAcc,
  mean_acc: mean,
  min_acc: min,
  general_ppl: ppl,
  seconds,
  weights,
};
const outPath = args.out ??
  (perTask === 0 && weights === "f32" ? `${dir}/eval_engine.json` : undefined);
if (outPath) await Deno.writeTextFile(outPath, JSON.stringify(result, null, 2) + "\n");
