/**
 * Bench driver (`deno task bench`). Parts live in their own files and are called from here:
 *   gemv: masked GEMV GB/s (bench/gemv_bench.ts);
 *   ffn: one masked SwiGLU FFN layer, four ops vs the fused op (bench/ffn_bench.ts).
 * Flags: `--only=gemv,ffn` (comma list of parts), `--quick` (shorter timed runs),
 * `--weights=f32,f16,q8` (the WASM weight formats the decode and llama parts run; default all
 * three).
 *   decode: decode/prefill tok/s, onnxruntime-web vs ours dense vs SEAP masks (decode_bench.ts);
 *   memory: resident memory with 1 and 10 masks (memory_bench.ts, fresh processes);
 *   llama: this engine vs llama.cpp on the same GGUF-exported weights, f32/f16/q8_0, dense and
 *          a SEAP 50% mask, interleaved rounds (llama_cpp_bench.ts; needs
 *          `deno task llama-cpp:install`, skipped with a line otherwise; `--prompt=N` sets the
 *          prompt length, default 32);
 *   threads: the WASM backend on 1 vs 2 threads (SEAP_THREADS), every weight format, dense and
 *          a SEAP 50% mask, and llama.cpp at 1 and 2 threads when installed, interleaved rounds,
 *          with the load average around it (threads_bench.ts);
 *   wasm64: decode/prefill on the wasm32 and the memory64 kernel builds side by side
 *          (wasm64_bench.ts; only with `--only=wasm64`; flags `--tokens`, `--rounds`);
 *   scale: random models in real shapes (SmolLM2, Llama-3.2), per weight format: load time,
 *          peak RSS, prefill/decode/calibration tok/s, memory-safe context (scale_bench.ts;
 *          only with `--only=scale`; flags `--shapes`, `--formats`, `--tokens`, `--prompt`,
 *          `--samples`, `--dir`);
 *   calib: the calibration statistics pass vs a dense prefill of the same tokens, same backend
 *          and format (calib_bench.ts; only with `--only=calib`; flags `--shapes`, `--model`,
 *          `--formats`, `--backend`, `--samples`, `--max-tokens`, `--rounds`, `--dir`).
 */

import { formatFfnTable, runFfnBench } from "./ffn_bench.ts";
import { formatGemvTable, runGemvBench } from "./gemv_bench.ts";
import {
  type DecodeRow,
  formatDecodeTable,
  runDecodeBench,
  runDecodeBenchMulti,
  smollmShapedModel,
} from "./decode_bench.ts";
import { runOnnxDecodeBench } from "./onnx_decode_bench.ts";
import { formatMemoryTable, type MemoryRow } from "./memory_bench.ts";
import {
  formatLlamaCppTable,
  llamaBenchMissing,
  type LlamaBenchModel,
  runLlamaCppBench,
} from "./llama_cpp_bench.ts";
import { formatScaleTable, parseScaleArgs, runScaleBench } from "./scale_bench.ts";
import { formatThreadsTable, runThreadsBench, smollmThreadsCase } from "./threads_bench.ts";
import { formatCutCostTable, runCutCostBench } from "./thread_cut_bench.ts";
import { formatWasm64Table, parseWasm64Args, runWasm64Bench } from "./wasm64_bench.ts";
import { formatCalibTable, parseCalibArgs, runCalibBench } from "./calib_bench.ts";
import { seapShapedFamily, seapShapedMask } from "./decode_bench.ts";
import { readConfig } from "../lib/model/model.ts";
import type { Backend, WeightDType } from "../lib/backends/backend.ts";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { ReferenceBackend } from "../lib/backends/reference.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { isFallbackAdapter, requestWebGpuAdapter, WebGpuBackend } from "../lib/backends/webgpu.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { loadModel } from "../lib/model/model.ts";
import { layoutMasks, loadMaskSet } from "../lib/masks/mask_io.ts";
import type { Mask } from "../lib/model/mask.ts";

/**
 * The default model's real masks, if calibrated: those the server lays the FFN out by
 * (`layoutMasks`) and those to time (generic and one task per sparsity).
 */
async function defaultModelMasks(): Promise<{ timed: Mask[]; all: Mask[] } | undefined> {
  try {
    const model = await loadModel(DEFAULT_MODEL_DIR);
    const dir = new URL(`../masks/${model.name}`, import.meta.url).pathname;
    const set = await loadMaskSet(dir, model);
    const pick = set.manifest.masks.filter((m) =>
      m.method === "seap-generic" || (m.method === "seap" && m.task === set.manifest.masks.find(
            (x) => x.method === "seap",
          )?.task)
    );
    return { timed: pick.map((m) => set.masks.get(m.name)!), all: layoutMasks(set) };
  } catch (e) {
    console.error(`bench: default model masks unavailable (${(e as Error).message})`);
    return undefined;
  }
}

/** WASM weight formats the decode part runs (`--weights=`). */
const WEIGHTS: WeightDType[] = (Deno.args.find((a) => a.startsWith("--weights="))?.slice(10) ??
  "f32,f16,q8").split(",").map((w) => parseWeightDType(w));

async function decodePart(quick: boolean): Promise<string> {
  const tokens = quick ? 8 : 16;
  const rows: DecodeRow[] = [];
  const adapter = await requestWebGpuAdapter();
  const hwGpu = adapter !== null && !isFallbackAdapter(adapter);
  for (
    const [dir, masks] of [
      [await smollmShapedModel(), undefined],
      [DEFAULT_MODEL_DIR, await defaultModelMasks()],
    ] as const
  ) {
    const small = dir === DEFAULT_MODEL_DIR;
    console.error(`bench decode: ${dir}`);
    rows.push(await runOnnxDecodeBench(dir, { tokens }));
    const backends: (() => Promise<Backend>)[] = [() => Promise.resolve(new ReferenceBackend())];
    // WebGPU on a software adapter is for information only, and only on the small model.
    if (adapter && (hwGpu || small)) backends.push(() => WebGpuBackend.create({ adapter }));
    const opts = {
      tokens,
      masks: masks ? [...masks.timed] : undefined,
      ...(masks ? { layoutFrom: masks.all } : {}),
    };
    for (const make of backends) rows.push(...await runDecodeBench(dir, await make(), opts));
    // The WASM weight formats side by side: every (format, mask) pair in the same rounds. The
    // default model decodes a token in ~2 ms: more tokens and rounds per timing there, so that a
    // round is not one scheduler hiccup on the shared machine.
    const wasm = [];
    for (const weightDType of WEIGHTS) wasm.push(await WasmBackend.create({ weightDType }));
    rows.push(
      ...await runDecodeBenchMulti(dir, wasm, {
        ...opts,
        tokens: small ? 8 * tokens : tokens,
        rounds: small ? 5 : 3,
      }),
    );
  }
  return "## Decode and prefill, dense vs SEAP masks (single thread)\n\n" +
    formatDecodeTable(rows) +
    "\n\nSmolLM2-135M shape: random weights, SEAP-shaped masks (UL-LD schedule, random kept " +
    "units). Default model: its calibrated generic and task masks. ideal = weight bytes read " +
    "per token, dense / masked.";
}

async function memoryPart(): Promise<string> {
  const rows: MemoryRow[] = [];
  for (const dir of [await smollmShapedModel(), DEFAULT_MODEL_DIR]) {
    for (const backend of ["wasm", "reference"]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("./memory_bench.ts", import.meta.url).pathname, dir, backend],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
      rows.push(JSON.parse(text));
    }
  }
  return "## Resident memory with 1 and with 10 masks (each mask: indices + bias vectors)\n\n" +
    formatMemoryTable(rows);
}

async function llamaPart(quick: boolean): Promise<string> {
  const title = "## This engine vs llama.cpp, same weights (GGUF export), single thread\n\n";
  const missing = await llamaBenchMissing();
  if (missing) return title + `skipped: ${missing}`;
  const models: LlamaBenchModel[] = [];
  const smol = await smollmShapedModel();
  const { config: cfg } = await readConfig(smol);
  models.push({
    dir: smol,
    mask: seapShapedMask(cfg, 0.5, 0),
    family: seapShapedFamily(cfg, [0.2, 0.5]),
  });
  const real = await defaultModelMasks();
  const half = real?.all.find((m) => m.name === "reverse@0.5") ??
    real?.timed.find((m) => m.name.endsWith("@0.5") && !m.name.startsWith("generic"));
  if (real && half) models.push({ dir: DEFAULT_MODEL_DIR, mask: half, family: real.all });
  const types = WEIGHTS.map((w) => (w === "q8" ? "q8_0" : w));
  const promptArg = Deno.args.find((a) => a.startsWith("--prompt="))?.slice(9) ?? "32";
  const promptLen = Number(promptArg);
  if (!Number.isInteger(promptLen) || promptLen < 1) {
    throw new Error(`bench: --prompt must be a positive integer, got "${promptArg}"`);
  }
  const { rows, notes } = await runLlamaCppBench(
    models,
    quick ? { rounds: 3, steps: 16, types, promptLen } : { rounds: 5, steps: 32, types, promptLen },
  );
  return title + formatLlamaCppTable(rows) + "\n\n" +
    [
      ...notes,
      `Prompt of ${promptLen} tokens, then greedy decode; the engine on the WASM backend ` +
      "(f32/f16/q8 weights), " +
      "llama.cpp through node-llama-cpp 3.21.1 (its per-token overhead included) with 1 thread. " +
      "The masked rows: this engine with the mask on shared weights; llama.cpp with the " +
      "physically pruned deci export of the same mask. Ratios are medians (bests) of the rounds.",
    ].join("\n");
}

async function threadsPart(quick: boolean): Promise<string> {
  const title = "## WASM threads (SEAP_THREADS): 1 vs 2 threads, same model, prompt and tokens\n\n";
  const opts = {
    formats: WEIGHTS,
    threads: [1, 2],
    ...(quick ? { rounds: 3, steps: 16 } : { rounds: 5, steps: 32 }),
  };
  const smol = await smollmThreadsCase();
  const parts = [formatThreadsTable(await runThreadsBench(smol.dir, smol.masks, opts))];
  const real = await defaultModelMasks();
  const half = real?.all.find((m) => m.name === "reverse@0.5");
  if (real && half) {
    const res = await runThreadsBench(DEFAULT_MODEL_DIR, { mask: half, family: real.all }, {
      ...opts,
      steps: 4 * opts.steps,
      llama: false,
    });
    parts.push(formatThreadsTable(res));
  }
  parts.push(
    "What decode's cuts would cost on one thread, and a cut op's synchronisation " +
      "(thread_cut_bench.ts):\n\n" +
      formatCutCostTable(await runCutCostBench(quick ? { rounds: 5 } : {})),
  );
  return title + parts.join("\n\n") + "\n\nPrompt of 32 tokens, then greedy decode. Results " +
    "are bit-identical at every thread count (tests/wasm_threads_test.ts); decode cuts the " +
    "matmuls and attention of >= 2^18 multiply-adds, prefill every op (docs/design.md, WASM " +
    "threads). On a machine shared by several sessions the scheduler gives each session a fair " +
    "share of the cores, so a second thread can split that share but not add to it.";
}

/** One bench part: runs and returns its markdown report. */
type Part = (quick: boolean) => Promise<string>;

const PARTS: Record<string, Part> = {
  gemv: async (quick) => {
    const results = await runGemvBench(quick ? { minMs: 40, reps: 2 } : {});
    return "## Masked GEMV (single thread, weights out of cache)\n\n" + formatGemvTable(results);
  },
  ffn: async (quick) => {
    const results = await runFfnBench(quick ? { minMs: 40, reps: 2 } : {});
    return "## Masked FFN layer, SmolLM2-135M, decode (bundled [I, 3H])\n\n" +
      formatFfnTable(results);
  },
  decode: decodePart,
  memory: () => memoryPart(),
  llama: llamaPart,
  threads: threadsPart,
  scale: async () => {
    const opts = parseScaleArgs(Deno.args);
    return "## Scale: random models in real shapes, WASM backend, each format in a fresh process\n\n" +
      formatScaleTable(await runScaleBench(opts)) +
      `\n\nPrompt ${opts.prompt} tokens, ${opts.tokens} decoded; calibration: the statistics ` +
      "pass (collect_stats.ts; the row's weight format, statistics in f64; deno task calibrate " +
      `--weights) over ${opts.samples} samples of the default model's set, 64 tokens ` +
      "at most each; context: the memory-safe context at concurrency 1 and 4 (memory_fit.ts, " +
      "prefill chunk 64) in the WASM memory left after loading, capped at the config's (cfg).";
  },
  wasm64: async () => {
    const opts = parseWasm64Args(Deno.args);
    return "## wasm32 vs wasm64 (memory64) kernels, SmolLM2-135M shape, same rounds\n\n" +
      formatWasm64Table(await runWasm64Bench(opts)) +
      `\n\nPrompt 32 tokens, ${opts.tokens} decoded, best of ${opts.rounds} interleaved rounds; ` +
      "ratio = wasm64 / wasm32 (docs/design.md, WASM memory past 4 GiB).";
  },
  calib: async () => {
    const o = parseCalibArgs(Deno.args);
    return `## Calibration cost: statistics pass vs dense prefill of the same tokens (${o.backend})\n\n` +
      formatCalibTable(await runCalibBench(o)) +
      `\n\n${o.samples} samples of the default model's calibration set, ${o.maxTokens} tokens at ` +
      `most each, ${o.rounds} rounds alternating which pass runs first (per-round ratios in ` +
      "brackets); one fresh process per shape and format.";
  },
};

/** Parts run only when named in `--only=` (long, or needing downloads). */
const OPT_IN = new Set(["scale", "wasm64", "calib"]);

if (import.meta.main) {
  const only = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
  const quick = Deno.args.includes("--quick");
  for (const [name, part] of Object.entries(PARTS)) {
    if (only ? !only.includes(name) : OPT_IN.has(name)) continue;
    console.log(await part(quick));
    console.log();
  }
}
