import assert from "node:assert/strict";
import {
  defaultProtectedLayers,
  logisticSchedule,
  maxLogisticTarget,
  resolveLogistic,
  ScheduleError,
  uniformSchedule,
} from "../lib/calibrate/layer_sparsity.ts";
import { rng } from "../lib/util/seeded_rng.ts";
import type { LayerScores } from "../lib/calibrate/scores.ts";
import {
  headCost,
  selectGlobal,
  selectPerLayer,
  standardize,
} from "../lib/calibrate/select_mask.ts";

Deno.test("logistic UL-LD = the paper's formula on a whole-model target: mean over all layers = G (±0.5%), protected layers 0", () => {
  for (
    const [L, G, p] of [
      [32, 0.5, { m: 2, n: 2, k: 1.2, x0: 0.3 }],
      [24, 0.2, { m: 2, n: 2, k: 1.2, x0: 0.3 }],
      [12, 0.3, { m: 3, n: 1, k: 4, x0: 0.6 }],
      [8, 0.5, { m: 1, n: 1, k: 1.2, x0: 0.3 }],
      [8, 0.2, { m: 1, n: 1, k: 1.2, x0: 0.3 }],
    ] as const
  ) {
    const { rho, prunableTarget } = logisticSchedule(L, G, p);
    assert.equal(rho.length, L);
    for (let l = 0; l < p.m; l++) assert.equal(rho[l], 0, `layer ${l}`);
    for (let l = L - p.n; l < L; l++) assert.equal(rho[l], 0, `layer ${l}`);
    const P = L - p.m - p.n;
    // the paper's code, evaluated directly: G' = min(1, G L / (L - m - n)); with no layer
    // clipped, Lambda = G' P / sum_i sigmoid(k (x_i - x0)), rho = Lambda sigmoid(k (x - x0))
    const gp = Math.min(1, G * L / (L - p.m - p.n));
    assert.ok(Math.abs(prunableTarget - gp) < 1e-12);
    const sig = Array.from(
      { length: P },
      (_, i) => 1 / (1 + Math.exp(-p.k * (i / (P - 1) - p.x0))),
    );
    const lambda = gp * P / sig.reduce((a, b) => a + b, 0);
    let worst = 0;
    let at = -1;
    for (let i = 0; i < P; i++) {
      const err = Math.abs(rho[p.m + i] - lambda * sig[i]);
      if (err > worst) [worst, at] = [err, p.m + i];
    }
    assert.ok(worst < 1e-9, `L=${L} G=${G}: worst error ${worst} at layer ${at}`);
    const meanAll = rho.reduce((a, b) => a + b, 0) / L;
    assert.ok(Math.abs(meanAll - G) <= 0.005 * G, `L=${L} G=${G}: whole-model mean ${meanAll}`);
    for (let i = 1; i < P; i++) assert.ok(rho[p.m + i] > rho[p.m + i - 1]);
  }
});

Deno.test("logistic UL-LD refuses a target that empties a layer, naming the highest reachable; allowed explicitly", () => {
  const p = { m: 2, n: 2, k: 1.2, x0: 0.3 };
  // 8 layers, 4 protected: the last prunable layer reaches rho = 1 at G = (4/8) mean/max shape
  const sig = [0, 1, 2, 3].map((i) => 1 / (1 + Math.exp(-1.2 * (i / 3 - 0.3))));
  const gMax = 0.5 * (sig.reduce((a, b) => a + b, 0) / 4) / sig[3];
  assert.ok(Math.abs(maxLogisticTarget(8, p) - gMax) < 1e-12);
  const below = logisticSchedule(8, gMax - 1e-6, p).rho;
  assert.ok(Math.max(...below) < 1 && Math.max(...below) > 0.999);
  assert.throws(
    () => logisticSchedule(8, 0.5, p),
    (e: Error) => e instanceof ScheduleError && e.message.includes(gMax.toFixed(4)),
  );
  const forced = logisticSchedule(8, 0.45, p, { allowEmptyLayers: true }).rho;
  assert.equal(Math.max(...forced), 1);
  const mean = forced.reduce((a, b) => a + b, 0) / 8;
  assert.ok(Math.abs(mean - 0.45) < 0.005 * 0.45, `mean ${mean}`);
});

Deno.test("protected layers default to the paper's 2 from 32 layers, 1/16 of the depth below (at least 1)", () => {
  assert.deepEqual([2, 6, 8, 16, 24, 30, 32, 40, 80].map(defaultProtectedLayers), [
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    2,
  ]);
  assert.deepEqual(resolveLogistic(8, {}), { m: 1, n: 1, k: 1.2, x0: 0.3 });
  assert.deepEqual(resolveLogistic(32, { n: 0, k: 2 }), { m: 2, n: 0, k: 2, x0: 0.3 });
  assert.throws(() => resolveLogistic(8, { m: -1 }), /whole number/);
});

Deno.test("logistic schedule refuses a model with no prunable layer", () => {
  assert.throws(() => logisticSchedule(4, 0.5, { m: 2, n: 2, k: 1.2, x0: 0.3 }), /none of 4/);
  assert.throws(() => resolveLogistic(2, {}), /none of 2/);
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
