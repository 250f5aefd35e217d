/** The model's bundled FFN layout on a backend, for op-level tests of the fused FFN. */

import type { Backend, MatView, WeightBuffer } from "../../lib/backends/backend.ts";

/** One bundled FFN weight buffer and the three views into it. */
export interface FfnBundle {
  /** [N, 2K + M] row n = [gate (K) | up (K) | down^T (M)] of neuron n. */
  bundle: WeightBuffer;
  gate: MatView; // [N, K]
  up: MatView; // [N, K]
  down: MatView; // [N, M] row n = down_proj column n
}

/** Uploads `values` (N * (2K + M) numbers, neuron-major) as a bundle and returns its views. */
export function ffnBundle(
  be: Backend,
  values: Float32Array,
  N: number,
  K: number,
  M: number,
): FfnBundle {
  const stride = 2 * K + M;
  if (values.length !== N * stride) {
    throw new Error(`ffnBundle: ${values.length} values, want ${N} x ${stride}`);
  }
  const bundle = be.weights(values);
  const view = (offset: number, cols: number): MatView => ({
    buf: bundle,
    offset,
    stride,
    rows: N,
    cols,
  });
  return { bundle, gate: view(0, K), up: view(K, K), down: view(2 * K, M) };
}
