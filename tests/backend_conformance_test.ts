/**
 * Backend conformance: ONE suite run on every backend (reference, wasm f32, wasm f16, webgpu when
 * `lib/backends/webgpu.ts` exists and an adapter is present). Every op of the `Backend` interface
 * is checked with seeded random inputs (random masks and index lists, strided views with offsets,
 * T = 1 and T > 1, GQA kv maps) against a small float64 computation written here, independent of
 * any backend's code.
 *
 * Tolerances: |got - want| <= ATOL + RTOL * max(|want|, rms(want)), RTOL = ATOL = 1e-5 for f32
 * storage (rope adds pos * 2^-23 to ATOL: an f32 angle is allowed). With f16 storage the expected values are computed from f16-rounded weights (buffers
 * uploaded with `dtype: "f32"` stay exact), so the same tolerance applies. With q8 storage the
 * expected values are computed from weights quantized here (blocks of 32, f32 scale, written
 * from the format's definition in lib/formats/q8.ts, not with its code), and q8 matmuls quantize
 * x per token and block the same way; the integer block sums are then exact, so what remains is
 * f32 accumulation over blocks and the same tolerance applies. (WGSL allows 2.5 ulp for f32
 * division, so on a GPU whose division is not IEEE a value within ulps of a rounding boundary
 * could quantize one step apart; llvmpipe divides exactly.) Failures print the
 * worst error, its index, and both values.
 *
 * `checkWholeForward` (exported) runs the fixture models end to end on a backend against the
 * float64 PyTorch logits; `checkMaskedForward` runs them under a random SEAP mask against the
 * reference backend. The suite uses both for every backend with the tolerances stated at the call.
 */

import assert from "node:assert/strict";
import type { Backend, IndexList, MatView, Tensor, WeightBuffer } from "../lib/backends/backend.ts";
import { BACKENDS, destroyTestBackends, LANES64 } from "./helpers/test_backends.ts";
import { rng, subset, uniform } from "./helpers/seeded.ts";
import { ffnBundle } from "./helpers/ffn_bundle.ts";
import { ReferenceBackend } from "../lib/backends/reference.ts";
import { assertClose, ATOL, RTOL } from "./helpers/assert_close.ts";

// ---------- helpers ----------

/** Round half to even (the q8 format's rounding). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * q8 quantization of `a` in blocks of 32 consecutive values, every step in f32: scale
 * d = max|v| / 127, q = roundEven(v * (1 / d)). Returns per-value q and per-block d.
 */
function q8(a: ArrayLike<number>): { q: Int32Array; d: Float64Array } {
  const nb = Math.ceil(a.length / 32);
  const q = new Int32Array(a.length), d = new Float64Array(nb);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let k = b * 32; k < Math.min(a.length, b * 32 + 32); k++) {
      amax = Math.max(amax, Math.abs(a[k]));
    }
    d[b] = Math.fround(amax / 127);
    const id = d[b] === 0 ? 0 : Math.fround(1 / d[b]);
    for (let k = b * 32; k < Math.min(a.length, b * 32 + 32); k++) {
      q[k] = roundEven(Math.fround(a[k] * id));
    }
  }
  return { q, d };
}

/** Values as the backend stores them by default (f16-rounded, or q8 blocks over `a`). */
function stored(be: Backend, a: Float32Array): Float32Array {
  if (be.weightDType === "f16") return a.map((v) => Math.f16round(v));
  if (be.weightDType === "q8") {
    const { q, d } = q8(a);
    return Float32Array.from(q, (v, i) => Math.fround(v * d[Math.floor(i / 32)]));
  }
  return a;
}

/**
 * x [T, K] times rows of a q8-stored w [N, K] (all blocks inside rows), with x quantized per
 * token and block: out[t, i] = sum_b dw * dx * sum_k qw * qx (+ bias).
 */
function refMatmulQ8(
  x: Float32Array,
  T: number,
  K: number,
  w: Float32Array, // [N, K] as uploaded (before quantization)
  rows: Int32Array | null,
  N: number,
  bias: Float32Array | null,
): Float64Array {
  const R = rows ? rows.length : N;
  const qw = q8(w), qx = q8(x);
  const out = new Float64Array(T * R);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < R; i++) {
      const r = rows ? rows[i] : i;
      let s = 0;
      for (let b = 0; b < K / 32; b++) {
        let isum = 0;
        for (let k = b * 32; k < b * 32 + 32; k++) isum += qw.q[r * K + k] * qx.q[t * K + k];
        s += Math.fround(qw.d[(r * K) / 32 + b] * qx.d[(t * K) / 32 + b]) * isum;
      }
      out[t * R + i] = s + (bias ? bias[r] : 0);
    }
  }
  return out;
}

/** Upload `data` as a tensor [rows, cols]. */
function put(be: Backend, rows: number, cols: number, data: Float32Array): Tensor {
  const t = be.tensor(rows, cols);
  be.write(t, data);
  return t;
}

/**
 * A view [rows, cols] placed inside a larger buffer at `offset` with row `stride`; the rest of
 * the buffer is filled with large junk so a kernel reading outside the view is caught.
 */
function padded(
  be: Backend,
  m: Float32Array,
  rows: number,
  cols: number,
  offset: number,
  stride: number,
  r: () => number,
  dtype?: "f32",
): { view: MatView; buf: WeightBuffer; vals: Float32Array } {
  const len = offset + Math.max(0, rows - 1) * stride + cols + 3;
  const all = uniform(len, r, 1e3);
  for (let i = 0; i < rows; i++) all.set(m.subarray(i * cols, (i + 1) * cols), offset + i * stride);
  const buf = be.weights(all, dtype);
  // Stored values of the whole buffer (q8 blocks run over it), then the view's part.
  const st = dtype === "f32" ? all : stored(be, all);
  const vals = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    vals.set(st.subarray(offset + i * stride, offset + i * stride + cols), i * cols);
  }
  return { view: { buf, offset, stride, rows, cols }, buf, vals };
}

// ---------- independent float64 computations ----------

function refMatmul(
  x: Float32Array,
  T: number,
  K: number,
  w: Float32Array, // [N, K]
  rows: Int32Array | null,
  N: number,
  bias: Float32Array | null, // [N]
): Float64Array {
  const R = rows ? rows.length : N;
  const out = new Float64Array(T * R);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < R; i++) {
      const r = rows ? rows[i] : i;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[t * K + k] * w[r * K + k];
      out[t * R + i] = s + (bias ? bias[r] : 0);
    }
  }
  return out;
}

function refMatmulTAdd(
  a: Float32Array, // [T, R]
  T: number,
  w: Float32Array, // [N, M]
  rows: Int32Array | null,
  N: number,
  M: number,
  out0: Float32Array, // [T, M]
): Float64Array {
  const R = rows ? rows.length : N;
  const out = Float64Array.from(out0);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < R; i++) {
      const r = rows ? rows[i] : i;
      const c = a[t * R + i];
      for (let m = 0; m < M; m++) out[t * M + m] += c * w[r * M + m];
    }
  }
  return out;
}

// ---------- the suite ----------

/** Ops checked on every backend; each gets a fresh seeded generator. */
const CHECKS: Record<string, (be: Backend, r: () => number) => Promise<void>> = {
  "tensor is zero-filled; read returns a copy; copyRows": async (be, r) => {
    const t = be.tensor(5, 7);
    assertClose("zero tensor", await be.read(t), new Float32Array(35), 0, 0);
    const d = uniform(35, r);
    be.write(t, d);
    const a = await be.read(t);
    a.fill(42);
    assertClose("read after mutating a copy", await be.read(t), d, 0, 0);
    const dst = put(be, 6, 7, uniform(42, r));
    const want = await be.read(dst);
    want.set(d.subarray(7, 7 + 3 * 7), 2 * 7);
    be.copyRows(t, 1, 3, dst, 2);
    assertClose("copyRows", await be.read(dst), want, 0, 0);
    be.copyRows(dst, 0, 2, dst, 4); // within one tensor, ranges apart
    want.copyWithin(4 * 7, 0, 2 * 7);
    assertClose("copyRows within one tensor", await be.read(dst), want, 0, 0);
    be.free(t);
    be.free(dst);
  },

  "embed (strided table, repeated ids, T=1 and T=6)": async (be, r) => {
    const V = 23, H = 19;
    const tab = uniform(V * H, r);
    const p = padded(be, tab, V, H, 5, H + 3, r);
    for (const T of [1, 6]) {
      const ids = Int32Array.from({ length: T }, () => Math.floor(r() * V));
      if (T > 1) ids[T - 1] = ids[0];
      const out = be.tensor(T, H);
      be.embed(p.view, ids, out);
      const want = new Float32Array(T * H);
      for (let t = 0; t < T; t++) want.set(p.vals.subarray(ids[t] * H, ids[t] * H + H), t * H);
      assertClose(`embed T=${T}`, await be.read(out), want, 0, 0);
      be.free(out);
    }
    be.release(p.buf);
  },

  "rmsNorm (G=1 and per-head G=3, aliasing, f32 override)": async (be, r) => {
    for (
      const [T, G, c, dt] of [[1, 1, 37, undefined], [4, 1, 64, "f32"], [
        3,
        3,
        16,
        undefined,
      ]] as const
    ) {
      const x = uniform(T * G * c, r, 3);
      const w = uniform(c, r);
      const p = padded(be, w, 1, c, 7, c, r, dt);
      const eps = 1e-5;
      const want = new Float64Array(T * G * c);
      for (let g = 0; g < T * G; g++) {
        let ss = 0;
        for (let k = 0; k < c; k++) ss += x[g * c + k] ** 2;
        const s = 1 / Math.sqrt(ss / c + eps);
        for (let k = 0; k < c; k++) want[g * c + k] = x[g * c + k] * s * p.vals[k];
      }
      const xt = put(be, T, G * c, x);
      const out = be.tensor(T, G * c);
      be.rmsNorm(xt, p.view, eps, out);
      assertClose(`rmsNorm T=${T} G=${G} c=${c}`, await be.read(out), want);
      be.rmsNorm(xt, p.view, eps, xt); // out aliases x
      assertClose(`rmsNorm in place T=${T} G=${G}`, await be.read(xt), want);
      be.free(xt);
      be.free(out);
      be.release(p.buf);
    }
  },

  "matmul (row-gathered, strided, bias, T=1..35)": async (be, r) => {
    const isQ8 = be.weightDType === "q8";
    // q8 kernels need views on 32-value blocks: K, offset and stride multiples of 32. [T, K, N,
    // offset]: offsets 16 and 8 with K = 64 put the "half" views on 8-value boundaries (the
    // aligned vec4 paths of the GPU kernels); 11 does not.
    const shapes: [number, number, number, number?][] = isQ8
      ? [[1, 96, 37], [1, 64, 50], [7, 32, 29], [35, 64, 13], [2, 32, 4], [3, 32, 5], [40, 32, 66]]
      : [
        [1, 67, 37],
        [1, 64, 50],
        [7, 40, 29],
        [35, 24, 13],
        [2, 8, 4],
        [3, 1, 5],
        [1, 64, 50, 16],
        [
          6,
          64,
          37,
          8,
        ],
      ];
    for (const [T, K, N, off] of shapes) {
      for (const mode of ["dense", "half", "one", "all"] as const) {
        const rows = mode === "dense" ? null : subset(
          N,
          mode === "half" ? Math.max(1, N >> 1) : mode === "one" ? 1 : N,
          r,
        );
        const w = uniform(N * K, r);
        const stride = K + (mode === "half" ? 2 * K : isQ8 ? 32 : 5); // bundled layouts
        const p = padded(be, w, N, K, off ?? (isQ8 ? 64 : 11), stride, r);
        const bias = mode === "half" || mode === "one" ? uniform(N, r) : null;
        const pb = bias ? padded(be, bias, 1, N, 3, N, r, "f32") : null;
        const x = uniform(T * K, r, 2);
        const R = rows ? rows.length : N;
        const il: IndexList | null = rows ? be.indices(rows) : null;
        const xt = put(be, T, K, x);
        const out = put(be, T, R, uniform(T * R, r, 9)); // overwritten, not accumulated
        be.matmul(xt, p.view, il, pb ? pb.view : null, out);
        const want = isQ8
          ? refMatmulQ8(x, T, K, w, rows, N, bias)
          : refMatmul(x, T, K, p.vals, rows, N, bias);
        assertClose(`matmul T=${T} K=${K} N=${N} ${mode}`, await be.read(out), want);
        be.free(xt);
        be.free(out);
        be.release(p.buf);
        if (pb) be.release(pb.buf);
        if (il) be.release(il);
      }
    }
  },

  "matmulTAdd (row-gathered, strided, accumulating, T=1..35)": async (be, r) => {
    const isQ8 = be.weightDType === "q8";
    // [T, N, M, offset, stride]: by default offset 13 and stride 3M + 1 (never aligned); the
    // last two f32 shapes are 4-aligned (vec4 path) and wider than 256 columns.
    const shapes: [number, number, number, number?, number?][] = isQ8
      ? [[1, 53, 64], [1, 48, 96], [6, 20, 32], [35, 12, 64], [2, 5, 32], [40, 70, 32]]
      : [[1, 53, 41], [1, 48, 64], [6, 20, 33], [35, 12, 24], [2, 5, 3], [7, 50, 40, 4, 124], [
        1,
        70,
        300,
        0,
        900,
      ]];
    for (const [T, N, M, off, stride] of shapes) {
      for (const mode of ["dense", "half", "one"] as const) {
        const rows = mode === "dense" ? null : subset(N, mode === "half" ? N >> 1 : 1, r);
        const w = uniform(N * M, r);
        const p = isQ8
          ? padded(be, w, N, M, 32, M * 3 + 32, r)
          : padded(be, w, N, M, off ?? 13, stride ?? M * 3 + 1, r);
        const R = rows ? rows.length : N;
        const a = uniform(T * R, r, 2);
        const out0 = uniform(T * M, r);
        const il = rows ? be.indices(rows) : null;
        const at = put(be, T, R, a);
        const out = put(be, T, M, out0);
        be.matmulTAdd(at, p.view, il, out);
        const want = refMatmulTAdd(a, T, p.vals, rows, N, M, out0);
        assertClose(`matmulTAdd T=${T} N=${N} M=${M} ${mode}`, await be.read(out), want);
        be.free(at);
        be.free(out);
        be.release(p.buf);
        if (il) be.release(il);
      }
    }
  },

  "matmul and matmulTAdd with activations >= 2^15 (f16 kernels' unscaled path), T=1": async (
    be,
    r,
  ) => {
    const K = 64, N = 24;
    const w = uniform(N * K, r);
    const p = padded(be, w, N, K, 0, K, r);
    const x = uniform(K, r, 2);
    x[5] = 1e5; // x * 2^112 overflows f32: the pre-scaled f16 path must not be taken
    const xt = put(be, 1, K, x), out = be.tensor(1, N);
    be.matmul(xt, p.view, null, null, out);
    const want = be.weightDType === "q8"
      ? refMatmulQ8(x, 1, K, w, null, N, null)
      : refMatmul(x, 1, K, p.vals, null, N, null);
    assertClose("matmul with |x| = 1e5", await be.read(out), want);
    const a = uniform(N, r, 2);
    a[3] = -2e5;
    const at = put(be, 1, N, a), o2 = put(be, 1, K, new Float32Array(K));
    be.matmulTAdd(at, p.view, null, o2);
    assertClose(
      "matmulTAdd with |a| = 2e5",
      await be.read(o2),
      refMatmulTAdd(a, 1, p.vals, null, N, K, new Float32Array(K)),
    );
    for (const t of [xt, out, at, o2]) be.free(t);
    be.release(p.buf);
  },

  "siluMul (wide range, aliasing)": async (be, r) => {
    const n = 3 * 37;
    const g = uniform(n, r, 30);
    g[0] = -100;
    g[1] = 100;
    g[2] = 0;
    const u = uniform(n, r, 2);
    const want = Array.from(g, (v, i) => v / (1 + Math.exp(-v)) * u[i]);
    const gt = put(be, 3, 37, g), ut = put(be, 3, 37, u), out = be.tensor(3, 37);
    be.siluMul(gt, ut, out);
    assertClose("siluMul", await be.read(out), want);
    be.siluMul(gt, ut, gt);
    assertClose("siluMul in place", await be.read(gt), want);
    for (const t of [gt, ut, out]) be.free(t);
  },

  "rope (rotate_half, pos0 > 0, several heads)": async (be, r) => {
    for (const [T, nh, d, pos0] of [[1, 3, 8, 0], [5, 2, 64, 1000], [1, 4, 64, 4095]]) {
      const inv = Float32Array.from({ length: d / 2 }, (_, i) => Math.pow(10000, (-2 * i) / d));
      const p = padded(be, inv, 1, d / 2, 9, d / 2, r, "f32");
      const x = uniform(T * nh * d, r);
      const want = new Float64Array(x.length);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < nh; h++) {
          const o = (t * nh + h) * d;
          for (let i = 0; i < d / 2; i++) {
            const ang = (pos0 + t) * inv[i];
            const c = Math.cos(ang), s = Math.sin(ang);
            want[o + i] = x[o + i] * c - x[o + i + d / 2] * s;
            want[o + i + d / 2] = x[o + i + d / 2] * c + x[o + i] * s;
          }
        }
      }
      const xt = put(be, T, nh * d, x);
      be.rope(xt, d, pos0, p.view);
      // A backend may form the angle in f32 as HF does: pos * invFreq is then off by up to
      // pos * 2^-24 rad (x2 for the cos/sin argument reduction), |x| <= 1 here.
      const atol = ATOL + (pos0 + T) * 2 ** -23;
      assertClose(`rope T=${T} nh=${nh} d=${d} pos0=${pos0}`, await be.read(xt), want, RTOL, atol);
      be.free(xt);
      be.release(p.buf);
    }
  },

  "rope with invFreq deep inside a large buffer": async (be, r) => {
    // A buffer past WebGPU's host-copy limit (64 Ki values): the WGSL kernel then forms the
    // angles itself, in f32 with a two-part 2 pi range reduction, and WGSL bounds sin/cos only
    // to 2^-11 absolute; other backends keep the f32-angle tolerance of the rope check above.
    const T = 3, nh = 2, d = 16, pos0 = 500, half = d / 2, off = 70000;
    const all = new Float32Array(off + half);
    for (let i = 0; i < half; i++) all[off + i] = Math.pow(10000, (-2 * i) / d);
    const buf = be.weights(all, "f32");
    const x = uniform(T * nh * d, r);
    const want = new Float64Array(x.length);
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nh; h++) {
        const o = (t * nh + h) * d;
        for (let i = 0; i < half; i++) {
          const ang = (pos0 + t) * all[off + i];
          want[o + i] = x[o + i] * Math.cos(ang) - x[o + i + half] * Math.sin(ang);
          want[o + i + half] = x[o + i + half] * Math.cos(ang) + x[o + i] * Math.sin(ang);
        }
      }
    }
    const xt = put(be, T, nh * d, x);
    be.rope(xt, d, pos0, { buf, offset: off, stride: half, rows: 1, cols: half });
    const atol = be.name === "webgpu" ? 2e-3 : ATOL + (pos0 + T) * 2 ** -23;
    assertClose(`rope pos0=${pos0}, invFreq at ${off}`, await be.read(xt), want, RTOL, atol);
    be.free(xt);
    be.release(buf);
  },

  "stream order: writes, frees and new tensors between ops": async (be) => {
    const A = Float32Array.of(1, 2, 3, 4, 5, 6);
    const B = Float32Array.of(10, 20, 30, 40, 50, 60);
    const x = put(be, 2, 3, A), y = put(be, 2, 3, A);
    be.add(y, x); // 2A
    be.write(x, B); // must not reach the add above (a GPU backend records both)
    be.add(y, x); // 2A + B
    be.free(x);
    const z = be.tensor(2, 3); // may reuse x's storage: must still read as zeros
    be.add(y, z);
    assertClose("ops in stream order", await be.read(y), A.map((v, i) => 2 * v + B[i]), 0, 0);
    assertClose("a new tensor after a free is zero", await be.read(z), new Float32Array(6), 0, 0);
    be.free(y);
    be.free(z);
  },

  "addRow and add": async (be, r) => {
    const T = 4, c = 21;
    const x = uniform(T * c, r), y = uniform(T * c, r), b = uniform(c, r);
    const p = padded(be, b, 1, c, 2, c, r);
    const xt = put(be, T, c, x), yt = put(be, T, c, y);
    be.addRow(xt, p.view);
    assertClose("addRow", await be.read(xt), Array.from(x, (v, i) => v + p.vals[i % c]));
    be.add(xt, yt);
    assertClose("add", await be.read(xt), Array.from(x, (v, i) => v + p.vals[i % c] + y[i]));
    be.free(xt);
    be.free(yt);
    be.release(p.buf);
  },

  "kvWrite (subset of kv heads, pos0 > 0)": async (be, r) => {
    const nKv = 3, maxT = 16, d = 8;
    for (const [T, pos0, heads] of [[3, 4, [0, 2]], [1, 15, [1]], [16, 0, [0, 1, 2]]] as const) {
      const c0 = uniform(nKv * maxT * d, r);
      const kv = uniform(T * heads.length * d, r);
      const cache = put(be, nKv * maxT, d, c0);
      const kvt = put(be, T, heads.length * d, kv);
      const hl = be.indices(Int32Array.from(heads));
      be.kvWrite(cache, kvt, hl, maxT, pos0);
      const want = c0.slice();
      for (let t = 0; t < T; t++) {
        heads.forEach((h, j) => {
          const src = kv.subarray((t * heads.length + j) * d, (t * heads.length + j + 1) * d);
          want.set(src, (h * maxT + pos0 + t) * d);
        });
      }
      assertClose(`kvWrite T=${T} pos0=${pos0}`, await be.read(cache), want, 0, 0);
      be.free(cache);
      be.free(kvt);
      be.release(hl);
    }
  },

  "attention (causal, GQA map, decode and prefill)": async (be, r) => {
    // [T, pos0, d, kvOf, maxT]: maxT 40 unless given; the long ones span several 64-position
    // tiles (and attention chunks on the chunked WebGPU configuration).
    const nKv = 3;
    for (
      const [T, pos0, d, kvOf, maxT = 40] of [
        [1, 0, 8, [0]],
        [1, 17, 64, [0, 0, 1, 2]],
        [3, 5, 16, [2, 0]],
        [12, 0, 32, [1, 1, 1, 0, 2, 2]],
        [1, 39, 64, [2]],
        [2, 7, 16, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], // a group larger than 8 slots
        [1, 30, 8, [0, 1, 0, 1, 2, 0, 1, 0, 1, 0, 0, 0]], // interleaved map
        [3, 70, 72, [0, 2, 1, 1, 0], 150],
        [9, 120, 8, [0, 0], 140],
      ] as [number, number, number, number[], number?][]
    ) {
      const S = kvOf.length;
      const kc = uniform(nKv * maxT * d, r, 2), vc = uniform(nKv * maxT * d, r);
      const q = uniform(T * S * d, r, 2);
      const scale = 1 / Math.sqrt(d);
      const want = new Float64Array(T * S * d);
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < S; s++) {
          const n = pos0 + t + 1, h = kvOf[s];
          const sc = new Float64Array(n);
          for (let p = 0; p < n; p++) {
            let dot = 0;
            for (let k = 0; k < d; k++) dot += q[(t * S + s) * d + k] * kc[(h * maxT + p) * d + k];
            sc[p] = dot * scale;
          }
          const mx = Math.max(...sc);
          let sum = 0;
          for (let p = 0; p < n; p++) sum += sc[p] = Math.exp(sc[p] - mx);
          for (let p = 0; p < n; p++) {
            for (let k = 0; k < d; k++) {
              want[(t * S + s) * d + k] += sc[p] / sum * vc[(h * maxT + p) * d + k];
            }
          }
        }
      }
      const qt = put(be, T, S * d, q);
      const kt = put(be, nKv * maxT, d, kc), vt = put(be, nKv * maxT, d, vc);
      const il = be.indices(Int32Array.from(kvOf));
      const out = be.tensor(T, S * d);
      be.attention(qt, kt, vt, il, maxT, pos0, scale, out);
      assertClose(`attention T=${T} pos0=${pos0} d=${d} S=${S}`, await be.read(out), want);
      for (const t of [qt, kt, vt, out]) be.free(t);
      be.release(il);
    }
  },
};

/** Checks of optional ops, run only on backends that have the method. */
const OPTIONAL_CHECKS: Record<
  string,
  [keyof Backend, (be: Backend, r: () => number) => Promise<void>]
> = {
  "ffn (fused SwiGLU over a bundled [gate|up|down^T] layout, masks, T=1..35, act capture)": [
    "ffn",
    async (be, r) => {
      const isQ8 = be.weightDType === "q8";
      const shapes = isQ8
        ? [[1, 32, 24, 24], [1, 64, 50, 17], [5, 32, 16, 8], [35, 32, 9, 5], [3, 64, 80, 70], [
          33,
          32,
          72,
          72,
        ], [2, 96, 40, 37]]
        : [
          [1, 40, 24, 24],
          [1, 64, 50, 17],
          [5, 24, 16, 8],
          [35, 16, 9, 5],
          [3, 24, 80, 70],
          [
            33,
            8,
            72,
            72,
          ],
          [2, 12, 40, 37],
          [6, 30, 21, 21],
        ]; // K = 30: unaligned rows
      for (const [T, K, N, keep] of shapes) {
        const M = K;
        const bundle = uniform(N * 3 * K, r, 0.5); // [N, 3K] row j = gate_j | up_j | down^T_j
        const { bundle: buf, gate: gv, up: uv, down: dv } = ffnBundle(be, bundle, N, K, M);
        const vals = stored(be, bundle);
        const rows = keep === N ? null : subset(N, keep, r);
        const R = rows ? rows.length : N;
        const x = uniform(T * K, r, 2);
        const out0 = uniform(T * M, r);
        const wantAct = new Float64Array(T * R);
        const want = Float64Array.from(out0);
        // q8: gate and up products quantize x (as matmul does); down uses the stored values.
        const gate = new Float32Array(N * K), upW = new Float32Array(N * K);
        for (let j = 0; j < N; j++) {
          gate.set(bundle.subarray(j * 3 * K, j * 3 * K + K), j * K);
          upW.set(bundle.subarray(j * 3 * K + K, j * 3 * K + 2 * K), j * K);
        }
        const gq = isQ8 ? refMatmulQ8(x, T, K, gate, null, N, null) : null; // [T, N]
        const uq = isQ8 ? refMatmulQ8(x, T, K, upW, null, N, null) : null;
        for (let t = 0; t < T; t++) {
          for (let i = 0; i < R; i++) {
            const j = rows ? rows[i] : i;
            let g = 0, u = 0;
            if (gq && uq) {
              g = gq[t * N + j];
              u = uq[t * N + j];
            } else {
              for (let k = 0; k < K; k++) {
                g += x[t * K + k] * vals[j * 3 * K + k];
                u += x[t * K + k] * vals[j * 3 * K + K + k];
              }
            }
            const a = g / (1 + Math.exp(-g)) * u;
            wantAct[t * R + i] = a;
            for (let m = 0; m < M; m++) want[t * M + m] += a * vals[j * 3 * K + 2 * K + m];
          }
        }
        const il = rows ? be.indices(rows) : null;
        const xt = put(be, T, K, x), out = put(be, T, M, out0), act = be.tensor(T, R);
        be.ffn!(xt, gv, uv, dv, il, out, act);
        assertClose(`ffn out T=${T} K=${K} N=${N} keep=${keep}`, await be.read(out), want);
        assertClose(`ffn act T=${T} K=${K} N=${N} keep=${keep}`, await be.read(act), wantAct);
        for (const t of [xt, out, act]) be.free(t);
        be.release(buf);
        if (il) be.release(il);
      }
    },
  ],
};

/**
 * Bad arguments every backend must reject before doing any work, each with the one message
 * lib/backends/arg_checks.ts words for it (the same text on every backend). `only` limits a
 * case to the backends it applies to (optional ops, storage formats).
 */
const BAD_ARGS: {
  what: string;
  message: string;
  only?: (be: Backend) => boolean;
  run: (be: Backend, t: (rows: number, cols: number) => Tensor, w: MatView) => void;
}[] = [
  {
    what: "tensor of a fractional shape",
    message: "tensor: bad shape [2.5, 3]",
    run: (be) => be.tensor(2.5, 3),
  },
  {
    what: "write of the wrong length",
    message: "write: 5 values for a [2, 3] tensor",
    run: (be, t) => be.write(t(2, 3), new Float32Array(5)),
  },
  {
    what: "embed id past the table",
    message: "embed: token id 8 at 1 outside [0, 8)",
    run: (be, t, w) => be.embed(w, Int32Array.of(0, 8), t(2, 64)),
  },
  {
    what: "embed into a wrong-width out",
    message: "embed: out [1, 63] for 1 ids of width 64",
    run: (be, t, w) => be.embed(w, Int32Array.of(0), t(1, 63)),
  },
  {
    what: "view past its buffer",
    message: "matmul: w view (offset 64, stride 64, [8, 64]) does not fit a buffer of 512",
    run: (be, t, w) => be.matmul(t(1, 64), { ...w, offset: 64 }, null, null, t(1, 8)),
  },
  {
    what: "matmul with x of the wrong width",
    message: "matmul: x [2, 32], w [8, 64], 8 rows, out [2, 8]",
    run: (be, t, w) => be.matmul(t(2, 32), w, null, null, t(2, 8)),
  },
  {
    what: "matmul rows past the matrix",
    message: "matmul: rows index 8 at 1 outside [0, 8)",
    run: (be, t, w) => be.matmul(t(1, 64), w, be.indices(Int32Array.of(2, 8)), null, t(1, 2)),
  },
  {
    what: "matmul bias of the wrong length",
    message: "matmul: bias of 7 values for 8 rows",
    run: (be, t, w) => be.matmul(t(1, 64), w, null, { ...w, rows: 1, cols: 7 }, t(1, 8)),
  },
  {
    what: "q8 matmul on a view off the 32-value blocks",
    message: "matmul: q8 w needs offset, stride and cols that are multiples of 32 " +
      "(offset 0, stride 64, [7, 48])",
    only: (be) => be.weightDType === "q8",
    run: (be, t, w) => be.matmul(t(1, 48), { ...w, rows: 7, cols: 48 }, null, null, t(1, 7)),
  },
  {
    what: "matmulTAdd with a of the wrong width",
    message: "matmulTAdd: a [1, 3], w [8, 64], 2 rows, out [1, 64]",
    run: (be, t, w) => be.matmulTAdd(t(1, 3), w, be.indices(Int32Array.of(0, 1)), t(1, 64)),
  },
  {
    what: "rmsNorm whose width is not whole groups",
    message: "rmsNorm: x [2, 96], out [2, 96], weight 64",
    run: (be, t, w) => be.rmsNorm(t(2, 96), { ...w, rows: 1 }, 1e-5, t(2, 96)),
  },
  {
    what: "siluMul of two shapes",
    message: "siluMul: gate [2, 3], up [3, 2], out [2, 3]",
    run: (be, t) => be.siluMul(t(2, 3), t(3, 2), t(2, 3)),
  },
  {
    what: "rope with an odd head dim",
    message: "rope: x [1, 14], headDim 7, invFreq 64, pos0 0",
    run: (be, t, w) => be.rope(t(1, 14), 7, 0, { ...w, rows: 1 }),
  },
  {
    what: "rope at a negative position",
    message: "rope: x [1, 16], headDim 8, invFreq 64, pos0 -1",
    run: (be, t, w) => be.rope(t(1, 16), 8, -1, { ...w, rows: 1 }),
  },
  {
    what: "addRow with a short bias",
    message: "addRow: bias 64 for x [2, 65]",
    run: (be, t, w) => be.addRow(t(2, 65), { ...w, rows: 1 }),
  },
  {
    what: "add of two shapes",
    message: "add: x [2, 3], y [1, 6]",
    run: (be, t) => be.add(t(2, 3), t(1, 6)),
  },
  {
    what: "kvWrite past maxT",
    message: "kvWrite: positions 7..9 outside maxT 8",
    run: (be, t) => be.kvWrite(t(16, 4), t(2, 4), be.indices(Int32Array.of(1)), 8, 7),
  },
  {
    what: "kvWrite to a kv head the cache lacks",
    message: "kvWrite: heads index 2 at 0 outside [0, 2)",
    run: (be, t) => be.kvWrite(t(16, 4), t(1, 4), be.indices(Int32Array.of(2)), 8, 0),
  },
  {
    what: "attention with a kv map past the cache",
    message: "attention: kvOf index 5 at 1 outside [0, 2)",
    run: (be, t) =>
      be.attention(t(1, 8), t(16, 4), t(16, 4), be.indices(Int32Array.of(0, 5)), 8, 0, 1, t(1, 8)),
  },
  {
    what: "attention with q of the wrong width",
    message: "attention: q [1, 12], caches [16, 4] / [16, 4], 2 slots, out [1, 8]",
    run: (be, t) =>
      be.attention(t(1, 12), t(16, 4), t(16, 4), be.indices(Int32Array.of(0, 1)), 8, 0, 1, t(1, 8)),
  },
  {
    what: "copyRows past the source",
    message: "copyRows: 3 rows from 2 of [4, 5] to 0 of [6, 5]",
    run: (be, t) => be.copyRows(t(4, 5), 2, 3, t(6, 5), 0),
  },
  {
    what: "copyRows overlapping within one tensor",
    message: "copyRows: overlapping copy within one tensor",
    run: (be, t) => {
      const x = t(6, 5);
      be.copyRows(x, 0, 3, x, 1);
    },
  },
  {
    what: "ffn with up of another width",
    message: "ffn: x [1, 64], gate [8, 64], up [8, 32], downT [8, 64], 8 rows, out [1, 64]",
    only: (be) => typeof be.ffn === "function",
    run: (be, t, w) => be.ffn!(t(1, 64), w, { ...w, cols: 32 }, w, null, t(1, 64)),
  },
  {
    what: "ffn over matrices stored in two formats",
    message: `ffn: gate, up and downT must share a storage dtype (f32, {dt}, {dt})`,
    only: (be) => typeof be.ffn === "function" && be.weightDType !== "f32",
    run: (be, t, w) => {
      const gate = be.weights(new Float32Array(512), "f32");
      be.ffn!(t(1, 64), { ...w, buf: gate }, w, w, null, t(1, 64));
    },
  },
];

/**
 * Whole-forward check: load each fixture model on `backend`, prefill its prompt and decode its
 * decode ids, and compare every logit row with `expected.safetensors` (float64 PyTorch).
 * Returns the worst absolute error seen; throws when it exceeds `tol`.
 */
export async function checkWholeForward(
  makeBackend: () => Promise<Backend>,
  fixtures: string[],
  tol: number,
): Promise<number> {
  const { loadModel } = await import("../lib/model/model.ts");
  const { Sequence } = await import("../lib/model/sequence.ts");
  const { parseSafetensors, toFloat32, toInt32 } = await import("../lib/formats/safetensors.ts");
  let worstAll = 0;
  for (const name of fixtures) {
    const dir = new URL(`./fixtures/${name}`, import.meta.url).pathname;
    const model = await loadModel(dir, { backend: await makeBackend() });
    const exp = parseSafetensors(await Deno.readFile(`${dir}/expected.safetensors`));
    const prompt = toInt32(exp.tensors.get("prompt_ids")!);
    const dec = toInt32(exp.tensors.get("decode_ids")!);
    const logits = toFloat32(exp.tensors.get("logits")!); // [P + D, V]
    const V = model.config.vocabSize;
    const seq = new Sequence(model, { maxTokens: prompt.length + dec.length + 1 });
    const rows: [string, Float32Array, number][] = [];
    const pre = await seq.prefill(prompt, { allLogits: true }); // [P, V]
    for (let t = 0; t < prompt.length; t++) {
      rows.push([`prefill token ${t}`, pre.subarray(t * V, (t + 1) * V), t]);
    }
    for (let k = 0; k < dec.length; k++) {
      rows.push([`decode step ${k}`, await seq.decode(dec[k]), prompt.length + k]);
    }
    seq.free();
    for (const [what, got, row] of rows) {
      const want = logits.subarray(row * V, (row + 1) * V);
      let err = 0, at = -1;
      for (let i = 0; i < V; i++) {
        const e = Math.abs(got[i] - want[i]);
        if (!(e <= err)) [err, at] = [e, i];
      }
      worstAll = Math.max(worstAll, err);
      assert.ok(err <= tol, `${name} ${what}: worst |diff| ${err} at id ${at} (tol ${tol})`);
    }
  }
  return worstAll;
}

/**
 * Masked whole-forward check: the same random SEAP mask (random heads and neurons per layer, a
 * whole kv group pruned, a layer with every head pruned, bias compensation) applied to each
 * fixture model on `makeBackend()` and on `makeOracle()` (the reference backend by default);
 * prefill and decode logits must agree within `tol`. Returns the worst absolute difference.
 */
export async function checkMaskedForward(
  makeBackend: () => Promise<Backend>,
  fixtures: string[],
  tol: number,
  makeOracle: () => Backend = () => new ReferenceBackend(),
): Promise<number> {
  const { loadModel } = await import("../lib/model/model.ts");
  const { Sequence } = await import("../lib/model/sequence.ts");
  const { prepareMask } = await import("../lib/model/prepared_mask.ts");
  let worstAll = 0;
  for (const name of fixtures) {
    const dir = new URL(`./fixtures/${name}`, import.meta.url).pathname;
    const models = [
      await loadModel(dir, { backend: await makeBackend() }),
      await loadModel(dir, { backend: makeOracle() }),
    ];
    const cfg = models[0].config;
    const r = rng(name.length * 31 + 7);
    const group = cfg.numHeads / cfg.numKvHeads;
    const layers = Array.from({ length: cfg.numLayers }, (_, l) => {
      const all = Array.from({ length: cfg.numHeads }, (_, h) => h);
      const heads = l === 1
        ? new Int32Array(0)
        : l === 0 && cfg.numKvHeads > 1
        ? Int32Array.from(all.filter((h) => h >= group))
        : subset(cfg.numHeads, 1 + Math.floor(r() * cfg.numHeads), r);
      const bias = () => uniform(cfg.hiddenSize, r, 0.1);
      const keep = Math.floor(cfg.intermediateSize * (0.2 + 0.6 * r()));
      return {
        neurons: subset(cfg.intermediateSize, keep, r),
        heads,
        biasAttn: bias(),
        biasFfn: l === 0 ? null : bias(),
      };
    });
    const mask = { name: "conformance-random", layers };
    const ids = Int32Array.from({ length: 12 }, () => Math.floor(r() * cfg.vocabSize));
    const out: Float32Array[][] = [];
    for (const model of models) {
      const seq = new Sequence(model, { maxTokens: 32, mask: prepareMask(model, mask) });
      const rows = [await seq.prefill(ids.subarray(0, 8), { allLogits: true })];
      for (let k = 8; k < 12; k++) rows.push(await seq.decode(ids[k]));
      seq.free();
      out.push(rows);
    }
    out[0].forEach((got, i) => {
      const want = out[1][i];
      let err = 0, at = -1;
      for (let j = 0; j < want.length; j++) {
        const e = Math.abs(got[j] - want[j]);
        if (!(e <= err)) [err, at] = [e, j];
      }
      worstAll = Math.max(worstAll, err);
      const what = i === 0 ? "masked prefill" : `masked decode step ${i - 1}`;
      assert.ok(err <= tol, `${name} ${what}: worst |diff| ${err} at index ${at} (tol ${tol})`);
    });
  }
  return worstAll;
}

/** Fixture models for the whole-forward check. */
const FORWARD_FIXTURES = [
  "llama_gqa_llama3rope",
  "llama_linear_rope_tied",
  "qwen2_bias",
  "qwen3_qknorm",
  "mistral",
];

for (const bc of [...BACKENDS, LANES64]) {
  const made = await bc.make();
  const fixtures = bc === LANES64 ? FORWARD_FIXTURES.slice(0, 1) : FORWARD_FIXTURES;
  const skip = typeof made === "string" ? made : null;
  for (const [name, fn] of Object.entries(CHECKS)) {
    Deno.test({
      name: `${bc.name}: ${name}${skip ? ` (skipped: ${skip})` : ""}`,
      ignore: skip !== null,
      fn: () => fn(made as Backend, rng(name.length * 7919 + 17)),
    });
  }
  for (const [name, [method, fn]] of Object.entries(OPTIONAL_CHECKS)) {
    const has = skip === null && typeof (made as Backend)[method] === "function";
    Deno.test({
      name: `${bc.name}: ${name}${skip ? ` (skipped: ${skip})` : has ? "" : " (not implemented)"}`,
      ignore: !has,
      fn: () => fn(made as Backend, rng(name.length * 7919 + 17)),
    });
  }
  Deno.test({
    name: `${bc.name}: rejects bad arguments with the shared messages${
      skip ? ` (skipped: ${skip})` : ""
    }`,
    ignore: skip !== null,
    fn: () => {
      const be = made as Backend;
      const made2: Tensor[] = [];
      const t = (rows: number, cols: number) => {
        const x = be.tensor(rows, cols);
        made2.push(x);
        return x;
      };
      const buf = be.weights(uniform(512, rng(5)));
      const w: MatView = { buf, offset: 0, stride: 64, rows: 8, cols: 64 };
      let ran = 0;
      for (const c of BAD_ARGS) {
        if (c.only && !c.only(be)) continue;
        const message = c.message.replaceAll("{dt}", be.weightDType);
        assert.throws(() => c.run(be, t, w), { message }, `${bc.name}: ${c.what}`);
        ran++;
      }
      for (const x of made2) be.free(x);
      be.release(buf);
      console.log(`  ${bc.name}: ${ran} bad calls rejected`);
    },
  });
  // f32 storage: 1e-4 like the reference logits test; f16 storage: weights rounded to 11 bits
  // shift the tiny models' logits by up to a few 1e-3. q8 against the f64 PyTorch logits: 8-bit
  // weights and activations (per-value error up to max|block| / 254, 8x f16's step, on both
  // operands) move these random fixtures' logits (|logit| up to 11.9) by up to 0.20 (measured:
  // 0.14, 0.19, 0.20, 0.11 on the four q8 fixtures; qwen3_qknorm, hidden 48, keeps f32 matrices
  // and stays at 3e-6). 0.3 is 2.5% of the largest logit; the tight q8 check is the masked
  // comparison with the q8 reference below.
  const isQ8 = bc.name.endsWith("q8");
  const tol = bc.name.endsWith("f16") ? 2e-2 : isQ8 ? 0.3 : 1e-4;
  // Masked q8 runs are compared with the q8 reference backend: same quantized weights and the
  // same activation quantization, so only f32 rounding differs, except that a value landing
  // within an ulp of a rounding boundary of x * (1 / d) may quantize one step apart, moving an
  // output by up to d_x * |w| of one weight; 2e-3 covers that on these logits (measured:
  // 5.7e-6, no such flip on these seeds).
  const maskedTol = isQ8 ? 2e-3 : tol;
  const oracle = isQ8
    ? () => new ReferenceBackend({ weightDType: "q8" })
    : () => new ReferenceBackend();
  Deno.test({
    name: `${bc.name}: whole forward on ${fixtures.length} fixture models (tol ${tol})${
      skip ? ` (skipped: ${skip})` : ""
    }`,
    ignore: skip !== null,
    fn: async () => {
      const worst = await checkWholeForward(
        () => bc.make() as Promise<Backend>,
        fixtures,
        tol,
      );
      console.log(`  ${bc.name}: worst |logit diff| ${worst.toExponential(3)}`);
    },
  });
  const isOracle = bc.name.startsWith("reference");
  Deno.test({
    name:
      `${bc.name}: masked forward on ${fixtures.length} fixture models equals the reference backend's (tol ${maskedTol})${
        skip ? ` (skipped: ${skip})` : isOracle ? " (skipped: it is the oracle)" : ""
      }`,
    ignore: skip !== null || isOracle,
    fn: async () => {
      const worst = await checkMaskedForward(
        () => bc.make() as Promise<Backend>,
        fixtures,
        maskedTol,
        oracle,
      );
      console.log(`  ${bc.name}: worst masked |logit diff| vs reference ${worst.toExponential(3)}`);
    },
  });
}

// Not a test: the WebGPU devices this file made are destroyed once its tests have run.
Deno.test.afterAll(() => {
  destroyTestBackends();
});
