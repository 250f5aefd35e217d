/**
 * Streaming, numerically stable per-channel statistics (mean, population variance, mean of
 * squares) in float64, mergeable across shards (Welford's update applied batch-wise with Chan's
 * parallel combination). Used for every activation statistic of docs/design.md, Statistics.
 */

/** Per-channel running statistics of a stream of D-dimensional rows. */
export class RunningStats {
  /** Channels per row. */
  readonly dim: number;
  /** Rows seen so far. */
  count = 0;
  /** [D] running mean. */
  readonly mean: Float64Array;
  /** [D] sum of squared deviations from the mean (Welford's M2). */
  readonly m2: Float64Array;
  // [D] scratch for a batch's own mean / M2
  #bMean: Float64Array;
  #bM2: Float64Array;

  /** Empty statistics over `dim` channels. */
  constructor(dim: number) {
    this.dim = dim;
    this.mean = new Float64Array(dim);
    this.m2 = new Float64Array(dim);
    this.#bMean = new Float64Array(dim);
    this.#bM2 = new Float64Array(dim);
  }

  /**
   * Add `rows` rows of `x` (`[rows, D]` row-major). The batch's own mean and M2 are computed
   * with two passes in float64, then combined with Chan's formula, so precision does not
   * degrade with the number of rows already seen.
   */
  update(x: Float32Array | Float64Array, rows = x.length / this.dim): void {
    const D = this.dim;
    if (!Number.isInteger(rows) || rows * D > x.length) {
      throw new Error(`RunningStats.update: ${x.length} values is not rows x ${D}`);
    }
    if (rows === 0) return;
    const bm = this.#bMean;
    const b2 = this.#bM2;
    bm.fill(0);
    b2.fill(0);
    for (let r = 0; r < rows; r++) {
      const o = r * D;
      for (let c = 0; c < D; c++) bm[c] += x[o + c];
    }
    for (let c = 0; c < D; c++) bm[c] /= rows;
    for (let r = 0; r < rows; r++) {
      const o = r * D;
      for (let c = 0; c < D; c++) {
        const d = x[o + c] - bm[c];
        b2[c] += d * d;
      }
    }
    this.#combine(rows, bm, b2);
  }

  /** Merge another shard's statistics into this one (Chan et al.); `other` is unchanged. */
  merge(other: RunningStats): void {
    if (other.dim !== this.dim) {
      throw new Error(`RunningStats.merge: dim ${other.dim} != ${this.dim}`);
    }
    if (other.count === 0) return;
    this.#combine(other.count, other.mean, other.m2);
  }

  #combine(nb: number, bMean: Float64Array, bM2: Float64Array): void {
    const na = this.count;
    const n = na + nb;
    const wb = nb / n;
    const w = na * nb / n;
    for (let c = 0; c < this.dim; c++) {
      const delta = bMean[c] - this.mean[c];
      this.mean[c] += delta * wb;
      this.m2[c] += bM2[c] + delta * delta * w;
    }
    this.count = n;
  }

  /** [D] population variance (M2 / n); zeros when empty. */
  variance(): Float64Array {
    const out = new Float64Array(this.dim);
    if (this.count === 0) return out;
    for (let c = 0; c < this.dim; c++) out[c] = this.m2[c] / this.count;
    return out;
  }

  /** [D] mean of squares (variance + mean^2). */
  meanSquare(): Float64Array {
    const v = this.variance();
    for (let c = 0; c < this.dim; c++) v[c] += this.mean[c] * this.mean[c];
    return v;
  }

  /** A deep copy. */
  clone(): RunningStats {
    return RunningStats.from(this.count, this.mean, this.m2);
  }

  /** Rebuild from saved `count`, `mean` [D] and `m2` [D]. */
  static from(count: number, mean: Float64Array, m2: Float64Array): RunningStats {
    if (mean.length !== m2.length) throw new Error("RunningStats.from: mean and m2 sizes differ");
    const s = new RunningStats(mean.length);
    s.count = count;
    s.mean.set(mean);
    s.m2.set(m2);
    return s;
  }
}
