/**
 * This engine (WASM, one thread) side by side with llama.cpp (node-llama-cpp 3.21.1, CPU build,
 * one thread) on the same weights: each model is exported to GGUF per weight format, both
 * sides prefill the same prompt and greedy-decode the same number of tokens, dense and pruned
 * by the same SEAP 50% mask (llama.cpp runs the physically pruned `deci` export), in
 * interleaved rounds; median and best per contender, and the ratios.
 *
 *   deno task bench --only=llama [--quick]
 *
 * llama.cpp runs in a Node.js subprocess and is timed there (performance.now around each
 * node-llama-cpp step), so its numbers include node-llama-cpp's per-token overhead (sampling,
 * JS ↔ addon) as a user of node-llama-cpp would see it, not llama-bench's. Each side's process
 * CPU time (every thread) is measured over the same spans too: on a shared machine the wall clock
 * also counts other processes' time slices, CPU time does not (both are reported).
 */

import process from "node:process";
import type { WeightDType } from "../lib/backends/backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { exportGguf, type GgufWeightType } from "../lib/export/gguf_export.ts";
import { writeGgufFile } from "../lib/export/gguf_writer.ts";
import { LlamaCpp, llamaCppMissing } from "../lib/export/llama_cpp.ts";
import { loadModel, type Model, readConfig } from "../lib/model/model.ts";
import type { Mask } from "../lib/model/mask.ts";
import { maskOverlapOrder } from "../lib/model/neuron_order.ts";
import { denseFor, type PreparedMask, prepareMask } from "../lib/model/prepared_mask.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { argmax } from "../lib/generate/sampler.ts";

/**
 * The engine's weight format for each GGUF type; null where the engine has none. q8 is Q8_0's
 * blocks of 32 int8 values (lib/formats/q8.ts) quantized from the same f32 weights with the
 * scale kept in f32 instead of f16 and ties rounded to even instead of away from zero: the
 * same values but for rare one-step differences.
 */
const ENGINE_DTYPE: Record<GgufWeightType, WeightDType | null> = {
  f32: "f32",
  f16: "f16",
  q8_0: "q8",
};

/** One model to compare on, with the SEAP 50% mask to time and the family it is laid out by. */
export interface LlamaBenchModel {
  dir: string;
  mask: Mask;
  family: Mask[];
}

/** Timings of one contender over the rounds. */
export interface LlamaBenchRow {
  model: string;
  type: GgufWeightType;
  /** e.g. "engine dense", "llama.cpp reverse@0.5". */
  who: string;
  prefillTokS: number[];
  decodeTokS: number[];
  /** The same rates over the contender's process CPU time instead of the wall clock. */
  prefillCpuTokS: number[];
  decodeCpuTokS: number[];
}

/** Timed prefill + decode of one round: tok/s over wall time and over process CPU time. */
type Round = () => Promise<
  { prefill: number; decode: number; prefillCpu: number; decodeCpu: number }
>;

/** CPU milliseconds (user + system, every thread) of this process since `c0`. */
function cpuMs(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

function engineRound(model: Model, mask: PreparedMask, ids: number[], steps: number): Round {
  return async () => {
    const seq = new Sequence(model, { mask, maxTokens: ids.length + steps + 1 });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let logits = await seq.prefill(Int32Array.from(ids));
    let tok = argmax(logits);
    const t1 = performance.now();
    const cPre = cpuMs(c0);
    for (let i = 0; i < steps; i++) {
      logits = await seq.decode(tok);
      tok = argmax(logits);
    }
    const t2 = performance.now();
    const cAll = cpuMs(c0);
    seq.free();
    return {
      prefill: ids.length / ((t1 - t0) / 1000),
      decode: steps / ((t2 - t1) / 1000),
      prefillCpu: ids.length / (cPre / 1000),
      decodeCpu: steps / ((cAll - cPre) / 1000),
    };
  };
}

function llamaRound(lc: LlamaCpp, ids: number[], steps: number): Round {
  return async () => {
    const r = await lc.run(ids, steps);
    const decodeMs = r.decodeMs.reduce((a, b) => a + b, 0);
    return {
      prefill: ids.length / (r.prefillMs / 1000),
      decode: steps / (decodeMs / 1000),
      prefillCpu: ids.length / (r.prefillCpuMs / 1000),
      decodeCpu: steps / (r.decodeCpuMs / 1000),
    };
  };
}

/** Export to a temporary GGUF file; returns its path and the zero padding the export added. */
async function ggufFile(
  dir: string,
  type: GgufWeightType,
  mask?: Mask,
): Promise<{ path: string; padding: { heads: number; neurons: number } }> {
  const path = await Deno.makeTempFile({ suffix: `.${type}.gguf` });
  const exp = await exportGguf(dir, type, mask);
  await writeGgufFile(path, exp.parts);
  return { path, padding: exp.padding };
}

/**
 * Run the comparison on `models` for every weight format; `rounds` interleaved rounds of a
 * `promptLen`-token prefill and `steps` decoded tokens. Progress goes to stderr.
 */
export async function runLlamaCppBench(
  models: LlamaBenchModel[],
  opts: {
    rounds?: number;
    promptLen?: number;
    steps?: number;
    /** GGUF types to run (default all three). */
    types?: readonly ("f32" | "f16" | "q8_0")[];
  } = {},
): Promise<{ rows: LlamaBenchRow[]; notes: string[] }> {
  const rounds = opts.rounds ?? 5, promptLen = opts.promptLen ?? 32, steps = opts.steps ?? 32;
  const rows: LlamaBenchRow[] = [];
  const notes: string[] = [];
  for (const m of models) {
    const { config: cfg } = await readConfig(m.dir);
    const name = m.dir.replace(/\/+$/, "").split("/").pop()!;
    const ids = Array.from(
      { length: promptLen },
      (_, i) => 2 + (i * 31) % Math.min(200, cfg.vocabSize - 2),
    );
    for (const type of opts.types ?? (["f32", "f16", "q8_0"] as const)) {
      console.error(`bench llama: ${name} ${type}: exporting GGUF and loading ...`);
      const contenders: { who: string; round: Round; close: () => Promise<void> | void }[] = [];
      const dtype = ENGINE_DTYPE[type];
      if (dtype) {
        const order = maskOverlapOrder(m.family, cfg.numLayers, cfg.intermediateSize);
        const backend = await WasmBackend.create({ weightDType: dtype });
        if (dtype === "f16") {
          // Which f16 kernels ran (half-precision SIMD needs --v8-flags=--experimental-wasm-fp16).
          notes.push(`${name} f16: the engine's f16 kernels are the ${backend.f16Path} path.`);
        }
        const model = await loadModel(m.dir, { backend, neuronOrder: order });
        const pm = prepareMask(model, m.mask);
        contenders.push(
          {
            who: "engine dense",
            round: engineRound(model, denseFor(model), ids, steps),
            close: () => {},
          },
          {
            who: `engine ${m.mask.name}`,
            round: engineRound(model, pm, ids, steps),
            close: () => pm.release(),
          },
        );
        if (backend.f16Path === "fp16-simd") {
          // The portable f16 kernels side by side (same rounds): the A/B of the two f16 paths.
          const portable = await loadModel(m.dir, {
            backend: await WasmBackend.create({ weightDType: dtype, fp16Simd: false }),
            neuronOrder: order,
          });
          contenders.push({
            who: "engine dense, bit-trick f16",
            round: engineRound(portable, denseFor(portable), ids, steps),
            close: () => {},
          });
        }
      } else {
        notes.push(
          `${name} ${type}: this engine has no ${type} weight format yet; llama.cpp's numbers alone.`,
        );
      }
      for (
        const [who, mask] of [["llama.cpp dense", undefined], [
          `llama.cpp ${m.mask.name}`,
          m.mask,
        ]] as const
      ) {
        const { path, padding } = await ggufFile(m.dir, type, mask);
        if (padding.heads || padding.neurons) {
          notes.push(
            `${name} ${type} ${who}: the pruned GGUF carries ${padding.heads} zero query heads ` +
              `and ${padding.neurons} zero neurons (uneven GQA groups, Q8_0 widths of 32).`,
          );
        }
        const lc = await LlamaCpp.open(path, { threads: 1, contextSize: promptLen + steps + 16 });
        contenders.push({
          who,
          round: llamaRound(lc, ids, steps),
          close: async () => {
            await lc.close();
            await Deno.remove(path);
          },
        });
      }
      const got = contenders.map((c) => ({
        model: name,
        type,
        who: c.who,
        prefillTokS: [] as number[],
        decodeTokS: [] as number[],
        prefillCpuTokS: [] as number[],
        decodeCpuTokS: [] as number[],
      }));
      for (const c of contenders) await c.round(); // warm-up
      for (let r = 0; r < rounds; r++) {
        console.error(`bench llama: ${name} ${type}: round ${r + 1}/${rounds}`);
        for (const [k, c] of contenders.entries()) {
          const t = await c.round();
          got[k].prefillTokS.push(t.prefill);
          got[k].decodeTokS.push(t.decode);
          got[k].prefillCpuTokS.push(t.prefillCpu);
          got[k].decodeCpuTokS.push(t.decodeCpu);
        }
      }
      for (const c of contenders) await c.close();
      rows.push(...got);
    }
  }
  return { rows, notes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const best = (xs: number[]) => Math.max(...xs);

/** Markdown: tok/s per contender (median, best), then the ratios against llama.cpp. */
export function formatLlamaCppTable(rows: LlamaBenchRow[]): string {
  const out = [
    "| model | format | contender | decode tok/s median (best) | prefill tok/s median (best) | decode vs llama.cpp dense: median (best) | prefill vs llama.cpp dense: median (best) | CPU time: decode, prefill vs llama.cpp dense (median) |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    const base = rows.find((x) =>
      x.model === r.model && x.type === r.type && x.who === "llama.cpp dense"
    )!;
    const ratio = (a: number[], b: number[]) =>
      `${(median(a) / median(b)).toFixed(2)}x (${(best(a) / best(b)).toFixed(2)}x)`;
    out.push(
      `| ${r.model} | ${r.type} | ${r.who} | ${median(r.decodeTokS).toFixed(1)} (${
        best(r.decodeTokS).toFixed(1)
      }) | ` +
        `${median(r.prefillTokS).toFixed(1)} (${best(r.prefillTokS).toFixed(1)}) | ` +
        `${r === base ? "1.00x" : ratio(r.decodeTokS, base.decodeTokS)} | ` +
        `${r === base ? "1.00x" : ratio(r.prefillTokS, base.prefillTokS)} | ` +
        `${(median(r.decodeCpuTokS) / median(base.decodeCpuTokS)).toFixed(2)}x, ` +
        `${(median(r.prefillCpuTokS) / median(base.prefillCpuTokS)).toFixed(2)}x |`,
    );
  }
  return out.join("\n");
}

/** Why the llama.cpp part cannot run, or null. */
export const llamaBenchMissing = llamaCppMissing;
