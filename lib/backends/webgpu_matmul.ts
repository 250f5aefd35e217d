/**
 * The WebGPU products: {@link Backend.matmul}, {@link Backend.matmulTAdd} and the fused
 * {@link Backend.ffn}, recorded as dispatches of matmul_rows.wgsl, matmul_t_add.wgsl and
 * ffn_gate_up.wgsl (f32 or packed-f16 weights, bound in row chunks when a view exceeds the
 * binding limit) or of their *_q8.wgsl twins (q8 weights; the activation is first quantized by
 * quantize_q8.wgsl, as in the other backends).
 */

import type { IndexList, MatView, Tensor } from "./backend.ts";
import { checkFfn, checkMatmul, checkMatmulTAdd, checkQ8View } from "./arg_checks.ts";
import { Q8_BLOCK } from "../formats/q8.ts";
import type { GpuTensor } from "./webgpu_buffers.ts";
import { KERNELS } from "./webgpu_kernels.ts";
import type { OpsContext } from "./webgpu_ops.ts";
import type { Res } from "./webgpu_recorder.ts";

/** Tokens per workgroup of the tiled kernels (emitted into their WGSL from the same table). */
const TT = KERNELS.matmul_rows.consts.TT;

/**
 * Quantize x [T, K] for a q8 product (quantize_q8.wgsl) into the q8 activation buffer: T *
 * K/32 scales from word 0, the packed values from word `qBase`.
 */
function quantizeX(g: OpsContext, x: GpuTensor, T: number, K: number): { res: Res; qBase: number } {
  const nb = K / Q8_BLOCK;
  const qBase = T * nb;
  g.q8x = g.rec.grow(g.q8x, (qBase + (T * K) / 4) * 4, 1 << 12, "quantized activations");
  g.rec.dispatch(
    "quantize_q8",
    "main",
    {},
    { T, K, q_base: qBase },
    [g.mem.tres(x), g.q8x],
    Math.ceil((T * nb) / 64),
  );
  return { res: g.q8x, qBase };
}

/** Row-gathered product `out[t, i] = x[t, :] . w[rows[i], :] (+ bias[rows[i]])`. */
export function matmul(
  g: OpsContext,
  x: Tensor,
  w: MatView,
  rows: IndexList | null,
  bias: MatView | null,
  out: Tensor,
): void {
  const { mem, rec } = g;
  const a = mem.t(x);
  const o = mem.t(out);
  const wb = mem.view(w);
  const idx = rows ? mem.idx(rows) : null;
  checkMatmul(a, w, idx, bias, o);
  const T = a.rows;
  const K = w.cols;
  const R = idx ? idx.length : w.rows;
  if (bias) bias = mem.f32View(bias);
  const bb = bias ? mem.view(bias) : null;
  if (T === 0 || R === 0) return;
  const has_rows = idx ? 1 : 0;
  if (wb.dtype === "q8") {
    const q8 = checkQ8View("matmul", "w", w);
    const xq = quantizeX(g, a, T, K);
    const br = bb && bias ? mem.bindRange(bb, bias.offset, bias.offset + w.rows) : null;
    rec.dispatch(
      "matmul_rows_q8",
      "main",
      { B_F16: bb?.dtype === "f16" },
      {
        T,
        K,
        R,
        w_block0: q8.block0,
        w_sb: q8.sb,
        has_rows,
        has_bias: br ? 1 : 0,
        b_base: br?.base ?? 0,
        q_base: xq.qBase,
      },
      [mem.q8Res(wb), xq.res, idx ? mem.ires(idx) : mem.dummyR, br?.res ?? mem.dummyR, mem.tres(o)],
      Math.ceil((T * R) / 64),
    );
    return;
  }
  const f16 = wb.dtype === "f16";
  const q = f16 ? 8 : 4;
  mem.chunks(w, idx, 0, R, (p0, p1, r0, r1) => {
    const wr = mem.bindRange(wb, w.offset + r0 * w.stride, w.offset + r1 * w.stride + K);
    const br = bb && bias ? mem.bindRange(bb, bias.offset + r0, bias.offset + r1 + 1) : null;
    const vec = wr.base % q === 0 && w.stride % q === 0 && K % q === 0;
    const count = p1 - p0;
    rec.dispatch(
      "matmul_rows",
      "main",
      { W_F16: f16, VEC: vec, B_F16: bb?.dtype === "f16", LANES: g.lanes },
      {
        T,
        K,
        R,
        p_base: p0,
        p_count: count,
        w_base: wr.base,
        w_stride: w.stride,
        row0: r0,
        has_rows,
        has_bias: br ? 1 : 0,
        b_base: br?.base ?? 0,
      },
      [wr.res, mem.tres(a), idx ? mem.ires(idx) : mem.dummyR, br?.res ?? mem.dummyR, mem.tres(o)],
      Math.ceil(count / (256 / g.lanes)) * Math.ceil(T / TT),
    );
  });
}

/** Row-gathered transposed product, accumulated: `out[t, :] += sum_i a[t, i] w[rows[i], :]`. */
export function matmulTAdd(
  g: OpsContext,
  a: Tensor,
  w: MatView,
  rows: IndexList | null,
  out: Tensor,
): void {
  const { mem, rec } = g;
  const at = mem.t(a);
  const o = mem.t(out);
  const wb = mem.view(w);
  const idx = rows ? mem.idx(rows) : null;
  checkMatmulTAdd(at, w, idx, o);
  const T = at.rows;
  const M = w.cols;
  const R = idx ? idx.length : w.rows;
  if (T === 0 || R === 0 || M === 0) return;
  const has_rows = idx ? 1 : 0;
  const rowsRes = idx ? mem.ires(idx) : mem.dummyR;
  if (wb.dtype === "q8") {
    const q8 = checkQ8View("matmulTAdd", "w", w);
    rec.dispatch(
      "matmul_t_add_q8",
      "main",
      {},
      { T, M, R, w_block0: q8.block0, w_sb: q8.sb, has_rows },
      [mem.q8Res(wb), mem.tres(at), rowsRes, mem.tres(o)],
      Math.ceil((T * M) / 64),
    );
    return;
  }
  const f16 = wb.dtype === "f16";
  const nCt = Math.ceil(M / 256);
  const nTiles = Math.ceil(T / TT);
  mem.chunks(w, idx, 0, R, (p0, p1, r0, r1) => {
    const count = p1 - p0;
    const wr = mem.bindRange(wb, w.offset + r0 * w.stride, w.offset + r1 * w.stride + M);
    const vec = wr.base % 4 === 0 && w.stride % 4 === 0 && M % 4 === 0;
    let split: number;
    if (g.tSplitRows) {
      split = g.tSplitRows;
    } else {
      const want = Math.max(1, Math.ceil(256 / (nCt * nTiles)));
      split = Math.max(32, Math.ceil(count / want));
    }
    const nSplit = Math.ceil(count / split);
    const partial = nSplit > 1 ? scratch(g, nSplit * T * M * 4) : mem.dummyW;
    const uni = {
      T,
      M,
      R,
      p_base: p0,
      p_count: count,
      w_base: wr.base,
      w_stride: w.stride,
      row0: r0,
      has_rows,
      split,
      n_split: nSplit,
    };
    const res = [wr.res, mem.tres(at), rowsRes, partial, mem.tres(o)];
    const flags = { W_F16: f16, VEC: vec };
    rec.dispatch("matmul_t_add", "main", flags, uni, res, nCt * nSplit * nTiles);
    if (nSplit > 1) {
      rec.dispatch("matmul_t_add", "reduce", flags, uni, res, Math.ceil((T * M) / 256));
    }
  });
}

/**
 * Fused SwiGLU FFN over kept neurons: `act = silu(x gate[rows]^T) * (x up[rows]^T)` in one
 * dispatch (ffn_gate_up.wgsl: x read once, two dot products per row), then
 * `out += act downT[rows]` (matmul_t_add.wgsl). x `[T, K]`, out `[T, M]`, act `[T, R]`.
 */
export function ffn(
  g: OpsContext,
  x: Tensor,
  gate: MatView,
  up: MatView,
  downT: MatView,
  rows: IndexList | null,
  out: Tensor,
  act: Tensor | null,
): void {
  const { mem, rec } = g;
  const xt = mem.t(x);
  const o = mem.t(out);
  const gb = mem.view(gate);
  const ub = mem.view(up);
  mem.view(downT);
  const idx = rows ? mem.idx(rows) : null;
  const at = act ? mem.t(act) : null;
  checkFfn(xt, gate, up, downT, idx, o, at);
  const T = xt.rows;
  const K = gate.cols;
  const R = idx ? idx.length : gate.rows;
  if (T === 0 || R === 0) return;
  const a = at ?? mem.tensor(T, R);
  const has_rows = idx ? 1 : 0;
  const rowsRes = idx ? mem.ires(idx) : mem.dummyR;
  if (gb.dtype === "q8") {
    const g8 = checkQ8View("ffn", "gate", gate), u8 = checkQ8View("ffn", "up", up);
    const xq = quantizeX(g, xt, T, K);
    rec.dispatch(
      "ffn_gate_up_q8",
      "main",
      {},
      {
        T,
        K,
        R,
        g_block0: g8.block0,
        g_sb: g8.sb,
        u_block0: u8.block0,
        u_sb: u8.sb,
        has_rows,
        q_base: xq.qBase,
      },
      [mem.q8Res(gb), mem.q8Res(ub), xq.res, rowsRes, mem.tres(a)],
      Math.ceil((T * R) / 64),
    );
  } else {
    const gf16 = gb.dtype === "f16";
    const uf16 = ub.dtype === "f16";
    const q = gf16 ? 8 : 4;
    mem.chunks(gate, idx, 0, R, (p0, p1, r0, r1) => {
      const gr = mem.bindRange(
        gb,
        gate.offset + r0 * gate.stride,
        gate.offset + r1 * gate.stride + K,
      );
      const ur = mem.bindRange(ub, up.offset + r0 * up.stride, up.offset + r1 * up.stride + K);
      const vec = gf16 === uf16 && K % q === 0 && gr.base % q === 0 && gate.stride % q === 0 &&
        ur.base % q === 0 && up.stride % q === 0;
      const count = p1 - p0;
      rec.dispatch(
        "ffn_gate_up",
        "main",
        { W_F16: gf16, U_F16: uf16, VEC: vec, LANES: g.lanes },
        {
          T,
          K,
          R,
          p_base: p0,
          p_count: count,
          w_base: gr.base,
          w_stride: gate.stride,
          row0: r0,
          has_rows,
          u_base: ur.base,
          u_stride: up.stride,
        },
        [gr.res, mem.tres(xt), rowsRes, ur.res, mem.tres(a)],
        Math.ceil(count / (256 / g.lanes)) * Math.ceil(T / TT),
      );
    });
  }
  matmulTAdd(g, a, downT, rows, out);
  if (!at) mem.free(a);
}

/** The split-K / attention-chunk scratch buffer, grown to at least `bytes`. */
export function scratch(g: OpsContext, bytes: number): Res {
  g.scratch = g.rec.grow(g.scratch, bytes, 1 << 16, "split-K scratch");
  return g.scratch;
}
