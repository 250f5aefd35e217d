/**
 * Masked GEMV bench: `out[i] = sum_k x[k] * W[rows[i], k]` over the kept rows of W [N, K], the
 * memory-bound core of a decode step. GB/s = bytes of weight rows actually read / time (x and out
 * are not counted). Every implementation rotates over enough copies of W that the weights come
 * from DRAM, not cache, and runs side by side with the others in one process, best of `reps`.
 *
 * Implementations: the WASM backend (f32, f16 and q8 storage; `matmul` and the transposed
 * `matmulTAdd` used for down_proj; q8 counts 1.125 bytes per weight), the plain-TS reference backend, native C built here with
 * `gcc -O3 -march=native` (bench/gemv_native.c, when gcc exists; at AVX2's 256-bit width and at
 * the 128-bit width WASM SIMD has, so the table separates the cost of the narrower vectors from
 * the cost of running in WASM) and onnxruntime-web's MatMul on
 * its wasm EP (single thread) over a pre-gathered dense W (ORT has no row gather: that is the
 * cost of a physically pruned copy, the best it can do).
 */

import * as ort from "onnxruntime-web";
import type { Backend, IndexList, MatView, Tensor } from "../lib/backends/backend.ts";
import { ReferenceBackend } from "../lib/backends/reference.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { matmulModel } from "./onnx_matmul.ts";
import { rng } from "../lib/util/seeded_rng.ts";

/** A weight matrix shape W [N, K] (rows N are masked). */
export interface GemvShape {
  name: string;
  N: number;
  K: number;
}

/** SmolLM2-135M's matrices: o/down-like [576, 1536], gate/up [1536, 576], lm_head [49152, 576]. */
export const SMOLLM2_SHAPES: GemvShape[] = [
  { name: "576x1536", N: 576, K: 1536 },
  { name: "1536x576 (gate/up)", N: 1536, K: 576 },
  { name: "49152x576 (lm_head)", N: 49152, K: 576 },
];

/** One measurement. */
export interface GemvResult {
  shape: string;
  /** Fraction of rows pruned (0, 0.2, 0.5). */
  sparsity: number;
  /** Kept rows come in runs of this many consecutive rows (1 = random). */
  run: number;
  impl: string;
  /** Microseconds per GEMV (best of reps). */
  us: number;
  /** Weight bytes read per second, 1e9. */
  gbps: number;
}

/** Options of {@link runGemvBench}. */
export interface GemvBenchOptions {
  shapes?: GemvShape[];
  sparsities?: number[];
  /** Milliseconds per timed run. */
  minMs?: number;
  /** Timed runs per implementation and case (best kept). */
  reps?: number;
  /** Run lengths of kept rows per masked case: 1 = random rows; 64 = clustered runs. */
  runs?: number[];
  /** Bytes of weight copies each implementation rotates over (> last-level cache). */
  workingSet?: number;
  /** Progress lines go here (default: stderr-like console.error). */
  log?: (line: string) => void;
}

/** A prepared GEMV: `run()` does one masked GEMV over the next copy. */
export interface Prepared {
  run(): void | Promise<unknown>;
  dispose(): void;
}

/** An implementation under test: `prepare` builds weights for one shape and mask. */
interface Impl {
  name: string;
  bytesPerElem: number;
  /** Weights per shape (shared across masks), then a runner per mask. */
  load(shape: GemvShape, copies: number, r: () => number): Promise<Loaded>;
}

interface Loaded {
  prepare(rows: Int32Array): Promise<Prepared>;
  dispose(): void;
}

/** n uniform values in [-0.5, 0.5). */
export function randn(n: number, r: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() - 0.5;
  return a;
}

/**
 * `keep` distinct sorted row indices of [0, n): uniformly random (`run` = 1), or whole runs of
 * `run` consecutive rows chosen at random (a mask whose kept rows cluster, e.g. after ordering
 * neurons by importance at load time).
 */
export function keptRows(n: number, keep: number, r: () => number, run = 1): Int32Array {
  if (run > 1) {
    const blocks = Math.ceil(n / run);
    const chosen = keptRows(blocks, Math.ceil(keep / run), r);
    const out: number[] = [];
    for (const b of chosen) for (let i = b * run; i < Math.min(n, (b + 1) * run); i++) out.push(i);
    return Int32Array.from(out.slice(0, keep));
  }
  const out = new Int32Array(keep);
  let k = 0;
  for (let i = 0; i < n && k < keep; i++) if (r() * (n - i) < keep - k) out[k++] = i;
  return out;
}

/** An implementation on a {@link Backend}: `matmul` (or `matmulTAdd` with `transposed`). */
function backendImpl(name: string, be: Backend, bytesPerElem: number, transposed = false): Impl {
  return {
    name,
    bytesPerElem,
    load(shape, copies, r) {
      const { N, K } = shape;
      const data = randn(N * K, r);
      const views: MatView[] = [];
      for (let c = 0; c < copies; c++) {
        views.push({ buf: be.weights(data), offset: 0, stride: K, rows: N, cols: K });
      }
      let n = 0;
      return Promise.resolve({
        prepare(rows) {
          const R = rows.length;
          const idx: IndexList = be.indices(rows);
          let x: Tensor, out: Tensor;
          if (transposed) {
            x = be.tensor(1, R); // a [1, R]
            be.write(x, randn(R, r));
            out = be.tensor(1, K); // [1, M]
          } else {
            x = be.tensor(1, K); // [1, K]
            be.write(x, randn(K, r));
            out = be.tensor(1, R); // [1, R]
          }
          return Promise.resolve({
            run: transposed
              ? () => be.matmulTAdd(x, views[n++ % copies], idx, out)
              : () => be.matmul(x, views[n++ % copies], idx, null, out),
            dispose() {
              be.free(x);
              be.free(out);
              be.release(idx);
            },
          });
        },
        dispose() {
          for (const v of views) be.release(v.buf);
        },
      });
    },
  };
}

/** onnxruntime-web MatMul (wasm EP, one thread) over a pre-gathered W^T [K, R]. */
function ortImpl(): Impl {
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  return {
    name: "ort-web f32",
    bytesPerElem: 4,
    load(shape, _copies, r) {
      const { N, K } = shape;
      const data = randn(N * K, r); // W [N, K]
      const x = new ort.Tensor("float32", randn(K, r), [1, K]);
      return Promise.resolve({
        async prepare(rows) {
          const R = rows.length;
          const wt = new Float32Array(K * R); // [K, R] = gathered rows, transposed
          for (let i = 0; i < R; i++) {
            const base = rows[i] * K;
            for (let k = 0; k < K; k++) wt[k * R + i] = data[base + k];
          }
          const model = matmulModel(K, R, wt);
          const copies = Math.max(1, Math.ceil(WORKING_SET / (K * R * 4)));
          const sessions: ort.InferenceSession[] = [];
          for (let c = 0; c < copies; c++) {
            sessions.push(
              await ort.InferenceSession.create(model, {
                executionProviders: ["wasm"],
                graphOptimizationLevel: "all",
              }),
            );
          }
          let n = 0;
          return {
            run: () => sessions[n++ % copies].run({ x }),
            dispose() {
              for (const s of sessions) void s.release();
            },
          };
        },
        dispose() {},
      });
    },
  };
}

let WORKING_SET = 64 << 20;

/** Time `run` for at least `minMs`; microseconds per call. */
export async function timeRun(p: Prepared, minMs: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  let t1 = t0;
  const first = p.run();
  if (first instanceof Promise) {
    await first;
    n++;
    do {
      await p.run();
      n++;
      t1 = performance.now();
    } while (t1 - t0 < minMs);
  } else {
    n++;
    do {
      for (let i = 0; i < 4; i++) p.run();
      n += 4;
      t1 = performance.now();
    } while (t1 - t0 < minMs);
  }
  return ((t1 - t0) * 1e3) / n;
}

/**
 * Build bench/gemv_native.c with gcc -O3 -march=native at the vector width given in bytes (32:
 * AVX2's 8 lanes; 16: the 128-bit width WASM SIMD has); null when gcc is missing.
 */
async function buildNative(log: (s: string) => void, vecBytes: 16 | 32): Promise<string | null> {
  const src = new URL("./gemv_native.c", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "seap_bench_" });
  const exe = `${dir}/gemv_native_${vecBytes * 8}`;
  try {
    const r = await new Deno.Command("gcc", {
      args: ["-O3", "-march=native", `-DVEC_BYTES=${vecBytes}`, "-o", exe, src],
    }).output();
    if (!r.success) {
      log(`native C skipped: gcc failed: ${new TextDecoder().decode(r.stderr)}`);
      return null;
    }
    return exe;
  } catch {
    log("native C skipped: gcc not found");
    return null;
  }
}

async function runNative(
  exe: string,
  s: GemvShape,
  rows: Int32Array,
  minMs: number,
  reps: number,
): Promise<number> {
  const copies = Math.max(1, Math.ceil(WORKING_SET / (rows.length * s.K * 4)));
  const file = `${exe}.rows`;
  await Deno.writeFile(file, new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
  const r = await new Deno.Command(exe, {
    args: [String(s.N), String(s.K), file, String(copies), String(minMs), String(reps)],
  }).output();
  if (!r.success) throw new Error(`gemv_native failed: ${new TextDecoder().decode(r.stderr)}`);
  return Number(new TextDecoder().decode(r.stdout).trim().split(/\s+/)[0]);
}

/** Run the masked GEMV bench; results in measurement order. */
export async function runGemvBench(opts: GemvBenchOptions = {}): Promise<GemvResult[]> {
  const shapes = opts.shapes ?? SMOLLM2_SHAPES;
  const sparsities = opts.sparsities ?? [0, 0.2, 0.5];
  const minMs = opts.minMs ?? 150;
  const reps = opts.reps ?? 3;
  const runs = opts.runs ?? [1, 64];
  const log = opts.log ?? ((s: string) => console.error(s));
  WORKING_SET = opts.workingSet ?? 64 << 20;

  const w32 = await WasmBackend.create({ weightDType: "f32" });
  const w16 = await WasmBackend.create({ weightDType: "f16" });
  const w8 = await WasmBackend.create({ weightDType: "q8" });
  const impls: Impl[] = [
    backendImpl("wasm f32", w32, 4),
    backendImpl("wasm f16", w16, 2),
    backendImpl("wasm q8", w8, 36 / 32),
    backendImpl("wasm f32 T-add", w32, 4, true),
    backendImpl("wasm f16 T-add", w16, 2, true),
    backendImpl("wasm q8 T-add", w8, 36 / 32, true),
    backendImpl("TS reference", new ReferenceBackend(), 4),
    ortImpl(),
  ];
  const native = await buildNative(log, 32);
  const native128 = native ? await buildNative(log, 16) : null;
  const results: GemvResult[] = [];
  const r = rng(42);
  for (const shape of shapes) {
    const loaded: Loaded[] = [];
    for (const im of impls) {
      // Enough copies that the kept rows of the sparsest mask exceed the cache too.
      const kept = 1 - Math.max(...sparsities);
      const copies = Math.max(
        1,
        Math.ceil(WORKING_SET / (shape.N * shape.K * im.bytesPerElem * kept)),
      );
      // The reference is slow: a smaller rotation keeps the bench short (still > L3 for lm_head).
      const c = im.name === "TS reference" ? Math.min(copies, 2) : copies;
      loaded.push(await im.load(shape, im.name.startsWith("ort") ? 1 : c, r));
    }
    const cases = sparsities.flatMap((sp) => (sp === 0 ? [[sp, 1]] : runs.map((run) => [sp, run])));
    for (const [sp, run] of cases) {
      const keep = Math.round(shape.N * (1 - sp));
      const rows = keptRows(shape.N, keep, r, run);
      log(`gemv ${shape.name} sparsity ${sp} run ${run}: ${keep} rows`);
      const prepared: Prepared[] = [];
      for (const l of loaded) prepared.push(await l.prepare(rows));
      const best = impls.map(() => Infinity);
      // Untimed warm-up: V8 tiers wasm and JS up from baseline code; first touches of memory.
      for (const p of prepared) await timeRun(p, Math.min(minMs, 100));
      for (let rep = 0; rep < reps; rep++) {
        for (let i = 0; i < impls.length; i++) {
          const ms = impls[i].name === "TS reference" ? Math.min(minMs, 100) : minMs;
          best[i] = Math.min(best[i], await timeRun(prepared[i], ms));
        }
      }
      const push = (impl: string, us: number, bpe: number) =>
        results.push({
          shape: shape.name,
          sparsity: sp,
          run,
          impl,
          us,
          gbps: (keep * shape.K * bpe) / (us * 1e3),
        });
      impls.forEach((im, i) => push(im.name, best[i], im.bytesPerElem));
      if (native) push("native C f32", await runNative(native, shape, rows, minMs, reps), 4);
      if (native128) {
        push("native C f32 128-bit", await runNative(native128, shape, rows, minMs, reps), 4);
      }
      for (const p of prepared) p.dispose();
    }
    for (const l of loaded) l.dispose();
  }
  return results;
}

/** A markdown table: GB/s per implementation, and the ratios the targets are stated in. */
export function formatGemvTable(results: GemvResult[]): string {
  const impls = [...new Set(results.map((r) => r.impl))];
  const key = (r: { shape: string; sparsity: number; run: number }) =>
    `${r.shape}|${r.sparsity}|${r.run}`;
  const cases = [...new Set(results.map(key))];
  const get = (c: string, impl: string) => results.find((r) => key(r) === c && r.impl === impl);
  const f = (v: number | undefined, d = 1) => v === undefined || !isFinite(v) ? "-" : v.toFixed(d);
  const head = [
    "shape",
    "pruned",
    ...impls.map((i) => `${i} GB/s`),
    "wasm f32 / native",
    "wasm f32 / native 128-bit",
    "wasm f32 / ort",
    "f16 time gain",
    "q8 time gain",
    "f16 / f32 GB/s",
    "f32 speedup vs dense (ideal)",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const c of cases) {
    const [shape, sp, run] = c.split("|");
    const w32 = get(c, "wasm f32"), w16 = get(c, "wasm f16"), w8 = get(c, "wasm q8");
    const nat = get(c, "native C f32"), o = get(c, "ort-web f32");
    const nat128 = get(c, "native C f32 128-bit");
    const dense = get(`${shape}|0|1`, "wasm f32");
    const s = Number(sp);
    const kind = s === 0 ? "" : run === "1" ? " random" : ` runs of ${run}`;
    lines.push(
      `| ${shape} | ${(s * 100).toFixed(0)}%${kind} | ${
        impls.map((i) => f(get(c, i)?.gbps)).join(" | ")
      } | ${f(w32 && nat ? w32.gbps / nat.gbps : undefined, 2)} | ${
        f(w32 && nat128 ? w32.gbps / nat128.gbps : undefined, 2)
      } | ${f(w32 && o ? w32.gbps / o.gbps : undefined, 2)} | ${
        f(w32 && w16 ? w32.us / w16.us : undefined, 2)
      }x | ${f(w32 && w8 ? w32.us / w8.us : undefined, 2)}x | ${
        f(w32 && w16 ? w16.gbps / w32.gbps : undefined, 2)
      } | ${f(dense && w32 ? dense.us / w32.us : undefined, 2)}x (${f(1 / (1 - s), 2)}x) |`,
    );
  }
  return lines.join("\n");
}
