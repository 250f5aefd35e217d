/**
 * FLAP bias compensation (docs/design.md, Bias compensation): the mean contribution of every pruned unit is folded
 * into an H-sized bias so the pruned layer's output keeps its calibration mean.
 */

/**
 * `bias[r] = sum over pruned columns c of mean[c] * w[r, c]` for a row-major `w` [H, D]
 * (HF orientation: W_down [H, I] or W_o [H, n_h*d_h]); `keptCols` sorted ascending.
 * Returns [H] as float32 (accumulated in float64).
 */
export function compensationBias(
  w: Float32Array,
  rows: number,
  cols: number,
  mean: Float64Array,
  keptCols: Int32Array,
): Float32Array {
  if (w.length !== rows * cols || mean.length !== cols) {
    throw new Error(`compensationBias: w ${w.length} vs ${rows}x${cols}, mean ${mean.length}`);
  }
  const pruned = new Uint8Array(cols).fill(1);
  for (const c of keptCols) pruned[c] = 0;
  const pc: number[] = [];
  for (let c = 0; c < cols; c++) if (pruned[c] && mean[c] !== 0) pc.push(c);
  const out = new Float32Array(rows); // [H]
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (const c of pc) s += mean[c] * w[o + c];
    out[r] = s;
  }
  return out;
}

/** Channels of kept heads: head h owns channels [h*d_h, (h+1)*d_h). */
export function headChannels(heads: Int32Array, headDim: number): Int32Array {
  const out = new Int32Array(heads.length * headDim);
  heads.forEach((h, i) => {
    for (let c = 0; c < headDim; c++) out[i * headDim + c] = h * headDim + c;
  });
  return out;
}
