import assert from "node:assert/strict";
import { rng } from "../lib/util/seeded_rng.ts";
import { computeScores, weightedScores } from "../lib/calibrate/scores.ts";
import { emptyTaskStats, weightColumnStats } from "../lib/calibrate/stats_types.ts";

// Fixture: L=1, H=3, I=4, n_h=2, d_h=2. Activations of 3 tokens, weights given by hand.
const d = {
  numLayers: 1,
  hiddenSize: 3,
  intermediateSize: 4,
  numHeads: 2,
  headDim: 2,
  numKvHeads: 2,
  vocabSize: 8,
};
const mlpAct = Float32Array.from([1, 2, 0, -1, 3, 2, 0, 1, 2, 5, 0, 0]); // [T=3, I=4]
const attnOut = Float32Array.from([1, 0, 2, 2, -1, 0, 2, 4, 0, 3, 2, 0]); // [T=3, 4]
const wDown = Float32Array.from([1, -2, 0, 1, 0, 1, 3, -1, 2, 0, 1, 0]); // [H=3, I=4]
const wO = Float32Array.from([0.5, 1, -1, 0, 1, 1, 0, 2, 0, -2, 1, 1]); // [H=3, 4]

function stats() {
  const ts = emptyTaskStats("t", d);
  ts.layers[0].mlpAct.update(mlpAct);
  ts.layers[0].attnOut.update(attnOut);
  return ts;
}

/** Column j of a [3, 4] matrix. */
const col = (w: Float32Array, j: number) => [w[j], w[4 + j], w[8 + j]];
/** Population variance / mean of squares of column j of a [3, 4] activation. */
const v = (x: Float32Array, j: number) => {
  const c = col(x, j);
  const m = c.reduce((a, b) => a + b) / 3;
  return c.reduce((a, b) => a + (b - m) ** 2, 0) / 3;
};
const ms = (x: Float32Array, j: number) => col(x, j).reduce((a, b) => a + b * b, 0) / 3;
const sq = (w: Float32Array, j: number) => col(w, j).reduce((a, b) => a + b * b, 0);
const ab = (w: Float32Array, j: number) => col(w, j).reduce((a, b) => a + Math.abs(b), 0);

function near(a: ArrayLike<number>, b: number[], what: string) {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) {
    assert.ok(
      Math.abs(a[i] - b[i]) <= 1e-9 * Math.max(1, Math.abs(b[i])),
      `${what}[${i}] ${a[i]} vs ${b[i]}`,
    );
  }
}

const wcs = [weightColumnStats(wO, wDown, d)];

Deno.test("WIFV matches var * ||W col||^2 (neurons) and the mean over a head's channels", () => {
  const [s] = computeScores(stats(), wcs, d, "wifv");
  near(s.neurons, [0, 1, 2, 3].map((j) => v(mlpAct, j) * sq(wDown, j)), "neurons");
  const ch = [0, 1, 2, 3].map((c) => v(attnOut, c) * sq(wO, c));
  near(s.heads, [(ch[0] + ch[1]) / 2, (ch[2] + ch[3]) / 2], "heads");
});

Deno.test("WIFN uses sqrt(mean of squares) in place of the variance", () => {
  const [s] = computeScores(stats(), wcs, d, "wifn");
  near(s.neurons, [0, 1, 2, 3].map((j) => Math.sqrt(ms(mlpAct, j)) * sq(wDown, j)), "neurons");
  const ch = [0, 1, 2, 3].map((c) => Math.sqrt(ms(attnOut, c)) * sq(wO, c));
  near(s.heads, [(ch[0] + ch[1]) / 2, (ch[2] + ch[3]) / 2], "heads");
});

Deno.test("Wanda-sp is sum |W col| * sqrt(mean of squares), summed over a head's channels", () => {
  const [s] = computeScores(stats(), wcs, d, "wanda-sp");
  near(s.neurons, [0, 1, 2, 3].map((j) => ab(wDown, j) * Math.sqrt(ms(mlpAct, j))), "neurons");
  const ch = [0, 1, 2, 3].map((c) => ab(wO, c) * Math.sqrt(ms(attnOut, c)));
  near(s.heads, [ch[0] + ch[1], ch[2] + ch[3]], "heads");
});

Deno.test("generic scores are the weighted sum of task scores", () => {
  const r = rng(3);
  const mk =
    () => [{ heads: Float64Array.from([r(), r()]), neurons: Float64Array.from([r(), r(), r()]) }];
  const a = mk();
  const b = mk();
  const [g] = weightedScores([a, b], [3, 2]);
  near(g.neurons, [0, 1, 2].map((i) => 3 * a[0].neurons[i] + 2 * b[0].neurons[i]), "neurons");
  near(g.heads, [0, 1].map((i) => 3 * a[0].heads[i] + 2 * b[0].heads[i]), "heads");
});
