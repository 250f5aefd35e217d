/**
 * WebGPU backend bench, self-contained:
 *
 *   deno run -A bench/webgpu_bench.ts [--quick] [--no-decode] [--model DIR] [--tokens 32]
 *
 * 1. Masked GEMV GB/s: `matmul` (gate/up/q-like, row-gathered) and `matmulTAdd` (down/o-like,
 *    transposed) at keep ratios 1.0 / 0.5 / 0.2, f32, f16 and q8 storage (`--dtype` picks the
 *    decode part's format). GB/s = bytes of the kept
 *    weight rows read per call / time per call. n calls are recorded back to back (rotating
 *    over enough copies of W that it cannot sit in cache) and one readback is timed from
 *    submission; time per call is (t(n2) - t(n1)) / (n2 - n1), which cancels submission and
 *    readback overhead.
 * 2. Decode tokens/s of the engine (lib/model/sequence.ts) on the WebGPU backend, dense and
 *    SEAP-shaped masks (a SmolLM2-135M-shaped random model unless --model is given), with the
 *    ideal speedup from weight bytes; `--compare` adds the WASM backend on the same model.
 *
 * On a software adapter (llvmpipe) shapes and counts are reduced automatically; the numbers
 * are then only a smoke test.
 */

import { parseArgs } from "node:util";
import type { IndexList, MatView, Tensor, WeightDType } from "../lib/backends/backend.ts";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { requestWebGpuAdapter, WebGpuBackend } from "../lib/backends/webgpu.ts";

/** One GEMV measurement. */
export interface GpuGemvRow {
  shape: string;
  op: "matmul" | "matmulTAdd";
  dtype: WeightDType;
  keep: number;
  /** Microseconds per call. */
  us: number;
  /** Kept-row bytes per call / time. */
  gbps: number;
}

/** W [N, K] shapes of a 7B-class Llama (real GPUs) and of SmolLM2-135M (software adapters). */
const SHAPES_BIG = [
  { name: "q/o 4096x4096", N: 4096, K: 4096 },
  { name: "gate/up 11008x4096", N: 11008, K: 4096 },
  { name: "lm_head 32000x4096", N: 32000, K: 4096 },
];
const SHAPES_SMALL = [
  { name: "q/o 576x576", N: 576, K: 576 },
  { name: "gate/up 1536x576", N: 1536, K: 576 },
];

function keptRows(N: number, keep: number, seed: number): Int32Array {
  let s = seed >>> 0;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
  const idx: number[] = [];
  for (let i = 0; i < N; i++) if (rnd() < keep) idx.push(i);
  return Int32Array.from(idx);
}

/** Measure one (shape, op, dtype, keep) point. */
async function measure(
  b: WebGpuBackend,
  shape: { name: string; N: number; K: number },
  op: "matmul" | "matmulTAdd",
  keep: number,
  rotateBytes: number,
  n1: number,
  n2: number,
): Promise<GpuGemvRow> {
  const { N, K } = shape;
  const eb = b.weightDType === "f16" ? 2 : b.weightDType === "q8" ? 36 / 32 : 4;
  const copies = Math.max(1, Math.min(16, Math.ceil(rotateBytes / (N * K * eb))));
  const data = new Float32Array(N * K);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  const views: MatView[] = [];
  for (let c = 0; c < copies; c++) {
    views.push({ buf: b.weights(data), offset: 0, stride: K, rows: N, cols: K });
  }
  const rowsHost = keep >= 1 ? null : keptRows(N, keep, 17);
  const rows: IndexList | null = rowsHost ? b.indices(rowsHost) : null;
  const R = rowsHost ? rowsHost.length : N;
  // matmul: x [1, K] -> out [1, R]; matmulTAdd: a [1, R] -> out [1, K] (W read as [N, K]).
  const x: Tensor = b.tensor(1, op === "matmul" ? K : R);
  b.write(x, new Float32Array(x.cols).fill(0.01));
  const out: Tensor = b.tensor(1, op === "matmul" ? R : K);
  // Record n calls, then time submission to readback: GPU time (recording is CPU work that
  // a decode step overlaps with nothing, so it is reported by the decode part instead).
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const w = views[i % copies];
      if (op === "matmul") b.matmul(x, w, rows, null, out);
      else b.matmulTAdd(x, w, rows, out);
    }
    const t0 = performance.now();
    await b.read(out);
    return performance.now() - t0;
  };
  await run(2); // compile + warm
  let best = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    const t1 = await run(n1);
    const t2 = await run(n2);
    best = Math.min(best, Math.max(1e-6, (t2 - t1) / (n2 - n1)));
  }
  for (const v of views) b.release(v.buf);
  if (rows) b.release(rows);
  b.free(x);
  b.free(out);
  const bytes = R * K * eb;
  return {
    shape: shape.name,
    op,
    dtype: b.weightDType,
    keep,
    us: best * 1000,
    gbps: bytes / (best / 1000) / 1e9,
  };
}

/** Run the GEMV part on f32 and f16 backends over the same adapter. */
export async function runGpuGemvBench(
  adapter: GPUAdapter,
  quick: boolean,
): Promise<GpuGemvRow[]> {
  const soft = Boolean(
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as GPUAdapter & { info?: { isFallbackAdapter?: boolean } }).info?.isFallbackAdapter,
  );
  const small = soft || quick;
  const shapes = small ? SHAPES_SMALL : SHAPES_BIG;
  const rotate = small ? 8 << 20 : 512 << 20;
  const [n1, n2] = soft ? [4, 12] : quick ? [20, 60] : [50, 250];
  const rows: GpuGemvRow[] = [];
  for (const dtype of ["f32", "f16", "q8"] as const) {
    const b = await WebGpuBackend.create({ adapter, weightDType: dtype });
    for (const shape of shapes) {
      for (const op of ["matmul", "matmulTAdd"] as const) {
        for (const keep of [1, 0.5, 0.2]) {
          rows.push(await measure(b, shape, op, keep, rotate, n1, n2));
        }
      }
    }
    b.destroy();
  }
  return rows;
}

/** Markdown table of GEMV rows. */
export function formatGpuGemvTable(rows: GpuGemvRow[]): string {
  const lines = [
    "| shape | op | weights | keep | us/call | GB/s (kept rows) |",
    "|---|---|---|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.shape} | ${r.op} | ${r.dtype} | ${r.keep} | ${r.us.toFixed(1)} | ` +
        `${r.gbps.toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      "no-decode": { type: "boolean", default: false },
      compare: { type: "boolean", default: false },
      model: { type: "string" },
      tokens: { type: "string", default: "32" },
      dtype: { type: "string", default: "f16" },
    },
  });
  const adapter = await requestWebGpuAdapter();
  if (!adapter) {
    console.log("webgpu_bench: no WebGPU adapter on this machine; nothing to measure.");
    Deno.exit(0);
  }
  const probe = await WebGpuBackend.create({ adapter });
  console.log(
    `# WebGPU bench on ${probe.adapterDescription}${probe.isFallback ? " (software)" : ""}\n`,
  );
  probe.destroy();

  {
    // CPU cost of recording one dispatch (a decode step records ~15 per layer)
    const b = await WebGpuBackend.create({ adapter });
    const x = b.tensor(1, 256);
    const y = b.tensor(1, 256);
    let best = Infinity;
    for (let rep = 0; rep < 5; rep++) {
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) b.add(x, y);
      best = Math.min(best, performance.now() - t0);
      await b.read(x);
    }
    console.log(`recording overhead: ${best.toFixed(2)} us per dispatch (best of 5 x 1000)\n`);
    b.destroy();
  }

  console.log("## Masked GEMV (one readback per timed batch)\n");
  console.log(formatGpuGemvTable(await runGpuGemvBench(adapter, values.quick)));
  console.log();

  if (!values["no-decode"]) {
    console.log("## Decode (engine, lib/model/sequence.ts)\n");
    try {
      const { runDecodeBench, formatDecodeTable, smollmShapedModel } = await import(
        "./decode_bench.ts"
      );
      const dir = values.model ?? await smollmShapedModel();
      const dtype = parseWeightDType(values.dtype ?? "f16", "--dtype");
      const tokens = Number(values.tokens);
      const gpu = await WebGpuBackend.create({ adapter, weightDType: dtype });
      const rows = await runDecodeBench(dir, gpu, { tokens });
      if (values.compare) {
        const { WasmBackend } = await import("../lib/backends/wasm.ts");
        rows.push(
          ...await runDecodeBench(dir, await WasmBackend.create({ weightDType: dtype }), {
            tokens,
          }),
        );
      }
      console.log(formatDecodeTable(rows));
      gpu.destroy();
    } catch (e) {
      console.log(`decode bench unavailable: ${(e as Error).message}`);
    }
  }
}
