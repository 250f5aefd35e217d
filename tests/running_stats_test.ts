import assert from "node:assert/strict";
import { RunningStats } from "../lib/calibrate/running_stats.ts";
import { rng } from "../lib/util/seeded_rng.ts";

/** Two-pass float64 reference: mean, population variance, mean of squares per channel. */
function twoPass(x: Float32Array, D: number) {
  const n = x.length / D;
  const mean = new Float64Array(D);
  for (let r = 0; r < n; r++) for (let c = 0; c < D; c++) mean[c] += x[r * D + c];
  mean.forEach((_, c) => mean[c] /= n);
  const v = new Float64Array(D);
  const q = new Float64Array(D);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < D; c++) {
      v[c] += (x[r * D + c] - mean[c]) ** 2;
      q[c] += x[r * D + c] ** 2;
    }
  }
  return { mean, v: v.map((a) => a / n), q: q.map((a) => a / n) };
}

function close(a: Float64Array, b: Float64Array, rel: number, what: string) {
  for (let i = 0; i < a.length; i++) {
    const tol = rel * Math.max(Math.abs(b[i]), 1e-12);
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

// Activations with a large offset relative to their spread (where naive sum-of-squares fails).
function data(rows: number, D: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(rows * D);
  for (let i = 0; i < x.length; i++) x[i] = 1000 + (i % D) + (r() - 0.5) * 0.01 * (1 + (i % 3));
  return x;
}

Deno.test("streaming statistics in uneven batches equal a two-pass computation (1e-5 rel)", () => {
  const D = 7;
  const x = data(1000, D, 1);
  const s = new RunningStats(D);
  let r0 = 0;
  for (const rows of [1, 3, 250, 17, 400, 329]) {
    s.update(x.subarray(r0 * D, (r0 + rows) * D));
    r0 += rows;
  }
  assert.equal(r0, 1000);
  assert.equal(s.count, 1000);
  const ref = twoPass(x, D);
  close(s.mean, ref.mean, 1e-12, "mean");
  close(s.variance(), ref.v, 1e-5, "var");
  close(s.meanSquare(), ref.q, 1e-10, "meansq");
});

Deno.test("merging the statistics of two halves equals one pass", () => {
  const D = 5;
  const x = data(600, D, 2);
  const one = new RunningStats(D);
  one.update(x);
  const a = new RunningStats(D);
  const b = new RunningStats(D);
  a.update(x.subarray(0, 211 * D));
  b.update(x.subarray(211 * D));
  a.merge(b);
  assert.equal(a.count, 600);
  close(a.mean, one.mean, 1e-13, "mean");
  close(a.variance(), one.variance(), 1e-9, "var");
  // merge into empty and from empty are identities
  const e = new RunningStats(D);
  e.merge(one);
  close(e.variance(), one.variance(), 0, "var");
  one.merge(new RunningStats(D));
  assert.equal(one.count, 600);
});

Deno.test("RunningStats rejects a batch that is not rows x D", () => {
  assert.throws(() => new RunningStats(3).update(new Float32Array(4)), /not rows x 3/);
});
