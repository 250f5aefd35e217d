/**
 * What the WASM thread pool's cuts cost on one thread, and what a cut op's synchronisation
 * costs: the numbers behind what decode cuts (lib/backends/wasm_threads.ts, docs/design.md, WASM
 * threads). All on the SmolLM2-135M shapes, weights out of cache (30 layers' worth), interleaved
 * rounds, best and median:
 *
 * - the FFN at T = 1: the fused kernel, against its two cut phases run back to back on one thread
 *   (gate/up of every neuron with no down part, then down^T as matmulTAdd): the bytes are the
 *   same, the access pattern is the cut one;
 * - the o-projection (matmulTAdd, [576, 576]) at T = 1: whole rows against two column halves;
 * - a tiny op (a 128 x 64 matmul) on 1 thread and cut on 2 (the caller may run every task), and
 *   on 2 with the worker made to run half: the per-op cost of a job.
 *
 *   deno run -A bench/thread_cut_bench.ts [--rounds 9]
 */

import { parseArgs } from "node:util";
import type { MatView, WeightBuffer } from "../lib/backends/backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";

/** One timed variant: milliseconds (or microseconds per op) per round. */
export interface CutCostRow {
  what: string;
  variant: string;
  unit: "ms" | "us/op";
  times: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Run every variant in `rounds` interleaved rounds. */
async function rounds(
  variants: { what: string; variant: string; unit: "ms" | "us/op"; run: () => number }[],
  n: number,
): Promise<CutCostRow[]> {
  const rows = variants.map((v) => ({ what: v.what, variant: v.variant, unit: v.unit, times: [] }));
  for (const v of variants) v.run(); // warm-up
  for (let r = 0; r < n; r++) {
    for (const [k, v] of variants.entries()) (rows[k].times as number[]).push(v.run());
    await new Promise((res) => setTimeout(res, 0));
  }
  return rows;
}

/** Time the cuts' single-thread cost and a job's overhead; see the module comment. */
export async function runCutCostBench(opts: { rounds?: number } = {}): Promise<CutCostRow[]> {
  const n = opts.rounds ?? 9;
  const K = 576, M = 576, N = 1536, L = 30, S = 2 * K + M;
  const data = Float32Array.from({ length: N * S }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const be = await WasmBackend.create();
  const bundles = Array.from({ length: L }, () => be.weights(data));
  const v = (w: WeightBuffer, offset: number, stride: number, rows: number, cols: number) =>
    ({ buf: w, offset, stride, rows, cols }) as MatView;
  const x = be.tensor(1, K);
  be.write(x, data.subarray(0, K));
  const out = be.tensor(1, M), none = be.tensor(1, 0), act = be.tensor(1, N);
  const timed = (f: () => void) => () => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  const oT = Array.from({ length: 4 * L }, () => be.weights(data.subarray(0, M * M)));
  const half = be.tensor(1, M / 2);
  const tiny = async (threads: number, wait: boolean) => {
    const b = await WasmBackend.create({ threads });
    if (b.threadPool) {
      b.threadPool.minWork = 0;
      b.threadPool.waitForWorkers = wait;
    }
    const w = b.weights(data.subarray(0, 128 * 64));
    const tx = b.tensor(1, 64), to = b.tensor(1, 128);
    const ops = 2000;
    return {
      b,
      run: () => {
        const t0 = performance.now();
        for (let i = 0; i < ops; i++) b.matmul(tx, v(w, 0, 64, 128, 64), null, null, to);
        return (performance.now() - t0) * 1000 / ops;
      },
    };
  };
  const t1 = await tiny(1, false), t2 = await tiny(2, false), t2w = await tiny(2, true);
  try {
    const ffn = "FFN, 30 layers, T = 1";
    const o = "o-projection matmulTAdd [576, 576], 120 matrices, T = 1";
    const job = "128 x 64 matmul (one tiny op)";
    return await rounds([
      {
        what: ffn,
        variant: "fused kernel (one thread today)",
        unit: "ms",
        run: timed(() => {
          for (const w of bundles) {
            be.ffn(x, v(w, 0, S, N, K), v(w, K, S, N, K), v(w, 2 * K, S, N, M), null, out, null);
          }
        }),
      },
      {
        what: ffn,
        variant: "cut phases back to back: gate/up only, then down^T",
        unit: "ms",
        run: timed(() => {
          for (const w of bundles) {
            be.ffn(x, v(w, 0, S, N, K), v(w, K, S, N, K), v(w, 2 * K, S, N, 0), null, none, act);
            be.matmulTAdd(act, v(w, 2 * K, S, N, M), null, out);
          }
        }),
      },
      {
        what: o,
        variant: "whole rows",
        unit: "ms",
        run: timed(() => {
          for (const w of oT) be.matmulTAdd(x, v(w, 0, M, K, M), null, out);
        }),
      },
      {
        what: o,
        variant: "two column halves back to back",
        unit: "ms",
        run: timed(() => {
          for (const w of oT) {
            be.matmulTAdd(x, v(w, 0, M, K, M / 2), null, half);
            be.matmulTAdd(x, v(w, M / 2, M, K, M / 2), null, half);
          }
        }),
      },
      { what: job, variant: "1 thread", unit: "us/op", run: t1.run },
      { what: job, variant: "cut, 2 threads", unit: "us/op", run: t2.run },
      { what: job, variant: "cut, 2 threads, worker runs half", unit: "us/op", run: t2w.run },
    ], n);
  } finally {
    for (const t of [t1, t2, t2w]) await t.b.close();
  }
}

/** Markdown: best and median per variant, and each variant's median over its group's first. */
export function formatCutCostTable(rows: CutCostRow[]): string {
  const out = [
    "| measured | variant | best | median | median vs first |",
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    const first = rows.find((x) => x.what === r.what)!;
    out.push(
      `| ${r.what} | ${r.variant} | ${Math.min(...r.times).toFixed(1)} ${r.unit} | ` +
        `${median(r.times).toFixed(1)} ${r.unit} | ` +
        `${(median(r.times) / median(first.times)).toFixed(2)}x |`,
    );
  }
  const load = Deno.loadavg()[0];
  return out.join("\n") + `\n\nLoad average (1 min) at the end: ${load.toFixed(2)}.`;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "9" } } });
  console.log(formatCutCostTable(await runCutCostBench({ rounds: Number(values.rounds) })));
}
