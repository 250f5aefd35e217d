import assert from "node:assert/strict";
import { logisticSchedule, uniformSchedule } from "../lib/calibrate/layer_sparsity.ts";
import { rng } from "../lib/util/seeded_rng.ts";
import type { LayerScores } from "../lib/calibrate/scores.ts";
import {
  headCost,
  selectGlobal,
  selectPerLayer,
  standardize,
} from "../lib/calibrate/select_mask.ts";

Deno.test("logistic UL-LD: protected layers get 0, mean over prunable layers = target (±0.5%)", () => {
  for (
    const [L, G, p] of [
      [32, 0.5, { m: 2, n: 2, k: 1.2, x0: 0.3 }],
      [24, 0.2, { m: 2, n: 2, k: 1.2, x0: 0.3 }],
      [12, 0.35, { m: 3, n: 1, k: 4, x0: 0.6 }],
      [6, 0.5, { m: 2, n: 2, k: 1.2, x0: 0.3 }],
    ] as const
  ) {
    const { rho, lambda } = logisticSchedule(L, G, p);
    assert.equal(rho.length, L);
    for (let l = 0; l < p.m; l++) assert.equal(rho[l], 0, `layer ${l}`);
    for (let l = L - p.n; l < L; l++) assert.equal(rho[l], 0, `layer ${l}`);
    const P = L - p.m - p.n;
    const mean = rho.slice(p.m, L - p.n).reduce((a, b) => a + b, 0) / P;
    assert.ok(Math.abs(mean - G) <= 0.005 * G, `L=${L} G=${G}: mean ${mean}`);
    // independent check of the shape: rho_l = Lambda * sigmoid(k (x_l - x0)), x_l in [0, 1]
    for (let i = 0; i < P; i++) {
      const x = P > 1 ? i / (P - 1) : 0;
      const want = lambda / (1 + Math.exp(-p.k * (x - p.x0)));
      assert.ok(Math.abs(rho[p.m + i] - want) < 1e-12);
    }
    // increasing with depth (k > 0)
    for (let i = 1; i < P; i++) assert.ok(rho[p.m + i] > rho[p.m + i - 1]);
  }
});

Deno.test("logistic schedule refuses a model with no prunable layer", () => {
  assert.throws(() => logisticSchedule(4, 0.5), /none of 4/);
  assert.deepEqual(uniformSchedule(3, 0.25), [0.25, 0.25, 0.25]);
  assert.throws(() => uniformSchedule(3, 1), /\[0, 1\)/);
});

function randomScores(L: number, nh: number, I: number, seed: number): LayerScores[] {
  const r = rng(seed);
  return Array.from({ length: L }, (_, l) => ({
    heads: Float64Array.from({ length: nh }, () => r() * (l + 1)),
    neurons: Float64Array.from({ length: I }, () => r() ** 3 * (l + 1)),
  }));
}

Deno.test("per-layer selection prunes exactly the floor(n * rho) lowest-scoring units", () => {
  const s = randomScores(3, 8, 50, 1);
  const k = selectPerLayer(s, [0, 0.5, 0.33]);
  assert.deepEqual([...k.heads.map((h) => h.length)], [8, 4, 6]);
  assert.deepEqual([...k.neurons.map((h) => h.length)], [50, 25, 34]);
  // every kept neuron of layer 1 scores >= every pruned one
  const kept = new Set(k.neurons[1]);
  const minKept = Math.min(...[...kept].map((j) => s[1].neurons[j]));
  for (let j = 0; j < 50; j++) if (!kept.has(j)) assert.ok(s[1].neurons[j] <= minKept);
});

Deno.test("AL-AM keeps (1 - ratio) of the total cost (within one unit's cost)", () => {
  const H = 64;
  const nh = 4;
  const I = 200;
  const L = 5;
  const hc = headCost(H, nh);
  for (const ratio of [0.2, 0.5, 0.7]) {
    const s = randomScores(L, nh, I, 7);
    const k = selectGlobal(s, H, nh, ratio);
    const total = L * (I + nh * hc);
    const kept = k.neurons.reduce((a, n) => a + n.length, 0) +
      k.heads.reduce((a, h) => a + h.length * hc, 0);
    const target = (1 - ratio) * total;
    assert.ok(
      kept >= target - 1e-9 && kept <= target + hc,
      `ratio ${ratio}: kept ${kept} target ${target}`,
    );
    // the kept set is a prefix of the global ranking of standardised scores
    const z = s.map((ls) => ({ h: standardize(ls.heads), n: standardize(ls.neurons) }));
    let minKept = Infinity;
    let maxPruned = -Infinity;
    z.forEach((zl, l) => {
      const kh = new Set(k.heads[l]);
      const kn = new Set(k.neurons[l]);
      zl.h.forEach((v, i) =>
        kh.has(i) ? (minKept = Math.min(minKept, v)) : (maxPruned = Math.max(maxPruned, v))
      );
      zl.n.forEach((v, i) =>
        kn.has(i) ? (minKept = Math.min(minKept, v)) : (maxPruned = Math.max(maxPruned, v))
      );
    });
    assert.ok(minKept >= maxPruned, `ranking: min kept ${minKept} < max pruned ${maxPruned}`);
  }
});

Deno.test("robust standardisation: median 0, IQR 1, clipped to ±3", () => {
  const z = standardize(Float64Array.from([1, 2, 3, 4, 5, 100]));
  // sorted: lower median 3; q1 = 2.25, q3 = 4.75 (linear interpolation), IQR 2.5
  const want = [1, 2, 3, 4, 5, 100].map((x) => Math.max(-3, Math.min(3, (x - 3) / (2.5 + 1e-9))));
  z.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12));
  assert.equal(z[5], 3);
});
