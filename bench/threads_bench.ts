/**
 * The WASM backend on 1 thread against 2 (or more) threads (`SEAP_THREADS`, one shared memory,
 * lib/backends/wasm_threads.ts), per weight format, dense and a SEAP 50% mask: the same model,
 * prompt and decoded tokens, every contender in the same interleaved rounds, median and best,
 * ratios against 1 thread. Where node-llama-cpp is installed (`deno task llama-cpp:install`),
 * llama.cpp runs the same weights (GGUF export) at 1 and at 2 threads in the same rounds.
 *
 *   deno task bench --only=threads [--quick] [--weights=f32,f16,q8]
 *   deno run -A bench/threads_bench.ts [--model DIR] [--threads 1,2] [--rounds 5] [--tokens 32]
 *     [--f16-paths fp16-simd,bit-trick]
 *
 * f16 runs on the conversion the backend picks (half-precision SIMD where Deno runs with
 * `--v8-flags=--experimental-wasm-fp16`, as `deno task bench` does; else the bit tricks);
 * `--f16-paths fp16-simd,bit-trick` runs the engine's f16 on each at every thread count, in the
 * same rounds, and adds their ratio.
 *
 * The load average (1 minute) is read before and after: on a shared machine the second core is
 * often busy, which caps what a second thread can add; the report says so with the numbers.
 */

import { parseArgs } from "node:util";
import type { WeightDType } from "../lib/backends/backend.ts";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import type { F16Path } from "../lib/backends/wasm_kernels.ts";
import { exportGguf, type GgufWeightType } from "../lib/export/gguf_export.ts";
import { writeGgufFile } from "../lib/export/gguf_writer.ts";
import { LlamaCpp, llamaCppMissing } from "../lib/export/llama_cpp.ts";
import type { Mask } from "../lib/model/mask.ts";
import { loadModel, type Model, readConfig } from "../lib/model/model.ts";
import { maskOverlapOrder } from "../lib/model/neuron_order.ts";
import { denseFor, type PreparedMask, prepareMask } from "../lib/model/prepared_mask.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { seapShapedFamily, seapShapedMask, smollmShapedModel } from "./decode_bench.ts";
import { argmax } from "../lib/generate/sampler.ts";
import { parseF16Paths } from "./wasm64_bench.ts";

/** GGUF type of each engine weight format (same weights on both sides). */
const GGUF_TYPE: Record<WeightDType, GgufWeightType> = { f32: "f32", f16: "f16", q8: "q8_0" };

/** Timings of one contender over the rounds. */
export interface ThreadsBenchRow {
  model: string;
  format: WeightDType;
  /** "engine" or "llama.cpp". */
  engine: string;
  mask: string;
  threads: number;
  /** The engine's f16 conversion (f16 engine rows only). */
  f16Path?: F16Path;
  prefillTokS: number[];
  decodeTokS: number[];
}

/** What {@link runThreadsBench} measured, with the machine's load around it. */
export interface ThreadsBenchResult {
  rows: ThreadsBenchRow[];
  notes: string[];
  /** 1-minute load average before and after, and the CPUs the OS reports. */
  load: { before: number; after: number; cpus: number };
}

/** Options of {@link runThreadsBench}. */
export interface ThreadsBenchOptions {
  formats?: WeightDType[];
  threads?: number[];
  rounds?: number;
  promptLen?: number;
  steps?: number;
  /** Also time llama.cpp at the same thread counts, when node-llama-cpp is installed. */
  llama?: boolean;
  /** The engine's f16 on each of these conversions (default: the one the backend picks). */
  f16Paths?: F16Path[];
}

type Round = () => Promise<{ prefill: number; decode: number }>;

function engineRound(model: Model, mask: PreparedMask, ids: number[], steps: number): Round {
  return async () => {
    const seq = new Sequence(model, { mask, maxTokens: ids.length + steps + 1 });
    const t0 = performance.now();
    let tok = argmax(await seq.prefill(Int32Array.from(ids)));
    const t1 = performance.now();
    for (let i = 0; i < steps; i++) tok = argmax(await seq.decode(tok));
    const t2 = performance.now();
    seq.free();
    return { prefill: ids.length / ((t1 - t0) / 1000), decode: steps / ((t2 - t1) / 1000) };
  };
}

function load1(): number {
  return Deno.loadavg()[0];
}

/**
 * Time every (format, threads, mask) contender of `dir` in `rounds` interleaved rounds of a
 * `promptLen`-token prefill and `steps` greedy decode steps. Progress goes to stderr.
 */
export async function runThreadsBench(
  dir: string,
  masks: { mask: Mask; family: Mask[] },
  opts: ThreadsBenchOptions = {},
): Promise<ThreadsBenchResult> {
  const formats = opts.formats ?? ["f32", "f16", "q8"];
  const threadCounts = opts.threads ?? [1, 2];
  const rounds = opts.rounds ?? 5, promptLen = opts.promptLen ?? 32, steps = opts.steps ?? 32;
  const { config: cfg } = await readConfig(dir);
  const name = dir.replace(/\/+$/, "").split("/").pop()!;
  const ids = Array.from(
    { length: promptLen },
    (_, i) => 2 + (i * 31) % Math.min(200, cfg.vocabSize - 2),
  );
  const notes: string[] = [];
  const llamaMissing = opts.llama === false
    ? `not run on ${name} (llama: false)`
    : await llamaCppMissing();
  if (llamaMissing) notes.push(`llama.cpp not timed: ${llamaMissing}`);
  const order = maskOverlapOrder(masks.family, cfg.numLayers, cfg.intermediateSize);
  const before = load1();
  const rows: ThreadsBenchRow[] = [];
  for (const format of formats) {
    console.error(`bench threads: ${name} ${format}: loading ...`);
    const contenders: { row: ThreadsBenchRow; round: Round; close: () => Promise<void> }[] = [];
    const row = (
      engine: string,
      mask: string,
      threads: number,
      f16Path?: F16Path,
    ): ThreadsBenchRow => ({
      model: name,
      format,
      engine,
      mask,
      threads,
      ...(f16Path ? { f16Path } : {}),
      prefillTokS: [],
      decodeTokS: [],
    });
    const paths: (F16Path | undefined)[] = format === "f16" && opts.f16Paths
      ? opts.f16Paths
      : [undefined];
    for (const threads of threadCounts) {
      for (const p of paths) {
        const backend = await WasmBackend.create({
          weightDType: format,
          threads,
          ...(p ? { fp16Simd: p === "fp16-simd" } : {}),
        });
        const f16Path = format === "f16" ? backend.f16Path : undefined;
        const model = await loadModel(dir, { backend, neuronOrder: order });
        const pm = prepareMask(model, masks.mask);
        contenders.push({
          row: row("engine", "dense", threads, f16Path),
          round: engineRound(model, denseFor(model), ids, steps),
          close: () => Promise.resolve(),
        }, {
          row: row("engine", masks.mask.name, threads, f16Path),
          round: engineRound(model, pm, ids, steps),
          close: async () => {
            pm.release();
            await backend.close();
          },
        });
      }
    }
    if (!llamaMissing) {
      const path = await Deno.makeTempFile({ suffix: `.${GGUF_TYPE[format]}.gguf` });
      const exp = await exportGguf(dir, GGUF_TYPE[format]);
      await writeGgufFile(path, exp.parts);
      for (const threads of threadCounts) {
        const lc = await LlamaCpp.open(path, { threads, contextSize: promptLen + steps + 16 });
        contenders.push({
          row: row("llama.cpp", "dense", threads),
          round: async () => {
            const r = await lc.run(ids, steps);
            const decodeMs = r.decodeMs.reduce((a, b) => a + b, 0);
            return {
              prefill: ids.length / (r.prefillMs / 1000),
              decode: steps / (decodeMs / 1000),
            };
          },
          close: () => lc.close(),
        });
      }
      const last = contenders[contenders.length - 1].close;
      contenders[contenders.length - 1].close = async () => {
        await last();
        await Deno.remove(path);
      };
    }
    for (const c of contenders) await c.round(); // warm-up
    for (let r = 0; r < rounds; r++) {
      console.error(`bench threads: ${name} ${format}: round ${r + 1}/${rounds} (load ${load1()})`);
      for (const c of contenders) {
        const t = await c.round();
        c.row.prefillTokS.push(t.prefill);
        c.row.decodeTokS.push(t.decode);
      }
    }
    for (const c of contenders) await c.close();
    rows.push(...contenders.map((c) => c.row));
  }
  return { rows, notes, load: { before, after: load1(), cpus: navigator.hardwareConcurrency } };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const best = (xs: number[]) => Math.max(...xs);

/**
 * Markdown: tok/s per contender (median, best) and the ratio to the same engine, format and
 * mask on 1 thread; llama.cpp rows also get the engine's ratio to llama.cpp at equal threads.
 */
export function formatThreadsTable(res: ThreadsBenchResult): string {
  const { rows } = res;
  const out = [
    "| model | format | engine | mask | threads | decode tok/s median (best) | prefill tok/s median (best) | decode vs 1 thread: median (best) | prefill vs 1 thread: median (best) |",
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  const ratio = (a: number[], b: number[]) =>
    `${(median(a) / median(b)).toFixed(2)}x (${(best(a) / best(b)).toFixed(2)}x)`;
  for (const r of rows) {
    const one = rows.find((x) =>
      x.model === r.model && x.format === r.format && x.engine === r.engine &&
      x.mask === r.mask && x.f16Path === r.f16Path && x.threads === 1
    );
    const same = r === one || !one;
    const engine = r.f16Path ? `${r.engine} (${r.f16Path})` : r.engine;
    out.push(
      `| ${r.model} | ${r.format} | ${engine} | ${r.mask} | ${r.threads} | ` +
        `${median(r.decodeTokS).toFixed(1)} (${best(r.decodeTokS).toFixed(1)}) | ` +
        `${median(r.prefillTokS).toFixed(1)} (${best(r.prefillTokS).toFixed(1)}) | ` +
        `${same ? "1.00x" : ratio(r.decodeTokS, one.decodeTokS)} | ` +
        `${same ? "1.00x" : ratio(r.prefillTokS, one.prefillTokS)} |`,
    );
  }
  // f16 on both conversions: half-precision SIMD over bit tricks at equal threads and mask.
  const vsBitTrick: string[] = [];
  for (const r of rows.filter((x) => x.f16Path === "fp16-simd")) {
    const b = rows.find((x) =>
      x.model === r.model && x.f16Path === "bit-trick" && x.mask === r.mask &&
      x.threads === r.threads
    );
    if (b) {
      vsBitTrick.push(
        `${r.model} f16 ${r.mask} ${r.threads} thread${r.threads > 1 ? "s" : ""}: fp16-simd / ` +
          `bit-trick decode ${ratio(r.decodeTokS, b.decodeTokS)}, prefill ${
            ratio(r.prefillTokS, b.prefillTokS)
          }`,
      );
    }
  }
  const vsLlama: string[] = [];
  for (const r of rows.filter((x) => x.engine === "engine" && x.mask === "dense")) {
    const l = rows.find((x) =>
      x.model === r.model && x.format === r.format && x.engine === "llama.cpp" &&
      x.threads === r.threads
    );
    if (l) {
      vsLlama.push(
        `${r.model} ${r.format}${r.f16Path ? ` (${r.f16Path})` : ""} ${r.threads} thread${
          r.threads > 1 ? "s" : ""
        }: engine dense / ` +
          `llama.cpp dense decode ${ratio(r.decodeTokS, l.decodeTokS)}, prefill ${
            ratio(r.prefillTokS, l.prefillTokS)
          }`,
      );
    }
  }
  const { before, after, cpus } = res.load;
  return [
    out.join("\n"),
    ...(vsBitTrick.length ? ["", ...vsBitTrick.map((s) => `- ${s}`)] : []),
    ...(vsLlama.length ? ["", ...vsLlama.map((s) => `- ${s}`)] : []),
    "",
    `Load average (1 min) ${before.toFixed(2)} before, ${after.toFixed(2)} after, on ${cpus} ` +
    `CPUs: with other work on the machine a second thread competes for the second core, so the ` +
    `2-thread ratios are a floor for an idle machine, not a property of the kernels.`,
    ...res.notes,
  ].join("\n");
}

/** The SmolLM2-135M-shaped model with its SEAP-shaped 50% mask and family. */
export async function smollmThreadsCase(): Promise<
  { dir: string; masks: { mask: Mask; family: Mask[] } }
> {
  const dir = await smollmShapedModel();
  const { config: cfg } = await readConfig(dir);
  return {
    dir,
    masks: { mask: seapShapedMask(cfg, 0.5, 0), family: seapShapedFamily(cfg, [0.2, 0.5]) },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      weights: { type: "string", default: "f32,f16,q8" },
      threads: { type: "string", default: "1,2" },
      rounds: { type: "string", default: "5" },
      tokens: { type: "string", default: "32" },
      prompt: { type: "string", default: "32" },
      "no-llama": { type: "boolean", default: false },
      "f16-paths": { type: "string" },
    },
  });
  const c = await smollmThreadsCase();
  let dir = c.dir, masks = c.masks;
  if (values.model) {
    const { config: cfg } = await readConfig(values.model);
    dir = values.model;
    masks = { mask: seapShapedMask(cfg, 0.5, 0), family: seapShapedFamily(cfg, [0.2, 0.5]) };
  }
  const res = await runThreadsBench(dir, masks, {
    formats: values.weights!.split(",").map((w) => parseWeightDType(w)),
    threads: values.threads!.split(",").map(Number),
    rounds: Number(values.rounds),
    steps: Number(values.tokens),
    promptLen: Number(values.prompt),
    llama: !values["no-llama"],
    f16Paths: parseF16Paths(values["f16-paths"]),
  });
  console.log(formatThreadsTable(res));
}
