/** Silhouette and PCA of the clustering analysis against values computed by hand. */

import assert from "node:assert/strict";
import { cosineDistances, pca2, silhouette } from "../lib/eval/cluster_separation.ts";
import { rng } from "../lib/util/seeded_rng.ts";

Deno.test("cosineDistances: orthogonal, equal and opposite rows", () => {
  const x = Float64Array.of(1, 0, 0, 2, 3, 0, -1, 0); // [4, 2]
  const d = cosineDistances(x, 4);
  assert.equal(d[0 * 4 + 1], 1); // (1,0) vs (0,2): orthogonal
  assert.equal(d[0 * 4 + 2], 0); // (1,0) vs (3,0): same direction
  assert.equal(d[0 * 4 + 3], 2); // (1,0) vs (-1,0): opposite
  assert.equal(d[1 * 4 + 0], d[0 * 4 + 1]);
});

Deno.test("silhouette: hand-computed four-point example", () => {
  // Distances on a line: points 0, 1 (label 0) and 4, 6 (label 1).
  const pos = [0, 1, 4, 6];
  const n = 4;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) dist[i * n + j] = Math.abs(pos[i] - pos[j]);
  }
  // s0: a=1, b=(4+6)/2=5 -> 0.8; s1: a=1, b=(3+5)/2=4 -> 0.75
  // s2: a=2, b=(4+3)/2=3.5 -> 1.5/3.5; s3: a=2, b=(6+5)/2=5.5 -> 3.5/5.5
  const want = (0.8 + 0.75 + 1.5 / 3.5 + 3.5 / 5.5) / 4;
  const got = silhouette(dist, [0, 0, 1, 1]);
  assert.ok(Math.abs(got - want) < 1e-12, `silhouette ${got} vs ${want}`);
});

Deno.test("silhouette: separated clusters near 1, shuffled labels near 0", () => {
  const r = rng(7);
  const n = 120, d = 16, k = 4;
  const x = new Float64Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % k;
    for (let j = 0; j < d; j++) {
      x[i * d + j] = (j % k === labels[i] ? 10 : 0) + (r() - 0.5) * 0.5;
    }
  }
  const dist = cosineDistances(x, n);
  const good = silhouette(dist, labels);
  assert.ok(good > 0.9, `separated clusters: ${good}`);
  const shuffled = Int32Array.from(labels);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const bad = silhouette(dist, shuffled);
  assert.ok(Math.abs(bad) < 0.15, `shuffled labels: ${bad}`);
});

Deno.test("pca2: recovers the axes and variance shares of a known point cloud", () => {
  // Points spread 3x along (1,1,0)/sqrt2 and 1x along (0,0,1), none along (1,-1,0).
  const r = rng(3);
  const n = 400;
  const x = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = (r() - 0.5) * 6;
    const b = (r() - 0.5) * 2;
    x.set([a / Math.SQRT2, a / Math.SQRT2, b], i * 3);
  }
  const mean = (f: (i: number) => number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += f(i);
    return s / n;
  };
  const ma = mean((i) => (x[i * 3] + x[i * 3 + 1]) / Math.SQRT2);
  const mb = mean((i) => x[i * 3 + 2]);
  const v1 = n * mean((i) => ((x[i * 3] + x[i * 3 + 1]) / Math.SQRT2 - ma) ** 2);
  const v2 = n * mean((i) => (x[i * 3 + 2] - mb) ** 2);
  const { points, explained } = pca2(x, n);
  // Each coordinate of the projection equals the generating coordinate up to sign and centring.
  let c1 = 0, c2 = 0, n1 = 0, n2 = 0;
  for (let i = 0; i < n; i++) {
    const a = (x[i * 3] + x[i * 3 + 1]) / Math.SQRT2;
    const b = x[i * 3 + 2];
    c1 += points[2 * i] * a;
    n1 += points[2 * i] ** 2;
    c2 += points[2 * i + 1] * b;
    n2 += points[2 * i + 1] ** 2;
  }
  assert.ok(Math.abs(Math.abs(c1) / Math.sqrt(n1 * v1) - 1) < 1e-3, `PC1 ${c1}`);
  assert.ok(Math.abs(Math.abs(c2) / Math.sqrt(n2 * v2) - 1) < 1e-3, `PC2 ${c2}`);
  assert.ok(Math.abs(explained[0] + explained[1] - 1) < 1e-6, `shares ${explained}`);
  assert.ok(explained[0] > 0.85 && explained[0] < 0.95, `PC1 share ${explained[0]}`);
});
