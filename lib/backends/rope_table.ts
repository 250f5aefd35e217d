/**
 * The rotary embedding's cos/sin table, computed once per step on the host and shared by the
 * rope of q and k in every layer: angle `(pos0 + t) * invFreq[i]` formed in float64 (the f32
 * inverse frequency times a whole position, exact to the last bit of the f32 cos and sin).
 * Every backend builds its table here; they differ only in how a row is laid out.
 */

/**
 * How one token's row of `2 * half` values is laid out: "halves" = the `half` cosines then the
 * `half` sines (the WASM kernel, the reference backend); "pairs" = (cos, sin) of each
 * frequency side by side (the WGSL kernel).
 */
export type RopeTableLayout = "halves" | "pairs";

/**
 * Fill `out` `[T, 2 * half]` with the cos and sin of `(pos0 + t) * invFreq[i]`.
 * @param out receives T rows of `2 * half` values in `layout` order (at least that long).
 * @param invFreq the `half` inverse frequencies.
 * @param pos0 position of row 0.
 * @param T number of positions.
 * @param layout row layout, see {@link RopeTableLayout}.
 * @returns out.
 */
export function fillRopeTable(
  out: Float32Array,
  invFreq: ArrayLike<number>,
  pos0: number,
  T: number,
  layout: RopeTableLayout,
): Float32Array {
  const half = invFreq.length;
  if (out.length < T * 2 * half) {
    throw new RangeError(`fillRopeTable: ${out.length} values for [${T}, ${2 * half}]`);
  }
  const [cosAt, sinAt, step] = layout === "halves" ? [0, half, 1] : [0, 1, 2];
  for (let t = 0; t < T; t++) {
    const p = pos0 + t, row = t * 2 * half;
    for (let i = 0; i < half; i++) {
      const ang = p * invFreq[i];
      out[row + cosAt + i * step] = Math.cos(ang);
      out[row + sinAt + i * step] = Math.sin(ang);
    }
  }
  return out;
}
