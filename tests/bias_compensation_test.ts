import assert from "node:assert/strict";
import { compensationBias, headChannels } from "../lib/calibrate/bias_compensation.ts";
import { rng } from "../lib/util/seeded_rng.ts";
import { RunningStats } from "../lib/calibrate/running_stats.ts";

/** y[t, r] = sum over kept c of x[t, c] w[r, c] (+ b[r]): a pruned projection, x [T, D], w [H, D]. */
function project(
  x: Float32Array,
  T: number,
  w: Float32Array,
  H: number,
  D: number,
  keep: Set<number>,
  b?: Float32Array,
) {
  const y = new Float64Array(T * H); // [T, H]
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < H; r++) {
      let s = b ? b[r] : 0;
      for (let c = 0; c < D; c++) if (keep.has(c)) s += x[t * D + c] * w[r * D + c];
      y[t * H + r] = s;
    }
  }
  return y;
}

function colMean(y: Float64Array, T: number, H: number) {
  const m = new Float64Array(H);
  for (let t = 0; t < T; t++) for (let r = 0; r < H; r++) m[r] += y[t * H + r] / T;
  return m;
}

Deno.test("with compensation, the pruned layer's mean output over the calibration data equals the dense mean (1e-4)", () => {
  const r = rng(11);
  const T = 300;
  const D = 24; // e.g. I (down_proj) or n_h*d_h (o_proj)
  const H = 8;
  const x = Float32Array.from({ length: T * D }, (_, i) => (i % D) * 0.1 + r() * 2 - 0.5); // [T, D]
  const w = Float32Array.from({ length: H * D }, () => r() * 2 - 1); // [H, D]
  const stats = new RunningStats(D);
  for (let t = 0; t < T; t += 50) stats.update(x.subarray(t * D, (t + 50) * D));
  const kept = Int32Array.from([0, 3, 4, 7, 8, 9, 15, 20, 23]);
  const b = compensationBias(w, H, D, stats.mean, kept);
  const all = new Set(Array.from({ length: D }, (_, i) => i));
  const dense = colMean(project(x, T, w, H, D, all), T, H);
  const pruned = colMean(project(x, T, w, H, D, new Set(kept)), T, H);
  const comp = colMean(project(x, T, w, H, D, new Set(kept), b), T, H);
  let worst = 0;
  for (let i = 0; i < H; i++) {
    assert.ok(
      Math.abs(comp[i] - dense[i]) <= 1e-4 * Math.max(1, Math.abs(dense[i])),
      `row ${i}: ${comp[i]} vs ${dense[i]}`,
    );
    worst = Math.max(worst, Math.abs(pruned[i] - dense[i]));
  }
  assert.ok(worst > 1e-2, "the test data must make pruning shift the mean");
});

Deno.test("head channels expand kept heads to their d_h channels; nothing pruned gives a zero bias", () => {
  assert.deepEqual([...headChannels(Int32Array.from([0, 2]), 3)], [0, 1, 2, 6, 7, 8]);
  const b = compensationBias(
    new Float32Array(6).fill(1),
    2,
    3,
    Float64Array.from([1, 2, 3]),
    Int32Array.from([0, 1, 2]),
  );
  assert.deepEqual([...b], [0, 0]);
});
