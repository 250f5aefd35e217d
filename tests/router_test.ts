import assert from "node:assert/strict";
import {
  evaluateRouter,
  lbfgs,
  route,
  stratifiedSplit,
  trainRouter,
} from "../lib/calibrate/router.ts";
import { rng } from "../lib/util/seeded_rng.ts";

/** Gaussian-ish blobs: class c centred at a random point, with a large shared offset. */
function blobs(C: number, perClass: number, H: number, seed: number, spread = 1) {
  const r = rng(seed);
  const centres = Array.from({ length: C }, () => Array.from({ length: H }, () => r() * 4));
  const x = new Float32Array(C * perClass * H); // [N, H]
  const y = new Int32Array(C * perClass);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < perClass; i++) {
      const n = c * perClass + i;
      y[n] = c;
      for (let h = 0; h < H; h++) {
        const g = (r() + r() + r() - 1.5) * spread;
        x[n * H + h] = 100 + centres[c][h] + g;
      }
    }
  }
  return { x, y };
}

Deno.test("L-BFGS finds the minimum of an ill-conditioned quadratic", () => {
  const a = [1, 10, 100, 1000];
  const t = [1, -2, 3, 0.5];
  const x = lbfgs(
    (v, g) => {
      let f = 0;
      for (let i = 0; i < 4; i++) {
        f += 0.5 * a[i] * (v[i] - t[i]) ** 2;
        g[i] = a[i] * (v[i] - t[i]);
      }
      return f;
    },
    new Float64Array(4),
    200,
    1e-10,
  );
  x.forEach((v, i) => assert.ok(Math.abs(v - t[i]) < 1e-6, `x[${i}] = ${v}`));
});

Deno.test("router: held-out accuracy on separable tasks, probabilities, confusion matrix", () => {
  const C = 4;
  const H = 6;
  const { x, y } = blobs(C, 60, H, 5, 1);
  const split = stratifiedSplit(y, 0.25, 1);
  assert.equal(split.test.length, 60);
  assert.equal(new Set([...split.train, ...split.test]).size, y.length);
  const pick = (idx: number[]) => {
    const xs = new Float32Array(idx.length * H);
    idx.forEach((i, r) => xs.set(x.subarray(i * H, (i + 1) * H), r * H));
    return { x: xs, y: Int32Array.from(idx, (i) => y[i]) };
  };
  const tr = pick(split.train);
  const te = pick(split.test);
  const tasks = ["a", "b", "c", "d"];
  const router = trainRouter(tr.x, tr.y, tasks, { layer: 2, threshold: 0.6 });
  const ev = evaluateRouter(router, te.x, te.y);
  assert.ok(ev.accuracy >= 0.95, `accuracy ${ev.accuracy}`);
  assert.equal(ev.confusion.flat().reduce((a, b) => a + b), te.y.length);
  assert.equal(
    ev.confusion.reduce((a, row, i) => a + row[i], 0),
    Math.round(ev.accuracy * te.y.length),
  );
  const res = route(router, te.x.subarray(0, H));
  assert.ok(Math.abs(res.probs.reduce((a, b) => a + b) - 1) < 1e-5);
  assert.equal(res.task, tasks[te.y[0]]);
  assert.equal(res.useGeneric, res.confidence < 0.6);
  // a point between all centres is uncertain -> generic
  const mid = new Float32Array(H).fill(0);
  for (let i = 0; i < x.length; i++) mid[i % H] += x[i] / y.length;
  const um = route({ ...router, threshold: 0.99 }, mid);
  assert.equal(um.useGeneric, true);
});

Deno.test("router on random labels does not reach the accuracy of real structure", () => {
  const H = 6;
  const { x, y } = blobs(3, 40, H, 9, 1);
  const r = rng(4);
  const shuffled = Int32Array.from(y, () => Math.floor(r() * 3));
  const split = stratifiedSplit(shuffled, 0.5, 2);
  const xs = new Float32Array(split.train.length * H);
  split.train.forEach((i, k) => xs.set(x.subarray(i * H, (i + 1) * H), k * H));
  const router = trainRouter(
    xs,
    Int32Array.from(split.train, (i) => shuffled[i]),
    ["a", "b", "c"],
    { layer: 0 },
  );
  const xt = new Float32Array(split.test.length * H);
  split.test.forEach((i, k) => xt.set(x.subarray(i * H, (i + 1) * H), k * H));
  const ev = evaluateRouter(router, xt, Int32Array.from(split.test, (i) => shuffled[i]));
  assert.ok(ev.accuracy < 0.8, `accuracy ${ev.accuracy} on random labels`);
});
