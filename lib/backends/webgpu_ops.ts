/**
 * The WebGPU ops other than the products (lib/backends/webgpu_matmul.ts): each checks its
 * arguments (lib/backends/arg_checks.ts), resolves its handles, and records one or two
 * dispatches of its kernel (kernels/wgsl/<op>.wgsl) with named uniforms.
 */

import type { IndexList, MatView, Tensor } from "./backend.ts";
import {
  checkAdd,
  checkAddRow,
  checkAttention,
  checkCopyRows,
  checkEmbed,
  checkKvWrite,
  checkRmsNorm,
  checkRope,
  checkSiluMul,
} from "./arg_checks.ts";
import type { GpuMemory, GpuTensor, GpuWeights } from "./webgpu_buffers.ts";
import { type GpuRecorder, type Res, roundUp } from "./webgpu_recorder.ts";
import { fillRopeTable } from "./rope_table.ts";
import { scratch } from "./webgpu_matmul.ts";

/** What every op records with: the recorder, the buffers, tuning and the scratch buffers. */
export interface OpsContext {
  readonly rec: GpuRecorder;
  readonly mem: GpuMemory;
  /** Lanes per output row in matmul_rows / ffn_gate_up (64 on GPUs, 1 on software). */
  readonly lanes: number;
  /** Positions per split-K slice of matmulTAdd (default: chosen from the shape). */
  readonly tSplitRows?: number;
  /** Positions per attention chunk (default: chosen from the shape). */
  readonly attnChunk?: number;
  /** Split-K and attention-chunk partials (grown on demand). */
  scratch: Res | null;
  /** Quantized activations of the q8 products (grown on demand). */
  q8x: Res | null;
}

/** Elementwise dispatch size: one thread per value, 256 per workgroup. */
const per256 = (n: number) => Math.ceil(n / 256);

/** `out[t, :] = table[ids[t], :]`; out `[T, cols]`. */
export function embed(g: OpsContext, table: MatView, ids: Int32Array, out: Tensor): void {
  const { mem, rec } = g;
  const o = mem.t(out);
  const w = mem.view(table);
  checkEmbed(table, ids, o);
  const T = ids.length, cols = table.cols;
  if (T === 0 || cols === 0) return;
  const idsRes = rec.arenaAlloc(T * 4);
  new Int32Array(rec.arenaHost, idsRes.offset, T).set(ids);
  if (w.dtype === "q8") {
    rec.dispatch(
      "embed_q8",
      "main",
      {},
      { T, cols, w_base: table.offset, w_stride: table.stride },
      [mem.q8Res(w), idsRes, mem.tres(o)],
      per256(T * cols),
    );
    return;
  }
  const emit = (t0: number, tn: number, row0: number, rowLast: number) => {
    const wr = mem.bindRange(
      w,
      table.offset + row0 * table.stride,
      table.offset + rowLast * table.stride + cols,
    );
    rec.dispatch(
      "embed",
      "main",
      { W_F16: w.dtype === "f16" },
      { t_base: t0, t_count: tn, cols, w_base: wr.base, w_stride: table.stride, row0 },
      [wr.res, idsRes, mem.tres(o)],
      per256(tn * cols),
    );
  };
  if (w.buf.size <= mem.maxWBind) {
    emit(0, T, 0, 0);
  } else {
    for (let t = 0; t < T; t++) emit(t, 1, ids[t], ids[t]);
  }
}

/** Grouped RMSNorm; x, out `[T, G * weight.cols]`; out may alias x. */
export function rmsNorm(g: OpsContext, x: Tensor, weight: MatView, eps: number, out: Tensor): void {
  const { mem } = g;
  const a = mem.t(x);
  const o = mem.t(out);
  mem.view(weight);
  checkRmsNorm(a, weight, o);
  weight = mem.f32View(weight);
  const w = mem.view(weight);
  const gs = weight.cols;
  const groups = a.rows * (a.cols / gs);
  if (groups === 0) return;
  const wr = mem.bindRange(w, weight.offset, weight.offset + gs);
  g.rec.dispatch(
    "rms_norm",
    "main",
    { W_F16: w.dtype === "f16" },
    { n_groups: groups, gs, w_base: wr.base, eps },
    [mem.tres(a), wr.res, mem.tres(o)],
    groups,
  );
}

/** `out = silu(gate) * up`, elementwise; out may alias gate. */
export function siluMul(g: OpsContext, gate: Tensor, up: Tensor, out: Tensor): void {
  const { mem } = g;
  const [gt, ut, o] = [mem.t(gate), mem.t(up), mem.t(out)];
  checkSiluMul(gt, ut, o);
  const n = gt.rows * gt.cols;
  if (n === 0) return;
  const res = [mem.tres(gt), mem.tres(ut), mem.tres(o)];
  g.rec.dispatch("silu_mul", "main", {}, { n }, res, per256(n));
}

/** Rotary embedding in place (HF rotate_half) on every head of x `[T, nh * d]`. */
export function rope(
  g: OpsContext,
  x: Tensor,
  headDim: number,
  pos0: number,
  invFreq: MatView,
): void {
  const { mem } = g;
  const a = mem.t(x);
  mem.view(invFreq);
  checkRope(a, headDim, pos0, invFreq);
  invFreq = mem.f32View(invFreq);
  const f = mem.view(invFreq);
  const d = headDim;
  const nh = a.cols / d;
  const n = a.rows * nh * (d / 2);
  if (n === 0) return;
  const fr = mem.bindRange(f, invFreq.offset, invFreq.offset + d / 2);
  const tab = f.host ? ropeTable(g, f, f.host, invFreq.offset, d / 2, pos0, a.rows) : null;
  g.rec.dispatch(
    "rope",
    "main",
    { W_F16: f.dtype === "f16", TABLE: tab !== null },
    { T: a.rows, nh, d, pos0, f_base: fr.base },
    [mem.tres(a), fr.res, tab ?? mem.dummyR],
    per256(n),
  );
}

/**
 * (cos, sin) pairs of `(pos0 + t) * invFreq[i]`, `[T, half, 2]` (lib/backends/rope_table.ts),
 * uploaded once per step (upload arena) and shared by every rope call with the same positions
 * (q and k of all layers).
 */
function ropeTable(
  g: OpsContext,
  w: GpuWeights,
  host: Float32Array,
  offset: number,
  half: number,
  pos0: number,
  T: number,
): Res {
  const key = `rope:${w.id}:${offset}:${half}:${pos0}:${T}`;
  const hit = g.rec.stepCache.get(key);
  if (hit) return hit;
  const res = g.rec.arenaAlloc(T * half * 8);
  const tab = new Float32Array(g.rec.arenaHost, res.offset, T * half * 2);
  fillRopeTable(tab, host.subarray(offset, offset + half), pos0, T, "pairs");
  g.rec.stepCache.set(key, res);
  return res;
}

/** `x[t, :] += bias` for every row. */
export function addRow(g: OpsContext, x: Tensor, bias: MatView): void {
  const { mem } = g;
  const a = mem.t(x);
  mem.view(bias);
  checkAddRow(a, bias);
  bias = mem.f32View(bias);
  const b = mem.view(bias);
  const n = a.rows * a.cols;
  if (n === 0) return;
  const br = mem.bindRange(b, bias.offset, bias.offset + bias.cols);
  g.rec.dispatch(
    "add_row",
    "main",
    { W_F16: b.dtype === "f16" },
    { n, cols: a.cols, b_base: br.base },
    [mem.tres(a), br.res],
    per256(n),
  );
}

/** `x += y`, elementwise. */
export function add(g: OpsContext, x: Tensor, y: Tensor): void {
  const { mem } = g;
  const a = mem.t(x);
  const b = mem.t(y);
  checkAdd(a, b);
  const n = a.rows * a.cols;
  if (n === 0) return;
  g.rec.dispatch("add", "main", {}, { n }, [mem.tres(a), mem.tres(b)], per256(n));
}

/** Write keys or values of kv heads `heads[j]` into cache rows `heads[j] * maxT + pos0 + t`. */
export function kvWrite(
  g: OpsContext,
  cache: Tensor,
  kv: Tensor,
  heads: IndexList,
  maxT: number,
  pos0: number,
): void {
  const { mem } = g;
  const c = mem.t(cache);
  const k = mem.t(kv);
  const h = mem.idx(heads);
  checkKvWrite(c, k, h, maxT, pos0);
  const T = k.rows;
  const n = T * k.cols;
  if (n === 0) return;
  g.rec.dispatch(
    "kv_write",
    "main",
    {},
    { T, nh: h.length, d: c.cols, max_t: maxT, pos0 },
    [mem.tres(c), mem.tres(k), mem.ires(h)],
    per256(n),
  );
}

/** Causal attention of q `[T, S * d]` over the caches; `kvOf[s]` = kv head of slot s. */
export function attention(
  g: OpsContext,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  kvOf: IndexList,
  maxT: number,
  pos0: number,
  scale: number,
  out: Tensor,
): void {
  const { mem, rec } = g;
  const [qt, kc, vc, o] = [mem.t(q), mem.t(kCache), mem.t(vCache), mem.t(out)];
  const map = mem.idx(kvOf);
  checkAttention(qt, kc, vc, map, maxT, pos0, o);
  const d = kc.cols;
  if (d > 256) throw new RangeError(`webgpu.attention: head dim ${d} > 256`);
  const S = map.length;
  const T = qt.rows;
  if (T === 0 || S === 0) return;
  // Split the positions into chunks when (slot, token) pairs alone would leave a GPU idle.
  const nMax = pos0 + T;
  let chunk: number;
  if (g.attnChunk) {
    chunk = roundUp(g.attnChunk, 64);
  } else {
    const want = Math.min(Math.ceil(128 / (S * T)), Math.ceil(nMax / 256));
    chunk = roundUp(Math.ceil(nMax / Math.max(1, want)), 64);
  }
  const nChunk = Math.ceil(nMax / chunk);
  const part = nChunk > 1 ? scratch(g, S * T * nChunk * (d + 2) * 4) : mem.dummyW;
  const uni = { T, S, d, max_t: maxT, pos0, scale, chunk, n_chunk: nChunk };
  const res = [mem.tres(qt), mem.tres(kc), mem.tres(vc), mem.ires(map), mem.tres(o), part];
  rec.dispatch("attention", "main", {}, uni, res, S * T * nChunk);
  if (nChunk > 1) rec.dispatch("attention", "combine", {}, uni, res, S * T);
}

/** Copy `count` rows of src from `srcRow` into dst from `dstRow`. */
export function copyRows(
  g: OpsContext,
  src: Tensor,
  srcRow: number,
  count: number,
  dst: Tensor,
  dstRow: number,
): void {
  const { mem } = g;
  const s: GpuTensor = mem.t(src);
  const d: GpuTensor = mem.t(dst);
  checkCopyRows(s, srcRow, count, d, dstRow);
  const n = count * s.cols;
  if (n === 0 || (s === d && srcRow === dstRow)) return;
  g.rec.dispatch(
    "copy_rows",
    "main",
    {},
    { n, src_off: srcRow * s.cols, dst_off: dstRow * s.cols },
    [mem.tres(s), mem.tres(d)],
    per256(n),
  );
}
