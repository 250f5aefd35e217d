/**
 * The prefill suffix check shared by the WASM tile tests (tests/wasm_prefill_tile_test.ts for
 * f32/f16, tests/wasm_q8_tile_test.ts for q8): every suffix of 2 to 10 tokens of an 11-token batch
 * is run on its own through matmul and the fused FFN, and its rows are compared bit for bit with
 * the full batch's. T = 1 (decode's own order) is left out: it differs by rounding.
 */
import type { Backend } from "../../lib/backends/backend.ts";
import { bell, rng, subset } from "./seeded.ts";
import { ffnBundle } from "./ffn_bundle.ts";

/** Worst |full - suffix| over every suffix and output, and where it is (empty when 0). */
export interface SuffixDiff {
  worst: number;
  where: string;
}

/**
 * Run the suffix check on `be` at reduction width `K`, dense and masked (23 of 37 rows); `seed`
 * seeds the weights and inputs. Returns the dense and masked results in that order.
 */
export async function prefillSuffixDiffs(
  be: Backend,
  K: number,
  seed: number,
): Promise<{ masked: boolean; diff: SuffixDiff }[]> {
  const r = rng(seed);
  const T = 11, M = 64, N = 37;
  const { gate, up, down } = ffnBundle(be, bell(N * (2 * K + M), r, 0.5), N, K, M);
  const xs = bell(T * K, r); // [T, K]
  const run = async (s: number, masked: boolean) => {
    const n = T - s;
    const rows = masked ? be.indices(subset(N, 23, rng(7))) : null;
    const R = masked ? 23 : N;
    const x = be.tensor(n, K); // [n, K]
    be.write(x, xs.subarray(s * K));
    const mm = be.tensor(n, R); // [n, R]
    be.matmul(x, gate, rows, null, mm);
    const f = be.tensor(n, M); // [n, M]
    be.write(f, new Float32Array(n * M));
    be.ffn!(x, gate, up, down, rows, f, null);
    return { mm: await be.read(mm), f: await be.read(f), R };
  };
  const out: { masked: boolean; diff: SuffixDiff }[] = [];
  for (const masked of [false, true]) {
    const full = await run(0, masked);
    let worst = 0, where = "";
    for (let s = 1; s < T - 1; s++) { // suffixes of 10..2 tokens
      const part = await run(s, masked);
      for (
        const [name, a, b, w] of [
          ["matmul", full.mm, part.mm, full.R],
          ["ffn", full.f, part.f, M],
        ] as const
      ) {
        for (let i = 0; i < b.length; i++) {
          const e = Math.abs(a[s * w + i] - b[i]);
          if (e > worst || (e === worst && !where)) {
            worst = e;
            where = `${name} suffix ${s} token ${s + Math.floor(i / w)} col ${i % w}`;
          }
        }
      }
    }
    out.push({ masked, diff: { worst, where } });
  }
  return out;
}
