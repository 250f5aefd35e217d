/**
 * How the WASM thread pool (lib/backends/wasm_threads.ts) cuts an op into tasks, and which ops
 * are worth cutting: each op becomes one kernel call per range of its output plus optional
 * strided copies ({@link ThreadTask}).
 *
 * Results are bit-identical to one thread: every output value is computed by exactly one thread
 * with the summation order of the one-thread kernel. Ranges start on multiples of 32, so the
 * kernels' register groups (4 rows), q8 tiles and blocks (32), SIMD column groups (8, 16, 32)
 * and the fused FFN's neuron chunks (32) fall where they fall in the one-thread call:
 *
 * - `matmul` (and gate/up): rows split; T = 1 writes straight into out, T > 1 into a per-thread
 *   `[T, n]` block copied into out's columns (the kernels take out's pitch from R).
 * - `matmulTAdd`: columns of out split (each thread still sums over every row, in order).
 * - fused FFN: phase 1 runs the FFN kernel with M = 0 on a range of neurons (silu(gate) * up
 *   into an activation buffer, nothing accumulated), phase 2 is `matmulTAdd` of the down rows
 *   over out's columns: the same per-value sums as the fused one-thread kernel (the test
 *   tests/wasm_threads_test.ts checks every format, dense and masked, T = 1 and T > 1).
 * - `attention`: heads split (T = 1) or tokens split by causal work (T > 1).
 *
 * Kernel arguments are those of the one-thread calls in lib/backends/wasm.ts (byte addresses;
 * row strides `ws` in elements, or blocks for q8).
 */

import type { WeightDType } from "./backend.ts";
import type { ThreadKernel, ThreadTask } from "./wasm_threads_control.ts";
import { ffnScratchBytes, matmulScratchBytes } from "./wasm_kernels.ts";

/**
 * Threads only cut ops with at least this many multiply-adds (smaller ones run on one): 2^18 is
 * 1 MiB of f32 weights at T = 1, about 70 us of streaming, so that half of it saved outweighs a
 * job's synchronisation (6-15 us round trip on an idle core, tens of us on a busy machine:
 * a 128 x 64 matmul took 16-44 us on one thread and 55-94 us cut, load average 10). On
 * SmolLM2-135M, decode cuts q and the LM head; k and v (110K) stay on one thread.
 */
export const MIN_THREADED_WORK = 1 << 18;
/** Token block of the T > 1 kernels (TOKEN_BLOCK in wasm.ts). */
const TB = 32;
/** Range boundaries are multiples of this (see the module comment). */
const ALIGN_UNITS = 32;
const Q8_BLOCK = 32;
const Q8_BLOCK_BYTES = 36;

/** What cutting an op needs from the pool: its size and per-task scratch. */
export interface CutContext {
  /** Threads including the caller. */
  readonly threads: number;
  /** Most tasks a job has. */
  readonly maxTasks: number;
  /** Per-task scratch of at least `bytes` each; returns one slot address per task. */
  slots(bytes: number): number[];
}

/** The knobs that decide whether an op is cut (the pool's fields; tests change them). */
export interface CutKnobs {
  /** Ops with fewer multiply-adds run on one thread. */
  readonly minWork: number;
  /** Whether decode (T = 1) cuts `matmulTAdd` and the fused FFN too. */
  readonly decodeColumnCuts: boolean;
}

/** `[lo, hi)` ranges cutting `n` into at most `parts` pieces whose starts are multiples of `align`. */
export function splitRange(n: number, parts: number, align: number): [number, number][] {
  const step = Math.max(align, Math.ceil(n / parts / align) * align);
  const out: [number, number][] = [];
  for (let lo = 0; lo < n; lo += step) out.push([lo, Math.min(n, lo + step)]);
  return out;
}

/**
 * Token ranges of causal attention with about equal work: token t costs `pos0 + t + 1`
 * positions.
 */
export function splitCausal(T: number, pos0: number, parts: number): [number, number][] {
  const total = T * pos0 + (T * (T + 1)) / 2;
  const out: [number, number][] = [];
  let lo = 0, acc = 0;
  for (let t = 0; t < T && out.length < parts - 1; t++) {
    acc += pos0 + t + 1;
    if (acc >= (total * (out.length + 1)) / parts) {
      out.push([lo, t + 1]);
      lo = t + 1;
    }
  }
  if (lo < T) out.push([lo, T]);
  return out;
}

/** Dtype-specific sizes of one matrix row or column offset. */
function elemBytes(dt: WeightDType): number {
  return dt === "f16" ? 2 : 4;
}

/** Byte offset of column (element) `m` of a row, `m` a multiple of 32 for q8. */
function colOffset(dt: WeightDType, m: number): number {
  return dt === "q8" ? (m / Q8_BLOCK) * Q8_BLOCK_BYTES : m * elemBytes(dt);
}

/** Bytes between rows of a view with row stride `ws` (elements; q8: blocks). */
function rowBytes(dt: WeightDType, ws: number): number {
  return dt === "q8" ? ws * Q8_BLOCK_BYTES : ws * elemBytes(dt);
}

/** `n` rounded up to a multiple of 64 (the allocator's alignment). */
export function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

/** Whether a `[T, K] x [R, K]^T` matmul is big enough to cut. */
export function cutsMatmul(c: CutKnobs, T: number, K: number, R: number): boolean {
  return !(T * R * K < c.minWork || R <= ALIGN_UNITS);
}

/** Tasks of a row-gathered matmul cut by rows (only when {@link cutsMatmul}). */
export function matmulTasks(
  c: CutContext,
  dt: WeightDType,
  x: number,
  T: number,
  K: number,
  w: number,
  ws: number,
  rows: number,
  R: number,
  out: number,
): ThreadTask[] {
  const parts = splitRange(R, c.maxTasks, ALIGN_UNITS);
  const n0 = parts[0][1] - parts[0][0];
  const scratchBytes = align64(matmulScratchBytes(dt, T, K));
  const slots = c.slots(scratchBytes + (T > 1 ? T * n0 * 4 : 0));
  const rb = rowBytes(dt, ws);
  const kernel: ThreadKernel = `matmul_${dt}`;
  return parts.map(([lo, hi], i) => {
    const n = hi - lo;
    const wp = rows ? w : w + lo * rb, rp = rows ? rows + 4 * lo : 0;
    const dst = T === 1 ? out + 4 * lo : slots[i] + scratchBytes;
    const args = [x, T, K, wp, ws, rp, n, dst, TB, slots[i]];
    const copyOut = T === 1
      ? undefined
      : { src: dst, dst: out + 4 * lo, rows: T, cols: n, srcPitch: n, dstPitch: R };
    return { kernel, args, copyOut };
  });
}

/** Whether `out[T, M] += a[T, R] w[rows, M]` is big enough (and of a kind) to cut. */
export function cutsMatmulTAdd(c: CutKnobs, T: number, R: number, M: number): boolean {
  if (T * R * M < c.minWork || M <= ALIGN_UNITS) return false;
  return !(T === 1 && !c.decodeColumnCuts);
}

/**
 * Tasks of `out[t, :] += sum_i a[t, i] * w[rows[i], :]` cut by out's columns (also the FFN's
 * second phase, which skips {@link cutsMatmulTAdd}). f16 weights with T > 1 run
 * `matmul_t_add_f16_tiled`, the one-thread kernel's T > 1 path (and the fused `ffn_f16`'s
 * summation order) without its token-block argument.
 */
export function matmulTAddTasks(
  c: CutContext,
  dt: WeightDType,
  a: number,
  T: number,
  R: number,
  w: number,
  ws: number,
  rows: number,
  M: number,
  out: number,
): ThreadTask[] {
  // Columns in one range per thread: a range is a fragment of every row read, and shorter
  // fragments stream worse (bench/ffn_bench.ts).
  const parts = splitRange(M, c.threads, ALIGN_UNITS);
  const n0 = parts[0][1] - parts[0][0];
  const tiled = dt === "f16" && T > 1;
  const scratchFloats = dt === "q8" ? 32 * n0 : tiled ? 32 * n0 : dt === "f16" ? 4 * n0 : 0;
  const scratchBytes = align64(4 * scratchFloats);
  const slots = c.slots(scratchBytes + (T > 1 ? T * n0 * 4 : 0));
  const kernel: ThreadKernel = tiled ? "matmul_t_add_f16_tiled" : `matmul_t_add_${dt}`;
  return parts.map(([lo, hi], i) => {
    const n = hi - lo;
    const wp = w + colOffset(dt, lo);
    const dst = T === 1 ? out + 4 * lo : slots[i] + scratchBytes;
    const args = dt === "q8" || tiled
      ? [a, T, R, wp, ws, rows, n, dst, slots[i]]
      : [a, T, R, wp, ws, rows, n, dst, TB];
    if (dt === "f16" && !tiled) args.push(slots[i]);
    if (T === 1) return { kernel, args };
    const col = { rows: T, cols: n };
    return {
      kernel,
      args,
      copyIn: { ...col, src: out + 4 * lo, dst, srcPitch: M, dstPitch: n },
      copyOut: { ...col, src: dst, dst: out + 4 * lo, srcPitch: n, dstPitch: M },
    };
  });
}

/** Whether a fused SwiGLU FFN (`K` inputs, `R` neurons, `M` outputs) is big enough to cut. */
export function cutsFfn(c: CutKnobs, T: number, K: number, R: number, M: number): boolean {
  if (T * R * (2 * K + M) < c.minWork || R <= ALIGN_UNITS || M <= ALIGN_UNITS) return false;
  return !(T === 1 && !c.decodeColumnCuts);
}

/**
 * Tasks of the FFN's first phase, cut by neurons: silu(gate) * up of `R` neurons into `acts`
 * (`[T, R]` f32, nothing accumulated into out); the second phase is {@link matmulTAddTasks} of
 * the down rows over `acts`. `gs`/`us`/`ds` are row strides (elements, or blocks for q8).
 */
export function ffnNeuronTasks(
  c: CutContext,
  dt: WeightDType,
  x: number,
  T: number,
  K: number,
  gate: number,
  gs: number,
  up: number,
  us: number,
  down: number,
  ds: number,
  rows: number,
  R: number,
  out: number,
  acts: number,
): ThreadTask[] {
  const parts = splitRange(R, c.maxTasks, ALIGN_UNITS);
  const n0 = parts[0][1] - parts[0][0];
  // The FFN kernels' scratch with M = 0: each task's down product runs in the second phase.
  const scratchBytes = align64(ffnScratchBytes(dt, T, K, 0));
  const slots = c.slots(scratchBytes + (T > 1 ? T * n0 * 4 : 0));
  const kernel: ThreadKernel = `ffn_${dt}`;
  const grb = rowBytes(dt, gs), urb = rowBytes(dt, us);
  return parts.map(([lo, hi], i) => {
    const n = hi - lo;
    const gp = rows ? gate : gate + lo * grb, upp = rows ? up : up + lo * urb;
    const rp = rows ? rows + 4 * lo : 0;
    const dst = T === 1 ? acts + 4 * lo : slots[i] + scratchBytes;
    const args = [x, T, K, gp, gs, upp, us, down, ds, 0, rp, n, out, dst, TB, slots[i]];
    const copyOut = T === 1
      ? undefined
      : { src: dst, dst: acts + 4 * lo, rows: T, cols: n, srcPitch: n, dstPitch: R };
    return { kernel, args, copyOut };
  });
}

/** Whether causal attention of `T` tokens, `S` query heads of size `d` is big enough to cut. */
export function cutsAttention(
  c: CutKnobs,
  T: number,
  S: number,
  d: number,
  pos0: number,
): boolean {
  const work = S * d * (T * pos0 + (T * (T + 1)) / 2) * 2;
  return !(work < c.minWork || (T === 1 && S < 2));
}

/** Tasks of causal attention cut by query heads (T = 1) or by tokens of equal causal work. */
export function attentionTasks(
  c: CutContext,
  q: number,
  T: number,
  S: number,
  d: number,
  kc: number,
  vc: number,
  kvOf: number,
  maxT: number,
  pos0: number,
  scale: number,
  out: number,
): ThreadTask[] {
  const slots = c.slots(maxT * 4);
  const parts = T === 1 ? splitRange(S, c.maxTasks, 1) : splitCausal(T, pos0, c.maxTasks);
  const row = S * d * 4;
  return parts.map(([lo, hi], i) => ({
    kernel: "attention",
    args: T === 1
      ? [
        q + lo * d * 4,
        1,
        hi - lo,
        d,
        kc,
        vc,
        kvOf + 4 * lo,
        maxT,
        pos0,
        scale,
        out + lo * d * 4,
        slots[i],
      ]
      : [
        q + lo * row,
        hi - lo,
        S,
        d,
        kc,
        vc,
        kvOf,
        maxT,
        pos0 + lo,
        scale,
        out + lo * row,
        slots[i],
      ],
  }));
}
