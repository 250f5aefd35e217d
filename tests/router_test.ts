import assert from "node:assert/strict";
import {
  auroc,
  budgetThreshold,
  chooseOodThreshold,
  mahalanobisScorer,
} from "../lib/calibrate/ood_eval.ts";
import {
  evaluateRouter,
  genericShare,
  lbfgs,
  stratifiedSplit,
  trainRouter,
} from "../lib/calibrate/router.ts";
import { route } from "../lib/masks/router.ts";
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

/**
 * Task points live in the first half of the dimensions (blobs, small noise elsewhere). OOD
 * points are displaced along the second half: training ones by 3..6 on dims 6 and 7, near the
 * task blobs; held-out ones by 4..9 on dims 6 and 7 plus one of dims 8..11, at random places of
 * the task half (so each is far from every task blob: out of distribution by construction).
 * `unseen` points are displaced only along dims 8..11, a direction no training point had.
 */
function oodWorld(seed: number) {
  const H = 12;
  const half = H / 2;
  const C = 4;
  const r = rng(seed);
  const g = () => r() + r() + r() - 1.5; // ~N(0, 0.25)
  const centres = Array.from({ length: C }, () => Array.from({ length: half }, () => r() * 6));
  const taskPoint = (c: number) =>
    Array.from({ length: H }, (_, h) => h < half ? centres[c][h] + g() : 0.2 * g());
  const oodPoint = (near: boolean, dims: number[], lo: number, hi: number) => {
    const c = centres[Math.floor(r() * C)];
    return Array.from({ length: H }, (_, h) => {
      if (h < half) return near ? c[h] + 2 * g() : r() * 6;
      return dims.includes(h) ? lo + r() * (hi - lo) : 0.2 * g();
    });
  };
  const flat = (rows: number[][]) => Float32Array.from(rows.flat());
  const taskRows = (n: number) => {
    const rows: number[][] = [];
    const y: number[] = [];
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < n; i++) {
        rows.push(taskPoint(c));
        y.push(c);
      }
    }
    return { x: flat(rows), y: Int32Array.from(y) };
  };
  return {
    H,
    tasks: ["a", "b", "c", "d"],
    train: taskRows(60),
    tune: taskRows(50),
    test: taskRows(50),
    oodTrain: flat(Array.from({ length: 200 }, () => oodPoint(true, [6, 7], 3, 6))),
    oodTest: flat(
      Array.from({ length: 200 }, (_, i) => oodPoint(false, [6, 7, 8 + (i % 4)], 4, 9)),
    ),
    unseen: flat(Array.from({ length: 200 }, (_, i) => oodPoint(true, [8 + (i % 4)], 4, 9))),
  };
}

Deno.test("router OOD: an 'other' class sends held-out OOD points to generic, keeps in-task points", () => {
  const w = oodWorld(11);
  const H = w.H;
  const router = trainRouter(w.train.x, w.train.y, w.tasks, { layer: 2, oodX: w.oodTrain });
  assert.ok(router.ood, "router has an OOD test");
  router.ood!.threshold = chooseOodThreshold(router, w.tune.x, 0.005);
  const ev = evaluateRouter(router, w.test.x, w.test.y);
  const oodShare = genericShare(router, w.oodTest);
  const unseenShare = genericShare(router, w.unseen);
  const maha = mahalanobisScorer(router, w.train.x, w.train.y);
  const mahaT = budgetThreshold(
    Array.from({ length: w.tune.y.length }, (_, i) => maha(w.tune.x.subarray(i * H, (i + 1) * H))),
    0.005,
  );
  const mahaUnseen = Array.from(
    { length: w.unseen.length / H },
    (_, i) => maha(w.unseen.subarray(i * H, (i + 1) * H)) > mahaT,
  ).filter(Boolean).length / (w.unseen.length / H);
  console.log(
    `synthetic: threshold ${router.ood!.threshold.toFixed(4)}, in-task served ${
      (ev.routedAccuracy * 100).toFixed(1)
    }%, held-out OOD generic ${(oodShare * 100).toFixed(1)}%; a direction never trained on: ` +
      `other-class ${(unseenShare * 100).toFixed(1)}%, Mahalanobis ${
        (mahaUnseen * 100).toFixed(1)
      }%`,
  );
  assert.ok(ev.routedAccuracy >= 0.99, `in-task served ${ev.routedAccuracy}`);
  assert.ok(oodShare >= 0.95, `held-out OOD generic ${oodShare}`);
  // The limit of the method, by construction: the "other" class knows the directions it was
  // shown; a distance to the task clusters does not need them.
  assert.ok(unseenShare < 0.5, `other-class on an unseen direction: ${unseenShare}`);
  assert.ok(mahaUnseen >= 0.95, `Mahalanobis on an unseen direction: ${mahaUnseen}`);
  // a decision is consistent with its parts
  const one = route(router, w.oodTest.subarray(0, H));
  assert.equal(one.ood, one.oodScore! > router.ood!.threshold);
  assert.equal(one.useGeneric, one.ood || one.confidence < router.threshold);
  assert.ok(Math.abs(one.probs.reduce((a, b) => a + b) - 1) < 1e-5, "task probs sum to 1");
  // the same data without OOD training: no OOD test, the held-out OOD points get task masks
  const plain = trainRouter(w.train.x, w.train.y, w.tasks, { layer: 2 });
  assert.equal(plain.ood, null);
  const p = route(plain, w.oodTest.subarray(0, H));
  assert.equal(p.oodScore, null);
  assert.equal(p.ood, false);
  const plainShare = genericShare(plain, w.oodTest);
  assert.ok(plainShare < 0.5, `a router without the test sends ${plainShare} to generic`);
});

Deno.test("OOD threshold: the (1 - budget) quantile of held-out in-task scores, in [floor, cap]", () => {
  const s = Array.from({ length: 100 }, (_, i) => (i + 1) / 200); // 0.005 .. 0.5
  assert.equal(budgetThreshold(s, 0), 0.5);
  assert.equal(budgetThreshold(s, 0.05), 0.475); // 5 scores above it
  assert.equal(s.filter((v) => v > budgetThreshold(s, 0.05)).length, 5);
  assert.equal(budgetThreshold([...s].reverse(), 0.009), 0.5); // floor(0.9) = 0 allowed above
  // chooseOodThreshold on a router whose P(other) is known: bias-only "other" class
  const H = 2;
  const r = {
    tasks: ["a"],
    layer: 0,
    mean: new Float32Array(H),
    std: new Float32Array(H).fill(1),
    weight: new Float32Array(H),
    bias: Float32Array.of(0),
    threshold: 0.5,
    ood: { weight: Float32Array.of(1, 0), bias: 0, threshold: 0.5 },
  };
  // P(other) = sigmoid(x0); x0 = -10 -> ~4.5e-5 (floored to 0.01); x0 = 3 -> 0.953 (capped)
  assert.equal(chooseOodThreshold(r, Float32Array.of(-10, 0, -12, 0)), 0.01);
  assert.equal(chooseOodThreshold(r, Float32Array.of(3, 0, -1, 0)), 0.5);
  const t = chooseOodThreshold(r, Float32Array.of(-1, 0, -2, 0), 0);
  assert.ok(Math.abs(t - 1 / (1 + Math.exp(1))) < 1e-9, `threshold ${t}`);
});

Deno.test("AUROC equals the share of (in, out) pairs ranked right, ties half", () => {
  const r = rng(3);
  const a = Array.from({ length: 57 }, () => Math.round(r() * 20));
  const b = Array.from({ length: 43 }, () => Math.round(r() * 20 + 5));
  let pairs = 0;
  for (const x of a) for (const y of b) pairs += y > x ? 1 : y === x ? 0.5 : 0;
  const want = pairs / (a.length * b.length);
  const got = auroc(a, b);
  console.log(`auroc ${got} vs pair count ${want}`);
  assert.ok(Math.abs(got - want) < 1e-12);
});

Deno.test("Mahalanobis scorer: shared covariance and nearest class, against a hand 2x2 inverse", () => {
  // two classes in 2-D, identity standardisation
  const x = Float32Array.of(0, 0, 2, 1, 1, 2, 10, 0, 12, 1, 11, 2); // [6, 2]
  const y = Int32Array.of(0, 0, 0, 1, 1, 1);
  const r = {
    tasks: ["a", "b"],
    layer: 0,
    mean: new Float32Array(2),
    std: new Float32Array(2).fill(1),
    weight: new Float32Array(4),
    bias: new Float32Array(2),
    threshold: 0.5,
  };
  const score = mahalanobisScorer(r, x, y, 0);
  // by hand: means (1, 1) and (11, 1); residuals (-1,-1), (1,0), (0,1) twice
  // cov = [[4, 2], [2, 4]] / 6; inverse = 6 / 12 * [[4, -2], [-2, 4]]
  const inv = [[2, -1], [-1, 2]];
  const md = (d: number[]) =>
    d[0] * (inv[0][0] * d[0] + inv[0][1] * d[1]) + d[1] * (inv[1][0] * d[0] + inv[1][1] * d[1]);
  for (const p of [[3, 2], [7, -1], [11, 1], [0, 5]]) {
    const want = Math.min(md([p[0] - 1, p[1] - 1]), md([p[0] - 11, p[1] - 1]));
    const got = score(Float32Array.from(p));
    assert.ok(Math.abs(got - want) < 1e-9 * Math.max(1, want), `(${p}): ${got} vs ${want}`);
  }
});
