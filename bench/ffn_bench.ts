/**
 * Masked FFN bench: one SwiGLU FFN layer of SmolLM2-135M (I = 1536, H = 576) in the engine's
 * bundled layout [I, 3H] (row j = gate_j | up_j | down^T_j), decode (T = 1), random neuron masks.
 * Compares the four-op path the engine uses (matmul gate, matmul up, siluMul, matmulTAdd) with
 * the fused `ffn` op, which reads each kept neuron's 6.9 KB bundle as one stream. GB/s = bytes of
 * kept bundles / time; weights rotate over copies larger than the last-level cache.
 */

import type { Backend, IndexList, MatView, Tensor } from "../lib/backends/backend.ts";
import { ReferenceBackend } from "../lib/backends/reference.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { keptRows, type Prepared, randn, timeRun } from "./gemv_bench.ts";
import { rng } from "../lib/util/seeded_rng.ts";

/** One measurement. */
export interface FfnResult {
  sparsity: number;
  /** Kept neurons come in runs of this many (1 = random). */
  run: number;
  impl: string;
  /** Microseconds per FFN layer. */
  us: number;
  /** Kept weight bytes per second, 1e9. */
  gbps: number;
}

/** Options of {@link runFfnBench}. */
export interface FfnBenchOptions {
  I?: number;
  H?: number;
  sparsities?: number[];
  /** Run lengths of kept neurons per masked case (1 = random, 64 = clustered). */
  runs?: number[];
  minMs?: number;
  reps?: number;
  workingSet?: number;
  log?: (line: string) => void;
}

function prepare(
  be: Backend,
  fused: boolean,
  bundles: MatView[][], // per copy: [gate, up, downT]
  rows: Int32Array,
  H: number,
  r: () => number,
): Prepared {
  const R = rows.length;
  const idx: IndexList = be.indices(rows);
  const x: Tensor = be.tensor(1, H); // [1, H]
  be.write(x, randn(H, r));
  const out: Tensor = be.tensor(1, H); // [1, H]
  const g: Tensor = be.tensor(1, R), u: Tensor = be.tensor(1, R); // [1, R]
  let n = 0;
  return {
    run: () => {
      const [gate, up, downT] = bundles[n++ % bundles.length];
      if (fused && be.ffn) {
        be.ffn(x, gate, up, downT, idx, out, null);
      } else {
        be.matmul(x, gate, idx, null, g);
        be.matmul(x, up, idx, null, u);
        be.siluMul(g, u, g);
        be.matmulTAdd(g, downT, idx, out);
      }
    },
    dispose() {
      for (const t of [x, out, g, u]) be.free(t);
      be.release(idx);
    },
  };
}

/** Run the FFN bench. */
export async function runFfnBench(opts: FfnBenchOptions = {}): Promise<FfnResult[]> {
  const I = opts.I ?? 1536, H = opts.H ?? 576;
  const sparsities = opts.sparsities ?? [0, 0.2, 0.5];
  const runs = opts.runs ?? [1, 64];
  const minMs = opts.minMs ?? 150, reps = opts.reps ?? 3;
  const log = opts.log ?? ((s: string) => console.error(s));
  const workingSet = opts.workingSet ?? 64 << 20;
  const r = rng(7);
  const data = randn(I * 3 * H, r); // [I, 3H]
  const cases: { name: string; be: Backend; fused: boolean; bpe: number; maxCopies: number }[] = [];
  const w32 = await WasmBackend.create({ weightDType: "f32" });
  const w16 = await WasmBackend.create({ weightDType: "f16" });
  const w8 = await WasmBackend.create({ weightDType: "q8" });
  const ref = new ReferenceBackend();
  cases.push({ name: "wasm f32 4 ops", be: w32, fused: false, bpe: 4, maxCopies: 99 });
  cases.push({ name: "wasm f32 fused", be: w32, fused: true, bpe: 4, maxCopies: 99 });
  cases.push({ name: "wasm f16 4 ops", be: w16, fused: false, bpe: 2, maxCopies: 99 });
  cases.push({ name: "wasm f16 fused", be: w16, fused: true, bpe: 2, maxCopies: 99 });
  cases.push({ name: "wasm q8 fused", be: w8, fused: true, bpe: 36 / 32, maxCopies: 99 });
  cases.push({ name: "TS reference 4 ops", be: ref, fused: false, bpe: 4, maxCopies: 2 });
  const bundlesOf = new Map<Backend, MatView[][]>();
  for (const c of cases) {
    if (bundlesOf.has(c.be)) continue;
    const kept = 1 - Math.max(...sparsities); // kept bytes of the sparsest mask exceed the cache
    const copies = Math.min(c.maxCopies, Math.ceil(workingSet / (I * 3 * H * c.bpe * kept)));
    const list: MatView[][] = [];
    for (let k = 0; k < copies; k++) {
      const buf = c.be.weights(data);
      const v = (off: number): MatView => ({ buf, offset: off, stride: 3 * H, rows: I, cols: H });
      list.push([v(0), v(H), v(2 * H)]);
    }
    bundlesOf.set(c.be, list);
  }
  const results: FfnResult[] = [];
  const masks = sparsities.flatMap((sp) => (sp === 0 ? [[sp, 1]] : runs.map((run) => [sp, run])));
  for (const [sp, run] of masks) {
    const keep = Math.round(I * (1 - sp));
    const rows = keptRows(I, keep, r, run);
    log(`ffn sparsity ${sp} run ${run}: ${keep} neurons`);
    const prepared = cases.map((c) => prepare(c.be, c.fused, bundlesOf.get(c.be)!, rows, H, r));
    const best = cases.map(() => Infinity);
    // Untimed warm-up: V8 tiers wasm and JS up from baseline code; first touches of memory.
    for (const p of prepared) await timeRun(p, Math.min(minMs, 100));
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < cases.length; i++) {
        const ms = cases[i].be === ref ? Math.min(minMs, 100) : minMs;
        best[i] = Math.min(best[i], await timeRun(prepared[i], ms));
      }
    }
    cases.forEach((c, i) =>
      results.push({
        sparsity: sp,
        run,
        impl: c.name,
        us: best[i],
        gbps: (keep * 3 * H * c.bpe) / (best[i] * 1e3),
      })
    );
    for (const p of prepared) p.dispose();
  }
  for (const [be, list] of bundlesOf) for (const b of list) be.release(b[0].buf);
  return results;
}

/** A markdown table: µs and GB/s per implementation, and speedup over the dense layer. */
export function formatFfnTable(results: FfnResult[]): string {
  const impls = [...new Set(results.map((r) => r.impl))];
  const masks = [...new Set(results.map((r) => `${r.sparsity}|${r.run}`))];
  const get = (m: string, impl: string) =>
    results.find((r) => `${r.sparsity}|${r.run}` === m && r.impl === impl)!;
  const head = ["pruned", ...impls.map((i) => `${i} µs (GB/s, x dense)`)];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const m of masks) {
    const [sp, run] = m.split("|").map(Number);
    const cells = impls.map((i) => {
      const r = get(m, i), d = get("0|1", i);
      return `${r.us.toFixed(0)} (${r.gbps.toFixed(1)}, ${(d.us / r.us).toFixed(2)}x)`;
    });
    const kind = sp === 0 ? "" : run === 1 ? " random" : ` runs of ${run}`;
    lines.push(
      `| ${(sp * 100).toFixed(0)}%${kind} (ideal ${(1 / (1 - sp)).toFixed(2)}x) | ${
        cells.join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}
