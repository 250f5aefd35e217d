/**
 * The WASM backend's products: the row-gathered matmul, the transposed accumulate (matmulTAdd)
 * and the fused SwiGLU FFN, each in f32, f16 or q8 (kernels/wasm/matmul.c, matmul_q8.c). Each
 * is offered to the worker pool first (lib/backends/wasm_threads.ts cuts it by rows, bit for bit
 * the same result) and otherwise runs on the calling thread with the scratch it needs.
 */

import type { IndexList, MatView, Tensor, WeightDType } from "./backend.ts";
import * as check from "./arg_checks.ts";
import { ffnScratchBytes, matmulScratchBytes, Q8_TILE_ROWS, TOKEN_BLOCK } from "./wasm_kernels.ts";
import { ownIndices, ownWeights, q8Addr, q8RowBlocks, tensorOf, viewAddr } from "./wasm_handles.ts";
import { vec, type WasmOpsContext } from "./wasm_ops.ts";

/** Address of a weight view as the kernels take it: row 0, or its first q8 block (checked). */
function matPtr(v: MatView, dtype: WeightDType, what: string): number {
  return dtype === "q8" ? q8Addr(v, what) : viewAddr(v);
}

/** Row stride of a weight view as the kernels take it: elements, or q8 blocks. */
function matStride(v: MatView, dtype: WeightDType): number {
  return dtype === "q8" ? q8RowBlocks(v) : v.stride;
}

/**
 * Row-gathered product `out[t, i] = x[t, :] . w[rows[i], :] (+ bias[rows[i]])`; x `[T, K]`,
 * w `[N, K]`, out `[T, R]` (R = rows.length, or N for all rows). Cut across threads when the
 * pool takes it.
 */
export function matmul(
  g: WasmOpsContext,
  x: Tensor,
  w: MatView,
  rows: IndexList | null,
  bias: MatView | null,
  out: Tensor,
): void {
  const a = tensorOf(g.heap, x, "matmul x");
  const o = tensorOf(g.heap, out, "matmul out");
  check.checkMatmul(a, w, rows, bias, o);
  const wb = ownWeights(g.heap, w, "matmul w");
  const N = w.rows, K = w.cols;
  const R = rows ? rows.length : N;
  const rp = ownIndices(g.heap, rows, "matmul rows");
  const T = a.rows;
  const wp = matPtr(w, wb.dtype, "matmul w"), ws = matStride(w, wb.dtype);
  if (g.pool?.matmul(wb.dtype, a.ptr, T, K, wp, ws, rp, R, o.ptr)) {
    // cut across threads
  } else {
    const bytes = matmulScratchBytes(wb.dtype, T, K);
    const s = bytes > 0 ? g.scratch.at(bytes) : 0;
    if (wb.dtype === "q8") g.k.matmul_q8(a.ptr, T, K, wp, ws, rp, R, o.ptr, TOKEN_BLOCK, s);
    else if (wb.dtype === "f16") g.k.matmul_f16(a.ptr, T, K, wp, ws, rp, R, o.ptr, TOKEN_BLOCK, s);
    else g.k.matmul_f32(a.ptr, T, K, wp, ws, rp, R, o.ptr, TOKEN_BLOCK, s);
  }
  if (bias) {
    ownWeights(g.heap, bias, "matmul bias");
    const bv = vec(g, bias, N);
    g.k.add_bias_gather(o.ptr, T, R, rp, bv.ptr, bv.f16);
  }
}

/**
 * Row-gathered transposed product, accumulated: `out[t, :] += sum_i a[t, i] w[rows[i], :]`;
 * a `[T, R]`, w `[N, M]`, out `[T, M]`. Cut across threads when the pool takes it.
 */
export function matmulTAdd(
  g: WasmOpsContext,
  a: Tensor,
  w: MatView,
  rows: IndexList | null,
  out: Tensor,
): void {
  const at = tensorOf(g.heap, a, "matmulTAdd a");
  const o = tensorOf(g.heap, out, "matmulTAdd out");
  check.checkMatmulTAdd(at, w, rows, o);
  const wb = ownWeights(g.heap, w, "matmulTAdd w");
  const N = w.rows, M = w.cols;
  const R = rows ? rows.length : N;
  const rp = ownIndices(g.heap, rows, "matmulTAdd rows");
  const T = at.rows;
  const wp = matPtr(w, wb.dtype, "matmulTAdd w"), ws = matStride(w, wb.dtype);
  if (g.pool?.matmulTAdd(wb.dtype, at.ptr, T, R, wp, ws, rp, M, o.ptr)) {
    // cut across threads
  } else if (wb.dtype === "q8") {
    const s = g.scratch.at(Q8_TILE_ROWS * M * 4);
    g.k.matmul_t_add_q8(at.ptr, T, R, wp, ws, rp, M, o.ptr, s);
  } else if (wb.dtype === "f16") {
    // T == 1: the even/odd-ordered accumulator (M floats); T > 1: 32 rows converted to f32.
    const s = g.scratch.at((T > 1 ? 32 : 1) * M * 4);
    g.k.matmul_t_add_f16(at.ptr, T, R, wp, ws, rp, M, o.ptr, TOKEN_BLOCK, s);
  } else {
    g.k.matmul_t_add_f32(at.ptr, T, R, wp, ws, rp, M, o.ptr, TOKEN_BLOCK);
  }
}

/**
 * Fused SwiGLU FFN over kept neurons: `out += (silu(x gate[rows]^T) * (x up[rows]^T)) downT[rows]`;
 * x `[T, K]`, gate and up `[N, K]`, downT `[N, M]`, out `[T, M]`, act (optional) `[T, R]` gets
 * the activations. One kernel per dtype (ffn_f32 / ffn_f16 / ffn_q8), or cut across threads.
 */
export function ffn(
  g: WasmOpsContext,
  x: Tensor,
  gate: MatView,
  up: MatView,
  downT: MatView,
  rows: IndexList | null,
  out: Tensor,
  act: Tensor | null = null,
): void {
  const xt = tensorOf(g.heap, x, "ffn x"), o = tensorOf(g.heap, out, "ffn out");
  const at = act ? tensorOf(g.heap, act, "ffn act") : null;
  check.checkFfn(xt, gate, up, downT, rows, o, at);
  const gb = ownWeights(g.heap, gate, "ffn gate");
  ownWeights(g.heap, up, "ffn up");
  ownWeights(g.heap, downT, "ffn downT");
  const N = gate.rows, K = gate.cols, M = downT.cols;
  const R = rows ? rows.length : N;
  const rp = ownIndices(g.heap, rows, "ffn rows");
  const T = xt.rows;
  const dt = gb.dtype;
  // The pool's and the kernels' order: x, T, K, gate, gs, up, us, down, ds, M, rows, R, out, act.
  const gp = matPtr(gate, dt, "ffn gate"), gs = matStride(gate, dt);
  const upp = matPtr(up, dt, "ffn up"), us = matStride(up, dt);
  const dp = matPtr(downT, dt, "ffn downT"), ds = matStride(downT, dt);
  const ap = at ? at.ptr : 0;
  if (g.pool?.ffn(dt, xt.ptr, T, K, gp, gs, upp, us, dp, ds, M, rp, R, o.ptr, ap)) return;
  const bytes = ffnScratchBytes(dt, T, K, M);
  const sp = bytes > 0 ? g.scratch.at(bytes) : 0;
  const kernel = dt === "q8" ? g.k.ffn_q8 : dt === "f16" ? g.k.ffn_f16 : g.k.ffn_f32;
  kernel(xt.ptr, T, K, gp, gs, upp, us, dp, ds, M, rp, R, o.ptr, ap, TOKEN_BLOCK, sp);
}
