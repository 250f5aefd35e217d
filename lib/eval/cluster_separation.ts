/**
 * How well a set of vectors separates by label: the mean silhouette (cosine distance) and a
 * 2-D principal-component projection for plots. Used to show how calibration samples cluster
 * by task layer by layer (docs/design.md, Router), the paper's motivating evidence.
 */

/** Rows of `x` `[N, D]` as a list of views. */
function rowsOf(x: Float64Array, n: number): Float64Array[] {
  const d = x.length / n;
  if (!Number.isInteger(d)) throw new Error(`cluster: ${x.length} values are not ${n} rows`);
  return Array.from({ length: n }, (_, i) => x.subarray(i * d, (i + 1) * d));
}

/** Pairwise cosine distances `[N, N]` (1 - cos similarity; 0 for a zero row against itself). */
export function cosineDistances(x: Float64Array, n: number): Float64Array {
  const rows = rowsOf(x, n);
  const norms = rows.map((r) => Math.sqrt(r.reduce((a, v) => a + v * v, 0)));
  const out = new Float64Array(n * n); // [N, N]
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let dot = 0;
      const a = rows[i];
      const b = rows[j];
      for (let k = 0; k < a.length; k++) dot += a[k] * b[k];
      const den = norms[i] * norms[j];
      const dist = den > 0 ? 1 - dot / den : 1;
      out[i * n + j] = dist;
      out[j * n + i] = dist;
    }
  }
  return out;
}

/**
 * Mean silhouette of labelled points from a distance matrix `[N, N]`:
 * s(i) = (b - a) / max(a, b), a = mean distance to the other members of i's label, b = the
 * smallest mean distance to another label's members; s(i) = 0 for a label with one member
 * (scikit-learn's convention). In [-1, 1]; near 1 = tight, well separated clusters.
 */
export function silhouette(dist: Float64Array, labels: ArrayLike<number>): number {
  const n = labels.length;
  if (dist.length !== n * n) throw new Error(`silhouette: ${dist.length} distances for ${n}`);
  const classes = [...new Set(Array.from(labels))];
  if (classes.length < 2) throw new Error("silhouette: needs at least two labels");
  const size = new Map<number, number>();
  for (let i = 0; i < n; i++) size.set(labels[i], (size.get(labels[i]) ?? 0) + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const sums = new Map<number, number>();
    for (let j = 0; j < n; j++) {
      if (j !== i) sums.set(labels[j], (sums.get(labels[j]) ?? 0) + dist[i * n + j]);
    }
    const own = size.get(labels[i])!;
    if (own === 1) continue;
    const a = sums.get(labels[i])! / (own - 1);
    let b = Infinity;
    for (const c of classes) {
      if (c !== labels[i]) b = Math.min(b, (sums.get(c) ?? 0) / size.get(c)!);
    }
    const m = Math.max(a, b);
    total += m > 0 ? (b - a) / m : 0;
  }
  return total / n;
}

/**
 * The first two principal components of `x` `[N, D]` (rows centred): returns the projection
 * `[N, 2]` and the share of variance each component explains. Computed on the Gram matrix
 * `[N, N]` by power iteration with deflation (N is a few hundred samples, D up to the FFN size).
 */
export function pca2(
  x: Float64Array,
  n: number,
): { points: Float64Array; explained: [number, number] } {
  const rows = rowsOf(x, n);
  const d = rows[0]?.length ?? 0;
  const mean = new Float64Array(d);
  for (const r of rows) for (let k = 0; k < d; k++) mean[k] += r[k] / n;
  const c = rows.map((r) => r.map((v, k) => v - mean[k]));
  const gram = new Float64Array(n * n); // [N, N] = Xc Xc^T
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += c[i][k] * c[j][k];
      gram[i * n + j] = s;
      gram[j * n + i] = s;
    }
  }
  let trace = 0;
  for (let i = 0; i < n; i++) trace += gram[i * n + i];
  const points = new Float64Array(n * 2); // [N, 2]
  const explained: [number, number] = [0, 0];
  for (let comp = 0; comp < 2; comp++) {
    let v = Float64Array.from({ length: n }, (_, i) => Math.sin(i + 1 + comp)); // fixed start
    let lambda = 0;
    for (let it = 0; it < 500; it++) {
      const w = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += gram[i * n + j] * v[j];
        w[i] = s;
      }
      const norm = Math.sqrt(w.reduce((a, t) => a + t * t, 0));
      if (norm === 0) break;
      const next = w.map((t) => t / norm);
      const delta = next.reduce((a, t, i) => a + Math.abs(t - v[i]), 0);
      v = next;
      lambda = norm;
      if (delta < 1e-12 * n) break;
    }
    // Projection onto the component: Xc u_k = v_k * sqrt(lambda_k).
    for (let i = 0; i < n; i++) points[i * 2 + comp] = v[i] * Math.sqrt(lambda);
    explained[comp] = trace > 0 ? lambda / trace : 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) gram[i * n + j] -= lambda * v[i] * v[j];
    }
  }
  return { points, explained };
}
