/**
 * `deno task eval`: one evaluation harness for any Hugging Face model folder, any mask set, any
 * backend and weight format. See HELP below (`deno task eval --help`).
 */

import { parseArgs } from "node:util";
import type { WeightDType } from "../lib/backends/backend.ts";
import { type BackendChoice, selectBackend } from "../lib/backends/select_backend.ts";
import { buildMasks, DEFAULT_MASK_PARAMS } from "../lib/calibrate/build_masks.ts";
import { decodeStats } from "../lib/calibrate/collect_stats.ts";
import { ProgressBar } from "../lib/calibrate/progress.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { catalogContenders, type Contender } from "../lib/eval/contenders.ts";
import { type Dataset, loadDatasets } from "../lib/eval/datasets.ts";
import { type EvalRun, writeEvalOutputs } from "../lib/eval/eval_report.ts";
import { runHarness, sampleRows } from "../lib/eval/harness.ts";
import { parseSelectors, selectContenders } from "../lib/eval/mask_selector.ts";
import { maskCost } from "../lib/model/mask.ts";
import { loadModel, readProjections } from "../lib/model/model.ts";
import { catalogKind, loadCatalog, MaskCatalog } from "../lib/masks/catalog.ts";
import { loadMaskSet } from "../lib/masks/mask_io.ts";
import type { Router } from "../lib/masks/router.ts";
import type { SuiteRow } from "../lib/tasks/suite.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";

const HELP = `usage: deno task eval [options]

Evaluates a model under several ways of choosing pruning masks ("contenders") on the task suite
and on benchmark sets, and writes eval.json, eval.md and SVG plots to --out.

Model and engine
  --model DIR         Hugging Face model folder (default: the embedded default model)
  --backend NAME      reference | wasm | webgpu | auto (default wasm)
  --weights DTYPE     weight storage: f32 | f16 | q8 (default f32; passed to the backend)

Data (rows per task: --limit, chosen by a seeded shuffle or the first ones, kept in file order)
  --suite FILE|none   task-suite rows, exact match through the chat template
                      (default <model>/eval.jsonl when it exists and no --data is given)
  --data PATH         benchmark rows (repeatable or comma-separated): a .jsonl file, or a folder
                      of <task>.<split>.jsonl files (one split per task: --split, else test).
                      Row shapes: multiple choice {context, choices, gold} -> acc, acc_norm;
                      partial {contexts, continuation, gold} -> acc (WinoGrande);
                      generation {context, answer} -> exact_match of the last number (GSM8K);
                      plain text {text} -> rolling-window perplexity (WikiText-2)
  --split NAME        split read from data folders (default validation)
  --limit N           at most N rows per task (default 0: all)
  --seed N            seed of the row sample (default 1)
  --sample HOW        seeded (default) | first: the first --limit rows of each task

Masks
  --mask-set DIR|none calibrated mask set (default masks/<model name> when it exists)
  --masks SEL         which contenders to run (repeatable; ';' separates several). A selector is
                      key=value[,key=value...] with keys method, task, share, name; values take
                      '|' alternatives and * ? globs; or a bare glob over mask names, which runs
                      that one mask on every row. Methods: dense, wanda-sp, flap, seap-generic,
                      seap-task (each row gets its task's own mask: the oracle), seap-validated
                      (validated task masks, when the set has them), seap-routed (the
                      router picks, as the server does), mask (a single mask; task = its task).
                      Default: every method at every share. Examples:
                        --masks 'method=flap|seap-routed,share=0.5'
                        --masks 'reverse@*'            (the reverse mask at every share)
                        --masks 'method=mask,task=reverse|sort_digits,share=0.2'
  --shares LIST       only these shares (e.g. 0.2,0.5); with --from-stats, the shares to build
  --no-dense          leave out the dense model (kept by default as the reference row)
  --transfer          every task's mask (plus generic and dense) on every task: a matrix per
                      share, written to eval.md/eval.json and transfer_<share>.svg
  --from-stats FILE   curve mode: build masks at --shares from saved calibration statistics
                      (e.g. masks/<model>/stats.safetensors) with lib/calibrate's buildMasks and
                      the default mask parameters, no statistics pass; the router (for
                      seap-routed) comes from --mask-set. curve.svg plots accuracy vs share

Decoding
  --max-new N         answer tokens per task-suite row (default 24)
  --max-gen N         generated tokens per generation row (default 256)
  --max-tokens N      context window (default: the model's); longer contexts are cut on the left
  --window N          rolling-perplexity window (default min(window, 1024))
  --stride N          tokens predicted per perplexity window (default: the window)

Output
  --out DIR           output folder (default: a new temporary folder; never a committed one)
  --no-progress       no progress bar
  -h, --help          this text`;

const { values: a } = parseArgs({
  options: {
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    backend: { type: "string", default: "wasm" },
    weights: { type: "string", default: "f32" },
    suite: { type: "string" },
    data: { type: "string", multiple: true, default: [] },
    split: { type: "string", default: "validation" },
    limit: { type: "string", default: "0" },
    seed: { type: "string", default: "1" },
    sample: { type: "string", default: "seeded" },
    "mask-set": { type: "string" },
    masks: { type: "string", multiple: true, default: [] },
    shares: { type: "string" },
    "no-dense": { type: "boolean", default: false },
    transfer: { type: "boolean", default: false },
    "from-stats": { type: "string" },
    "max-new": { type: "string", default: "24" },
    "max-gen": { type: "string", default: "256" },
    "max-tokens": { type: "string" },
    window: { type: "string" },
    stride: { type: "string" },
    out: { type: "string" },
    "no-progress": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

function fail(msg: string): never {
  console.error(`eval: ${msg}\n(deno task eval --help for usage)`);
  Deno.exit(2);
}

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

if (a.help) {
  console.log(HELP);
  Deno.exit(0);
}
const t0 = performance.now();
const limit = int("limit", a.limit, 0)!;
const seed = int("seed", a.seed, 0)!;
if (a.sample !== "seeded" && a.sample !== "first") {
  fail(`--sample must be seeded or first, got "${a.sample}"`);
}
const first = a.sample === "first";
const maxNew = int("max-new", a["max-new"], 1)!;
const maxGen = int("max-gen", a["max-gen"], 1)!;
const maxTokens = int("max-tokens", a["max-tokens"], 2);
const window = int("window", a.window, 2);
const stride = int("stride", a.stride, 1);
if (!["reference", "wasm", "webgpu", "auto"].includes(a.backend!)) {
  fail(`--backend must be reference, wasm, webgpu or auto, got "${a.backend}"`);
}
if (!["f32", "f16", "q8"].includes(a.weights!)) {
  fail(`--weights must be f32, f16 or q8, got "${a.weights}"`);
}
const shares = a.shares?.split(",").map((s) => {
  const n = Number(s);
  if (!s.trim() || !(n > 0 && n < 1)) fail(`--shares: "${s}" is not a share in (0, 1)`);
  return n;
});
if (a["from-stats"] && !shares) fail("--from-stats needs --shares (e.g. 0.1,0.2,0.3,0.4,0.5,0.6)");
let selectors;
try {
  selectors = parseSelectors(a.masks!);
} catch (e) {
  fail((e as Error).message);
}

const modelDir = a.model!.replace(/\/+$/, "");
const backend = await selectBackend(a.backend as BackendChoice, {
  weightDType: a.weights as WeightDType,
  log: (m) => console.error(m),
}).catch((e) => fail(`--backend ${a.backend} --weights ${a.weights}: ${e.message}`));
if (backend.weightDType !== a.weights) {
  console.error(
    `eval: the ${backend.name} backend stores ${backend.weightDType} weights (asked for ${a.weights})`,
  );
}
const model = await loadModel(modelDir, { backend }).catch((e) =>
  fail(`--model ${modelDir}: ${e.message}`)
);
const tok = await Tokenizer.load(modelDir).catch((e) => fail(`--model ${modelDir}: ${e.message}`));

// Data.
const dataPaths = a.data!.flatMap((d) => d.split(",")).filter(Boolean);
let datasets: Dataset[] = [];
try {
  datasets = await loadDatasets(dataPaths, a.split);
} catch (e) {
  fail((e as Error).message);
}
datasets = datasets.map((d) =>
  ({ ...d, rows: sampleRows(d.rows as unknown[], limit, seed, () => d.task, first) }) as Dataset
);
const suitePath = a.suite ??
  (dataPaths.length === 0 && await exists(`${modelDir}/eval.jsonl`)
    ? `${modelDir}/eval.jsonl`
    : "none");
let suite: SuiteRow[] = [];
if (suitePath !== "none") {
  const text = await Deno.readTextFile(suitePath).catch((e) => fail(`--suite: ${e.message}`));
  suite = text.trim().split("\n").map((l, i) => {
    const r = JSON.parse(l) as SuiteRow;
    if (typeof r.task !== "string" || (r.prompt === undefined && r.text === undefined)) {
      fail(`${suitePath}:${i + 1}: not a task-suite row (needs task and prompt/answer or text)`);
    }
    return r;
  });
  suite = sampleRows(suite, limit, seed, (r) => r.task, first);
}
if (suite.length === 0 && datasets.length === 0) {
  fail("nothing to evaluate: give --data, or --suite (the model folder has no eval.jsonl)");
}

// Masks.
const setDir = a["mask-set"] ??
  new URL(`../masks/${model.name}`, import.meta.url).pathname;
const haveSet = setDir !== "none" && await exists(`${setDir}/manifest.json`);
if (a["mask-set"] && a["mask-set"] !== "none" && !haveSet) {
  fail(`--mask-set ${setDir}: no manifest.json there`);
}
let catalog: MaskCatalog;
let maskSource: string;
if (a["from-stats"]) {
  const path = a["from-stats"];
  const bytes = await Deno.readFile(path).catch((e) => fail(`--from-stats: ${e.message}`));
  let stats;
  try {
    stats = decodeStats(bytes, path);
  } catch (e) {
    fail((e as Error).message);
  }
  if (stats.fingerprint !== model.fingerprint) {
    fail(`${path}: statistics of model "${stats.modelName}", not of ${model.name} (fingerprint)`);
  }
  let router: Router | null = null;
  if (haveSet) router = (await loadMaskSet(setDir, model).catch((e) => fail(e.message))).router;
  const proj = await readProjections(modelDir, model.config);
  const built = buildMasks(stats, proj, { ...DEFAULT_MASK_PARAMS, sparsities: shares! });
  catalog = new MaskCatalog(
    model,
    // As the server's catalog names them: the paper's unvalidated task masks (method
    // "seap-task-raw", beside validated ones) are "<task>.raw" baselines.
    built.map((b) => ({ mask: b.mask, ...catalogKind(b.method, b.task), sparsity: b.sparsity })),
    router,
    { source: path },
  );
  maskSource = `${path} (built at ${shares!.join(", ")}; router ${router ? setDir : "none"})`;
} else if (haveSet) {
  catalog = await loadCatalog(model, setDir).catch((e) => fail(e.message));
  maskSource = setDir;
} else {
  catalog = new MaskCatalog(model, [], null, { source: "none" });
  maskSource = "none (dense only)";
}

// The cost measure of the `removed` column (docs/design.md, Masks).
const costMeasure = "share of decoder-layer parameters removed (lib/model/mask.ts, maskCost)";
let all = catalogContenders(catalog, (m) => maskCost(m, model.config).params);
if (shares && !a["from-stats"]) {
  all = all.filter((c) => c.method === "dense" || shares.some((s) => Math.abs(s - c.share) < 1e-6));
}
let contenders: Contender[];
if (a.transfer) {
  // Transfer rows are single masks: every selector is read as one over single masks.
  const sels = selectors.length ? selectors.map((s) => ({ ...s, method: ["mask"] })) : [
    { method: ["mask"] },
  ];
  const base = selectContenders(all, sels);
  contenders = base.filter((c) => c.method === "mask" && c.task !== null && !isBaseline(c));
  if (contenders.length === 0) fail("--transfer: no task masks selected");
} else {
  contenders = selectContenders(all, selectors);
}
function isBaseline(c: Contender): boolean {
  return catalog.entries.some((e) => e.name === c.name && e.kind === "baseline");
}
contenders = contenders.filter((c) => c.method !== "dense");
if (!a["no-dense"]) contenders.unshift(all[0]);
if (contenders.length === 0) fail("no contender selected (see --masks in --help)");

const out = a.out ?? await Deno.makeTempDir({ prefix: "seap-eval-" });
console.error(
  `eval: ${model.name} on ${backend.name} (${a.weights}); ${contenders.length} contenders ` +
    `(${contenders.map((c) => c.label).join(", ")}); ${suite.length} suite rows, ` +
    `${datasets.map((d) => `${d.task} ${d.rows.length}`).join(", ") || "no benchmark sets"}`,
);
let bar: ProgressBar | null = null;
const results = await runHarness({
  model,
  tok,
  contenders,
  suite,
  datasets,
  maxNew,
  bench: { maxTokens, maxGen, window, stride },
  progress: a["no-progress"] ? undefined : (done, total, note) => {
    bar ??= new ProgressBar(total, "[eval]");
    bar.tick(done, note);
  },
});

const quote = (s: string) => /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
const suiteTasks = [...new Set(suite.map((r) => r.task))];
const run: EvalRun = {
  model: { name: model.name, dir: modelDir, fingerprint: model.fingerprint },
  backend: backend.name,
  weights: backend.weightDType,
  seed,
  limit,
  first,
  masks: maskSource,
  costMeasure,
  mode: a.transfer ? "transfer" : a["from-stats"] ? "curve" : "methods",
  command: ["deno task eval", ...Deno.args.map(quote)].join(" "),
  sets: [
    ...suiteTasks.map((t) => ({
      task: t,
      kind: "suite",
      rows: suite.filter((r) => r.task === t).length,
      source: suitePath,
    })),
    ...datasets.map((d) => ({ task: d.task, kind: d.kind, rows: d.rows.length, source: d.source })),
  ],
  results,
  seconds: (performance.now() - t0) / 1000,
};
const files = await writeEvalOutputs(out, run);
console.log(await Deno.readTextFile(`${out}/eval.md`));
console.log(`wrote ${files.join(", ")}`);
catalog.release();
