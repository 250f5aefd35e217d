/**
 * Kernel micro-bench: the WASM kernels alone (no backend, no model), on SmolLM2-135M's decode and
 * prefill shapes, weights rotated over copies larger than the last-level cache so they come from
 * DRAM. Times are the process's CPU time (the machine is shared). Reports weight GB/s (bytes of kept rows read / time) for decode (T = 1) and GFLOP/s for
 * prefill (T = 32, or `--tokens=N`). With several modules (`--wasm=a.wasm,b.wasm`) every case runs for each module
 * in interleaved rounds (median and best) and the outputs are compared with the first module's
 * (worst relative difference), so a kernel change is measured side by side with its baseline.
 *
 *   deno run -A bench/kernel_bench.ts [--wasm=kernels/wasm/seap_kernels.wasm,...] [--rounds=5]
 *     [--cases=gemv,ffn,lmhead,prefill] [--formats=f32,f16,q8] [--ms=150] [--hot] [--tokens=32]
 *     [--burst=N] [--seap-layer=15]
 *
 * The "SEAP 0.5" cases read the rows a SEAP-shaped 0.5 mask keeps in one layer (`--seap-layer`)
 * under each FFN layout of lib/model/neuron_order.ts (their run lengths are printed first), and
 * "random" as many rows drawn uniformly: scattered rows against the dense and runs-of-64 cases.
 * `--burst=N`: each round times N calls per case and module by the wall clock instead of --ms of
 * CPU time; with many rounds (e.g. --rounds=200 --burst=4) the best column is the kernel's speed
 * when nothing else ran during a burst, which on a busy shared box resolves differences of ~1%
 * where the CPU-time medians move by ~10%.
 */

import process from "node:process";
import { rng } from "../lib/util/seeded_rng.ts";
import { seapShapedFamily, seapShapedMask } from "./decode_bench.ts";
import {
  inversePermutation,
  keepFrequencyOrder,
  maskOverlapOrder,
} from "../lib/model/neuron_order.ts";
import type { ModelConfig } from "../lib/model/config.ts";

type Fmt = "f32" | "f16" | "q8";

/** One timed case: a kernel call on copy `c` of the weights. */
interface Case {
  name: string;
  fmt: Fmt;
  /** Weight bytes read per call (decode) or FLOPs per call (prefill). */
  work: number;
  unit: "GB/s" | "GFLOP/s";
  run: (c: number) => void;
  /** Output of the last call (compared across modules). */
  out: () => Float32Array;
}

const H = 576, I = 1536, V = 49152;
/** Prompt tokens of the prefill cases. */
const TP = Number(
  Deno.args.find((a) => a.startsWith("--tokens="))?.slice("--tokens=".length) ?? "32",
);
if (!Number.isInteger(TP) || TP < 2) throw new Error(`--tokens must be an integer >= 2, got ${TP}`);
// Working set per case: > 32 MiB L3, or with --hot one copy (what fits in L2 stays there: the
// compute ceiling of a kernel without DRAM).
const HOT = Deno.args.includes("--hot");
const COPY_BYTES = HOT ? 1 : 40 << 20;

function arg(name: string, def: string): string {
  return Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
}

/** Layer of SmolLM2-135M whose SEAP-shaped 0.5 mask the "SEAP rows" cases keep (638 of 1536). */
const SEAP_LAYER = Number(arg("seap-layer", "15"));

/**
 * Bundle rows (sorted) that the SEAP-shaped task-0 mask at 0.5 keeps in layer `layer` of the
 * SmolLM2-135M shape, with the FFN laid out over the SEAP-shaped family of 8 + 8 task masks at
 * 0.2 and 0.5 by `layout` (lib/model/neuron_order.ts): the rows the engine's decode reads
 * (bench/decode_bench.ts).
 */
export function seapRows(layer: number, layout: "overlap" | "keep-frequency"): Int32Array {
  const cfg = { numLayers: 30, intermediateSize: I, numHeads: 9, numKvHeads: 3 } as ModelConfig;
  const orderOf = layout === "overlap" ? maskOverlapOrder : keepFrequencyOrder;
  const order = orderOf(seapShapedFamily(cfg, [0.2, 0.5]), cfg.numLayers, I)[layer];
  const pos = inversePermutation(order);
  const kept = seapShapedMask(cfg, 0.5, 0).layers[layer].neurons;
  return Int32Array.from(kept, (j) => pos[j]).sort();
}

/** Lengths of the runs of consecutive values in sorted `rows`. */
export function runLengths(rows: Int32Array): number[] {
  const runs: number[] = [];
  let len = 1;
  for (let i = 1; i <= rows.length; i++) {
    if (i < rows.length && rows[i] === rows[i - 1] + 1) len++;
    else {
      runs.push(len);
      len = 1;
    }
  }
  return runs;
}

/** One line: how many runs and rows fall in each run-length bucket. */
export function runHistogram(rows: Int32Array): string {
  const runs = runLengths(rows);
  const edges = [1, 2, 4, 8, 16, 64, Infinity];
  const cells = edges.map((hi, k) => {
    const lo = k ? edges[k - 1] + 1 : 1;
    const inB = runs.filter((r) => r >= lo && r <= hi);
    const label = hi === Infinity ? `>${edges[k - 1]}` : lo === hi ? `${hi}` : `${lo}-${hi}`;
    return `${label}: ${inB.length} runs / ${inB.reduce((a, b) => a + b, 0)} rows`;
  });
  return `${rows.length} rows in ${runs.length} runs (${cells.join(", ")})`;
}

/** R rows out of I drawn uniformly at random (seeded), sorted: the worst scatter. */
function randomRows(R: number, seed: number): Int32Array {
  const r = rng(seed);
  const all = Int32Array.from({ length: I }, (_, i) => i);
  for (let i = I - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, R).sort();
}

/** A module instance with a bump allocator over its own memory. */
class Kern {
  mem: WebAssembly.Memory;
  k: Record<string, CallableFunction>;
  top: number;
  constructor(mod: WebAssembly.Module) {
    this.mem = new WebAssembly.Memory({ initial: 32, maximum: 65536 });
    const inst = new WebAssembly.Instance(mod, { env: { memory: this.mem } });
    this.k = inst.exports as unknown as Record<string, CallableFunction>;
    this.top = ((inst.exports.__heap_base as WebAssembly.Global).value as number + 63) & ~63;
  }
  alloc(bytes: number): number {
    const p = this.top;
    this.top = (this.top + bytes + 63) & ~63;
    const need = this.top - this.mem.buffer.byteLength;
    if (need > 0) this.mem.grow(Math.ceil(need / 65536));
    return p;
  }
  f32(p: number, n: number): Float32Array {
    return new Float32Array(this.mem.buffer, p, n);
  }
}

/** Row-major weights [rows, cols] of one format, `copies` times; returns byte offset of copy c. */
function fillWeights(kr: Kern, fmt: Fmt, rows: number, cols: number, copies: number, seed: number) {
  const bytesRow = fmt === "f32" ? cols * 4 : fmt === "f16" ? cols * 2 : (cols / 32) * 36;
  const base = kr.alloc(bytesRow * rows * copies);
  const r = rng(seed);
  const n = rows * cols;
  const vals = new Float32Array(n);
  for (let i = 0; i < n; i++) vals[i] = (r() * 2 - 1) * 0.05;
  const one = new Uint8Array(bytesRow * rows);
  const dv = new DataView(one.buffer);
  if (fmt === "f32") new Float32Array(one.buffer).set(vals);
  else if (fmt === "f16") new Float16Array(one.buffer).set(vals);
  else {
    for (let b = 0; b < n / 32; b++) {
      let amax = 0;
      for (let k = 0; k < 32; k++) amax = Math.max(amax, Math.abs(vals[32 * b + k]));
      const d = amax / 127;
      dv.setFloat32(36 * b, d, true);
      for (let k = 0; k < 32; k++) {
        dv.setInt8(36 * b + 4 + k, d ? Math.round(vals[32 * b + k] / d) : 0);
      }
    }
  }
  const u8 = new Uint8Array(kr.mem.buffer);
  for (let c = 0; c < copies; c++) u8.set(one, base + c * one.length);
  return { at: (c: number) => base + c * one.length, bytes: one.length };
}

function vec(kr: Kern, n: number, seed: number): number {
  const p = kr.alloc(n * 4);
  const r = rng(seed);
  const v = kr.f32(p, n);
  for (let i = 0; i < n; i++) v[i] = r() * 2 - 1;
  return p;
}

function bpw(fmt: Fmt): number {
  return fmt === "f32" ? 4 : fmt === "f16" ? 2 : 36 / 32;
}

/** The cases of one module (same seeds in every module, so outputs compare). */
function makeCases(kr: Kern, fmts: Fmt[], kinds: Set<string>): Case[] {
  const cases: Case[] = [];
  const seapKf = seapRows(SEAP_LAYER, "keep-frequency");
  const seapOv = seapRows(SEAP_LAYER, "overlap");
  const scratch = kr.alloc(16 << 20);
  for (const fmt of fmts) {
    const stride = (cols: number) => (fmt === "q8" ? cols / 32 : cols);
    const x = vec(kr, TP * I, 7);
    const outP = kr.alloc(TP * V * 4);
    const copies = (bytes: number) => Math.max(1, Math.ceil(COPY_BYTES / bytes));
    const mm = (name: string, N: number, K: number, T: number, rows?: Int32Array) => {
      const w = fillWeights(kr, fmt, N, K, copies(N * K * bpw(fmt)), N + K);
      const nc = copies(N * K * bpw(fmt));
      const R = rows ? rows.length : N;
      const rowsP = rows ? kr.alloc(R * 4) : 0;
      if (rows) new Int32Array(kr.mem.buffer, rowsP, R).set(rows);
      cases.push({
        name,
        fmt,
        work: T === 1 ? R * K * bpw(fmt) : 2 * R * K * T,
        unit: T === 1 ? "GB/s" : "GFLOP/s",
        run: (c) => {
          const f = kr.k[`matmul_${fmt}`];
          f(x, T, K, w.at(c % nc), stride(K), rowsP, R, outP, 32, scratch);
        },
        out: () => kr.f32(outP, T * R).slice(),
      });
    };
    const mmt = (name: string, R: number, M: number, T: number) => {
      const w = fillWeights(kr, fmt, R, M, copies(R * M * bpw(fmt)), R * 3 + M);
      const nc = copies(R * M * bpw(fmt));
      cases.push({
        name,
        fmt,
        work: T === 1 ? R * M * bpw(fmt) : 2 * R * M * T,
        unit: T === 1 ? "GB/s" : "GFLOP/s",
        run: (c) => {
          kr.f32(outP, T * M).fill(0);
          const f = kr.k[`matmul_t_add_${fmt}`];
          if (fmt === "f32") f(x, T, R, w.at(c % nc), stride(M), 0, M, outP, 32);
          else if (fmt === "f16") f(x, T, R, w.at(c % nc), stride(M), 0, M, outP, 32, scratch);
          else f(x, T, R, w.at(c % nc), stride(M), 0, M, outP, scratch);
        },
        out: () => kr.f32(outP, T * M).slice(),
      });
    };
    const ffn = (name: string, T: number, keep: number | Int32Array) => {
      const w = fillWeights(kr, fmt, I, 3 * H, copies(I * 3 * H * bpw(fmt)), 99);
      const nc = copies(I * 3 * H * bpw(fmt));
      const R = typeof keep === "number" ? Math.round(I * keep) : keep.length;
      const rowsP = typeof keep !== "number" || keep < 1 ? kr.alloc(R * 4) : 0;
      if (typeof keep !== "number") new Int32Array(kr.mem.buffer, rowsP, R).set(keep);
      else if (rowsP) {
        // SEAP-like: kept neurons in runs of 64 (the keep-frequency layout clusters them).
        const rows = new Int32Array(kr.mem.buffer, rowsP, R);
        let j = 0;
        for (let run = 0; j < R; run += 2) {
          for (let k = 0; k < 64 && j < R; k++) rows[j++] = run * 64 + k;
        }
      }
      const off = (
        cols: number,
      ) => (fmt === "f32" ? cols * 4 : fmt === "f16" ? cols * 2 : cols / 32 * 36);
      cases.push({
        name,
        fmt,
        work: T === 1 ? R * 3 * H * bpw(fmt) : 6 * R * H * T,
        unit: T === 1 ? "GB/s" : "GFLOP/s",
        run: (c) => {
          kr.f32(outP, T * H).fill(0);
          const g = w.at(c % nc);
          kr.k[`ffn_${fmt}`](
            x,
            T,
            H,
            g,
            stride(3 * H),
            g + off(H),
            stride(3 * H),
            g + off(2 * H),
            stride(3 * H),
            H,
            rowsP,
            R,
            outP,
            0,
            32,
            scratch,
          );
        },
        out: () => kr.f32(outP, T * H).slice(),
      });
    };
    if (kinds.has("gemv")) {
      mm("gemv 1536x576", I, H, 1);
      mm("gemv 576x576", H, H, 1);
      mmt("gemv_t 1536->576", I, H, 1);
    }
    if (kinds.has("ffn")) {
      ffn("ffn dense", 1, 1);
      ffn("ffn 50% (runs of 64)", 1, 0.5);
      ffn(`ffn SEAP 0.5 L${SEAP_LAYER}, keep-frequency layout`, 1, seapKf);
      ffn(`ffn SEAP 0.5 L${SEAP_LAYER}, overlap layout`, 1, seapOv);
      ffn(`ffn random ${seapKf.length} rows`, 1, randomRows(seapKf.length, 5));
    }
    if (kinds.has("gemv")) {
      mm(`gemv SEAP 0.5 L${SEAP_LAYER}, keep-frequency layout`, I, H, 1, seapKf);
      mm(`gemv SEAP 0.5 L${SEAP_LAYER}, overlap layout`, I, H, 1, seapOv);
      mm(`gemv random ${seapKf.length} of 1536x576 rows`, I, H, 1, randomRows(seapKf.length, 5));
    }
    if (kinds.has("lmhead")) mm("lm_head 49152x576", V, H, 1);
    if (kinds.has("prefill")) {
      mm(`prefill 1536x576 T=${TP}`, I, H, TP);
      mmt(`prefill_t 1536->576 T=${TP}`, I, H, TP);
      ffn(`prefill ffn T=${TP}`, TP, 1);
    }
  }
  return cases;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

if (import.meta.main) {
  const files = arg("wasm", "kernels/wasm/seap_kernels.wasm").split(",");
  const rounds = Number(arg("rounds", "5"));
  const ms = Number(arg("ms", "150"));
  const burst = Number(arg("burst", "0"));
  const fmts = arg("formats", "f32,f16,q8").split(",") as Fmt[];
  const kinds = new Set(arg("cases", "gemv,ffn,lmhead,prefill").split(","));
  const mods = await Promise.all(
    files.map(async (f) => WebAssembly.compile(await Deno.readFile(f))),
  );
  for (const layout of ["keep-frequency", "overlap"] as const) {
    const rows = seapRows(SEAP_LAYER, layout);
    console.error(`SEAP 0.5 rows, layer ${SEAP_LAYER}, ${layout} layout: ${runHistogram(rows)}`);
  }
  const sets = mods.map((m) => makeCases(new Kern(m), fmts, kinds));
  const res: number[][][] = sets.map((s) => s.map(() => []));
  // Each case's output right after its own runs (the cases share one output buffer).
  const outs: Float32Array[][] = sets.map(() => []);
  let seq = 0;
  for (let r = 0; r < rounds; r++) {
    for (let ci = 0; ci < sets[0].length; ci++) {
      for (let mi = 0; mi < sets.length; mi++) {
        const cs = sets[mi][ci];
        cs.run(0);
        if (burst > 0) {
          const t0 = performance.now();
          // a running copy index, so that from DRAM the copies keep rotating across bursts
          for (let i = 0; i < burst; i++) cs.run(++seq);
          res[mi][ci].push(cs.work * burst / ((performance.now() - t0) / 1e3) / 1e9);
          outs[mi][ci] = cs.out();
          continue;
        }
        let n = 0;
        // CPU time of this process, not wall time: on a shared machine the wall clock also counts
        // the time slices other processes take.
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        while (performance.now() - t0 < ms) cs.run(++n);
        const c = process.cpuUsage(c0);
        res[mi][ci].push(cs.work * n / ((c.user + c.system) / 1e6) / 1e9);
        outs[mi][ci] = cs.out();
      }
    }
    if (burst === 0 || (r + 1) % 50 === 0) console.error(`round ${r + 1}/${rounds}`);
  }
  const head = files.map((f) => f.split("/").pop()!);
  console.log(
    `| fmt | case | unit | ${head.map((h) => `${h} median (best)`).join(" | ")} | ` +
      `${head.slice(1).map((h) => `${h} / first median (best) | worst rel diff`).join(" | ")} |`,
  );
  for (let ci = 0; ci < sets[0].length; ci++) {
    const c = sets[0][ci];
    const ref = outs[0][ci];
    const cells = res.map((r) => `${median(r[ci]).toFixed(2)} (${Math.max(...r[ci]).toFixed(2)})`);
    const cmp = sets.slice(1).map((_, j) => {
      const o = outs[j + 1][ci];
      let worst = 0, scale = 0;
      for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(o[i] - ref[i]));
      const best = Math.max(...res[j + 1][ci]) / Math.max(...res[0][ci]);
      const med = median(res[j + 1][ci]) / median(res[0][ci]);
      return `${med.toFixed(2)}x (${best.toFixed(2)}x) | ${(worst / scale).toExponential(1)}`;
    });
    console.log(`| ${c.fmt} | ${c.name} | ${c.unit} | ${cells.join(" | ")} | ${cmp.join(" | ")} |`);
  }
}
