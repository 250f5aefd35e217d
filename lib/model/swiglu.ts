/**
 * The SwiGLU MLP over kept neurons, on whichever path the backend offers: its fused `ffn` op
 * (a neuron's gate, up and down^T rows read as one contiguous stream) or the four plain ops.
 * Both compute the same sums; the forward pass calls this and stays free of the fork.
 */

import type { Backend, IndexList, Tensor } from "../backends/backend.ts";
import type { LayerWeights } from "./model.ts";

/** Where the unfused path gets and returns its temporaries (the sequence tracks them). */
export interface Scratch {
  tensor(rows: number, cols: number): Tensor;
  drop(t: Tensor): void;
}

/**
 * `x += down(silu(gate(h)) * up(h))` over the neurons `rows` (bundle rows of `w`), with
 * h, x `[T, H]`; `act` `[T, n_kept]`, when given, receives `silu(gate(h)) * up(h)`.
 */
export function swigluAdd(
  be: Backend,
  h: Tensor,
  w: LayerWeights,
  rows: IndexList,
  x: Tensor,
  act: Tensor | null,
  scratch: Scratch,
): void {
  if (be.ffn) {
    be.ffn(h, w.gate, w.up, w.downT, rows, x, act);
    return;
  }
  const T = h.rows;
  const n = rows.length;
  const g = scratch.tensor(T, n); // [T, n_kept] column i = neuron rows[i]
  const u = scratch.tensor(T, n);
  be.matmul(h, w.gate, rows, null, g);
  be.matmul(h, w.up, rows, null, u);
  const a = act ?? g; // [T, n_kept]
  be.siluMul(g, u, a);
  be.matmulTAdd(a, w.downT, rows, x);
  scratch.drop(g);
  scratch.drop(u);
}
