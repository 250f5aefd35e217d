/**
 * The WASM backend's ops other than the products (those are lib/backends/wasm_matmul.ts):
 * embedding, norms, rotary embedding, elementwise ops, the KV cache and attention, each checked
 * (./arg_checks.ts) and run in one kernel of kernels/wasm, attention cut across worker threads
 * when the backend has them. Also the context every op runs with and the vector helpers the
 * products share.
 */

import type { IndexList, MatView, Tensor } from "./backend.ts";
import * as check from "./arg_checks.ts";
import { fillRopeTable } from "./rope_table.ts";
import type { Kernels } from "./wasm_kernels.ts";
import type { ReusableBlock, WasmHeap } from "./wasm_heap.ts";
import {
  ownIndices,
  ownWeights,
  tensorOf,
  viewAddr,
  type WasmWeights,
  weightsOf,
} from "./wasm_handles.ts";
import type { ThreadPool } from "./wasm_threads.ts";

/** What every op runs with: the heap, the kernels, the worker pool and the reused blocks. */
export interface WasmOpsContext {
  /** The backend's heap (owner of every handle the ops accept). */
  readonly heap: WasmHeap;
  /** The kernels, instantiated over the heap's memory. */
  readonly k: Kernels;
  /** Worker threads (threads > 1), or null: every op on the calling thread. */
  pool: ThreadPool | null;
  /** Kernel scratch space (valid until the next op). */
  readonly scratch: ReusableBlock;
  /** Dequantized q8 vectors for the elementwise kernels (valid until the next op). */
  readonly vec: ReusableBlock;
  /** The rope cos/sin table `[T, d]`, cached under {@link WasmOpsContext.ropeKey}. */
  readonly rope: ReusableBlock;
  /**
   * Which table {@link WasmOpsContext.rope} holds: invFreq buffer address and view offset, head
   * size, first position, tokens (numbers compared in place: no key string built per call).
   */
  readonly ropeKey: [number, number, number, number, number];
  /**
   * Host copy of the inverse frequencies the table was last built from, and the buffer they
   * were read from (the same object, offset and head size as {@link WasmOpsContext.ropeKey}
   * reuse it: a decode step's new position rebuilds one row without reading them again).
   */
  ropeFreq: { buf: WasmWeights | null; f: Float32Array };
}

/**
 * Address of `n` f32 values of row 0 of a vector view, for elementwise kernels: the view itself
 * (f32 / f16, with its f16 flag), or for q8 storage a dequantized copy in a scratch block
 * (valid until the next op).
 */
export function vec(g: WasmOpsContext, v: MatView, n: number): { ptr: number; f16: number } {
  const b = v.buf as WasmWeights;
  if (b.dtype !== "q8") return { ptr: viewAddr(v), f16: b.dtype === "f16" ? 1 : 0 };
  const p = g.vec.at(n * 4);
  g.k.q8_to_f32(b.ptr, v.offset, n, p);
  return { ptr: p, f16: 0 };
}

/** Host copy (f32) of the first `n` values of row 0 of a view (any storage dtype). */
export function hostView(g: WasmOpsContext, v: MatView, n: number): Float32Array {
  const b = weightsOf(g.heap, v, "hostView", 1);
  if (b.dtype === "q8") {
    const p = vec(g, v, n).ptr / 4;
    return g.heap.f32.slice(p, p + n);
  }
  if (b.dtype === "f16") {
    return Float32Array.from(new Float16Array(g.heap.memory.buffer, viewAddr(v), n));
  }
  const p = viewAddr(v) / 4;
  return g.heap.f32.slice(p, p + n);
}

/** `out[t, :] = table[ids[t], :]`; out `[T, cols]` (q8 rows are dequantized one by one). */
export function embed(g: WasmOpsContext, table: MatView, ids: Int32Array, out: Tensor): void {
  const o = tensorOf(g.heap, out, "embed out");
  check.checkEmbed(table, ids, out);
  const w = ownWeights(g.heap, table, "embed table");
  const T = ids.length;
  if (w.dtype === "q8") {
    for (let i = 0; i < T; i++) {
      const e0 = table.offset + ids[i] * table.stride;
      g.k.q8_to_f32(w.ptr, e0, table.cols, o.ptr + i * table.cols * 4);
    }
    return;
  }
  const p = g.scratch.at(T * 4);
  g.heap.i32.set(ids, p / 4);
  g.k.embed(
    viewAddr(table),
    table.stride,
    w.dtype === "f16" ? 1 : 0,
    p,
    T,
    table.cols,
    o.ptr,
  );
}

/** Grouped RMSNorm; x, out `[T, G * weight.cols]`; out may alias x. */
export function rmsNorm(
  g: WasmOpsContext,
  x: Tensor,
  weight: MatView,
  eps: number,
  out: Tensor,
): void {
  const a = tensorOf(g.heap, x, "rmsNorm x");
  const o = tensorOf(g.heap, out, "rmsNorm out");
  check.checkRmsNorm(a, weight, o);
  ownWeights(g.heap, weight, "rmsNorm weight");
  const c = weight.cols;
  const groups = a.rows * (a.cols / c);
  const wv = vec(g, weight, c);
  g.k.rmsnorm(a.ptr, groups, c, wv.ptr, wv.f16, eps, o.ptr);
}

/** `out = silu(gate) * up`, elementwise; gate, up, out `[T, n]`; out may alias gate. */
export function siluMul(g: WasmOpsContext, gate: Tensor, up: Tensor, out: Tensor): void {
  const a = tensorOf(g.heap, gate, "siluMul gate"), u = tensorOf(g.heap, up, "siluMul up");
  const o = tensorOf(g.heap, out, "siluMul out");
  check.checkSiluMul(a, u, o);
  const n = a.rows * a.cols;
  g.k.silu_mul(a.ptr, u.ptr, n, o.ptr);
}

/**
 * Rotary embedding in place (HF rotate_half) on every head of x `[T, nh * d]`, from a cos/sin
 * table `[T, d]` cached across calls with the same positions.
 */
export function rope(
  g: WasmOpsContext,
  x: Tensor,
  headDim: number,
  pos0: number,
  invFreq: MatView,
): void {
  const a = tensorOf(g.heap, x, "rope x");
  check.checkRope(a, headDim, pos0, invFreq);
  const fb = ownWeights(g.heap, invFreq, "rope invFreq");
  const h2 = headDim / 2;
  const T = a.rows;
  // cos/sin table [T, d] (d/2 cosines then d/2 sines), built in float64 on the host and
  // cached: q and k of every layer of one step share it.
  const key = g.ropeKey;
  if (
    key[0] !== fb.ptr || key[1] !== invFreq.offset || key[2] !== headDim || key[3] !== pos0 ||
    key[4] !== T
  ) {
    const bytes = T * headDim * 4;
    g.rope.at(bytes);
    const rf = g.ropeFreq;
    if (
      rf.buf !== fb || key[0] !== fb.ptr || key[1] !== invFreq.offset || key[2] !== headDim
    ) {
      rf.buf = fb;
      rf.f = hostView(g, invFreq, h2);
    }
    const f = rf.f;
    const base = g.rope.ptr / 4;
    fillRopeTable(g.heap.f32.subarray(base, base + T * headDim), f, pos0, T, "halves");
    key[0] = fb.ptr, key[1] = invFreq.offset, key[2] = headDim, key[3] = pos0, key[4] = T;
  }
  g.k.rope(a.ptr, T, a.cols / headDim, headDim, g.rope.ptr);
}

/** `x[t, :] += bias` for every row; x `[T, c]`, bias `[1, c]`. */
export function addRow(g: WasmOpsContext, x: Tensor, bias: MatView): void {
  const a = tensorOf(g.heap, x, "addRow x");
  check.checkAddRow(a, bias);
  ownWeights(g.heap, bias, "addRow bias");
  const bv = vec(g, bias, a.cols);
  g.k.add_row(a.ptr, a.rows, a.cols, bv.ptr, bv.f16);
}

/** `x += y`, elementwise; x, y `[T, c]`. */
export function add(g: WasmOpsContext, x: Tensor, y: Tensor): void {
  const a = tensorOf(g.heap, x, "add x"), b = tensorOf(g.heap, y, "add y");
  check.checkAdd(a, b);
  g.k.add(a.ptr, b.ptr, a.rows * a.cols);
}

/**
 * Write keys or values kv `[T, H * d]` of kv heads `heads[j]` into cache `[nkv * maxT, d]` rows
 * `heads[j] * maxT + pos0 + t`.
 */
export function kvWrite(
  g: WasmOpsContext,
  cache: Tensor,
  kv: Tensor,
  heads: IndexList,
  maxT: number,
  pos0: number,
): void {
  const c = tensorOf(g.heap, cache, "kvWrite cache"), s = tensorOf(g.heap, kv, "kvWrite kv");
  check.checkKvWrite(c, s, heads, maxT, pos0);
  const d = c.cols;
  ownIndices(g.heap, heads, "kvWrite heads");
  const H = heads.length, T = s.rows;
  const F = g.heap.f32;
  const hs = heads.host;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < H; j++) {
      const src = s.ptr / 4 + (t * H + j) * d;
      const dst = c.ptr / 4 + (hs[j] * maxT + pos0 + t) * d;
      F.copyWithin(dst, src, src + d);
    }
  }
}

/**
 * Causal attention of q `[T, S * d]` over the caches `[nkv * maxT, d]`; `kvOf[s]` = kv head of
 * slot s; out `[T, S * d]`. Cut across threads when the pool takes it.
 */
export function attention(
  g: WasmOpsContext,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  kvOf: IndexList,
  maxT: number,
  pos0: number,
  scale: number,
  out: Tensor,
): void {
  const qt = tensorOf(g.heap, q, "attention q"), o = tensorOf(g.heap, out, "attention out");
  const kc = tensorOf(g.heap, kCache, "attention kCache"),
    vc = tensorOf(g.heap, vCache, "attention vCache");
  check.checkAttention(qt, kc, vc, kvOf, maxT, pos0, o);
  const d = kc.cols, S = kvOf.length, T = qt.rows;
  const kp = ownIndices(g.heap, kvOf, "attention kvOf");
  if (g.pool?.attention(qt.ptr, T, S, d, kc.ptr, vc.ptr, kp, maxT, pos0, scale, o.ptr)) {
    return;
  }
  const s = g.scratch.at(maxT * 4); // one row of scores
  g.k.attention(qt.ptr, T, S, d, kc.ptr, vc.ptr, kp, maxT, pos0, scale, o.ptr, s);
}

/** Copy `count` rows of src `[*, c]` from `srcRow` into dst `[*, c]` from `dstRow`. */
export function copyRows(
  g: WasmOpsContext,
  src: Tensor,
  srcRow: number,
  count: number,
  dst: Tensor,
  dstRow: number,
): void {
  const a = tensorOf(g.heap, src, "copyRows src"), b = tensorOf(g.heap, dst, "copyRows dst");
  check.checkCopyRows(a, srcRow, count, b, dstRow);
  const c = a.cols;
  const s0 = a.ptr / 4 + srcRow * c;
  g.heap.f32.copyWithin(b.ptr / 4 + dstRow * c, s0, s0 + count * c);
}
