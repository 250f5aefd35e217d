/**
 * `deno task eval`: load a model with the project's engine, greedy-generate every row of the
 * held-out eval split through the chat template, and print per-skill exact-match accuracy
 * (plus general-text perplexity). Defaults to the embedded default model.
 *
 *   deno run -A tools/eval_model.ts [--model DIR] [--backend auto|reference|wasm|webgpu]
 *     [--per-task N] [--eval FILE] [--out FILE]
 */

import { parseArgs } from "node:util";
import { type BackendChoice, selectBackend } from "../lib/backends/select_backend.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { loadModel } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { GENERAL_TASK, type SuiteRow, taskByName } from "../lib/tasks/suite.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    backend: { type: "string", default: "wasm" },
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

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function logSoftmaxAt(x: Float32Array, off: number, v: number, target: number): number {
  let m = -Infinity;
  for (let i = 0; i < v; i++) m = Math.max(m, x[off + i]);
  let s = 0;
  for (let i = 0; i < v; i++) s += Math.exp(x[off + i] - m);
  return x[off + target] - m - Math.log(s);
}

const backend = await selectBackend(args.backend as BackendChoice, {
  log: (m) => console.error(m),
});
const model = await loadModel(dir, { backend });
const tok = await Tokenizer.load(dir);
const eos = new Set(tok.eosTokenIds);
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

const stats = new Map<string, { ok: number; n: number; heldOk: number; heldN: number }>();
let nll = 0, nTok = 0, done = 0, genTokens = 0;
const t0 = performance.now();
const enc = new TextEncoder();
for (const r of rows) {
  if (r.task === GENERAL_TASK) {
    const ids = [tok.bosTokenId!, ...tok.encode(r.text, { addSpecialTokens: false })];
    const seq = new Sequence(model, { maxTokens: ids.length + 1 });
    const logits = await seq.prefill(Int32Array.from(ids.slice(0, -1)), { allLogits: true });
    const v = model.config.vocabSize;
    for (let t = 0; t + 1 < ids.length; t++) nll -= logSoftmaxAt(logits, t * v, v, ids[t + 1]);
    nTok += ids.length - 1;
    seq.free();
  } else {
    const text = tok.applyChatTemplate([{ role: "user", content: r.prompt! }], {
      addGenerationPrompt: true,
    });
    const ids = tok.encode(text, { addSpecialTokens: false });
    const seq = new Sequence(model, { maxTokens: ids.length + maxNew + 1 });
    let logits = await seq.prefill(Int32Array.from(ids));
    const out: number[] = [];
    for (let i = 0; i < maxNew; i++) {
      const next = argmax(logits);
      if (eos.has(next)) break;
      out.push(next);
      logits = await seq.decode(next);
    }
    seq.free();
    genTokens += out.length;
    const reply = tok.decode(out, { skipSpecialTokens: true });
    const ok = taskByName(r.task).check(reply, r.answer!);
    const s = stats.get(r.task) ?? { ok: 0, n: 0, heldOk: 0, heldN: 0 };
    s.ok += ok ? 1 : 0;
    s.n++;
    if (r.held_out_phrasing) {
      s.heldOk += ok ? 1 : 0;
      s.heldN++;
    }
    stats.set(r.task, s);
  }
  done++;
  if (done % 10 === 0 || done === rows.length) {
    const sec = (performance.now() - t0) / 1000;
    const ok = [...stats.values()].reduce((a, s) => a + s.ok, 0);
    const n = [...stats.values()].reduce((a, s) => a + s.n, 0);
    const line =
      `\r[eval] ${done}/${rows.length} rows  acc so far ${(100 * ok / n).toFixed(1)}%  ` +
      `${sec.toFixed(0)}s  ${(genTokens / sec).toFixed(0)} gen tok/s `;
    await Deno.stderr.write(enc.encode(line));
  }
}
console.error();

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
const ppl = nTok ? Math.exp(nll / nTok) : NaN;
const seconds = (performance.now() - t0) / 1000;
console.log(
  `${"mean".padEnd(14)}${(mean * 100).toFixed(1).padStart(7)}%   min ${(min * 100).toFixed(1)}%` +
    `   general ppl ${ppl.toFixed(3)}   (${seconds.toFixed(0)}s, backend ${args.backend})`,
);
const result = { per_task: perTaskAcc, mean_acc: mean, min_acc: min, general_ppl: ppl, seconds };
const outPath = args.out ?? (perTask === 0 ? `${dir}/eval_engine.json` : undefined);
if (outPath) await Deno.writeTextFile(outPath, JSON.stringify(result, null, 2) + "\n");
