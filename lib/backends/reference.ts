/**
 * The plain TypeScript backend: the reference every faster backend is tested against.
 * Eager, fp32 arithmetic, straightforward loops; pruned rows are never read. Weights are stored
 * as f32 by default; with `weightDType` "f16" they are rounded to f16, with "q8" quantized to
 * lib/formats/q8.ts blocks, and q8 matmuls quantize the activation exactly as the WASM and WGSL
 * kernels do (see {@link WeightDType}).
 */

import type { Backend, IndexList, MatView, Tensor, WeightBuffer, WeightDType } from "./backend.ts";
import {
  dequantizeQ8,
  Q8_BLOCK,
  Q8_BLOCK_BYTES,
  quantizeBlock,
  quantizeQ8,
} from "../formats/q8.ts";
import {
  checkAdd,
  checkAddRow,
  checkAttention,
  checkCopyRows,
  checkEmbed,
  checkKvWrite,
  checkMatmul,
  checkMatmulTAdd,
  checkQ8View,
  checkRmsNorm,
  checkRope,
  checkSiluMul,
  checkTensorShape,
  checkWrite,
} from "./arg_checks.ts";
import { fillRopeTable } from "./rope_table.ts";

/** A host tensor `[rows, cols]`. */
export class RefTensor implements Tensor {
  constructor(
    readonly rows: number,
    readonly cols: number,
    public data: Float32Array, // [rows, cols] row-major
  ) {}
}

/** A host weight buffer: the values as stored (f16-rounded or dequantized q8) in `data`. */
export class RefWeights implements WeightBuffer {
  readonly length: number;
  constructor(
    readonly data: Float32Array,
    readonly dtype: WeightDType = "f32",
    /** q8 storage: per block scale `d[b]` and the int8 values `q[e]` (element order). */
    readonly q8: { d: Float32Array; q: Int8Array } | null = null,
  ) {
    this.length = data.length;
  }
}

/** A host index list. */
class RefIndices implements IndexList {
  readonly length: number;
  constructor(readonly host: Int32Array) {
    this.length = host.length;
  }
}

function t(x: Tensor): RefTensor {
  return x as RefTensor;
}
function wd(v: MatView): Float32Array {
  return (v.buf as RefWeights).data;
}

/** Plain TypeScript implementation of {@link Backend}. */
export class ReferenceBackend implements Backend {
  readonly name = "reference";
  readonly weightDType: WeightDType;

  /** `weightDType` (default "f32") is the storage precision of {@link weights}. */
  constructor(opts: { weightDType?: WeightDType } = {}) {
    const dt = opts.weightDType ?? "f32";
    if (dt !== "f32" && dt !== "f16" && dt !== "q8") {
      throw new Error(`reference backend: bad weightDType ${dt}`);
    }
    this.weightDType = dt;
  }

  weights(data: Float32Array, dtype?: WeightDType): WeightBuffer {
    const dt = dtype ?? this.weightDType;
    if (dt === "f16") return new RefWeights(data.map((v) => Math.f16round(v)), dt);
    if (dt === "q8") {
      const bytes = quantizeQ8(data);
      const nb = bytes.length / Q8_BLOCK_BYTES;
      const dv = new DataView(bytes.buffer);
      const d = Float32Array.from(
        { length: nb },
        (_, b) => dv.getFloat32(b * Q8_BLOCK_BYTES, true),
      );
      const q = new Int8Array(data.length);
      const all = new Int8Array(bytes.buffer);
      for (let e = 0; e < data.length; e++) {
        q[e] = all[Math.floor(e / Q8_BLOCK) * Q8_BLOCK_BYTES + 4 + (e % Q8_BLOCK)];
      }
      return new RefWeights(dequantizeQ8(bytes, data.length), dt, { d, q });
    }
    return new RefWeights(data);
  }
  indices(idx: Int32Array): IndexList {
    return new RefIndices(idx);
  }
  tensor(rows: number, cols: number): Tensor {
    checkTensorShape(rows, cols);
    return new RefTensor(rows, cols, new Float32Array(rows * cols));
  }
  write(x: Tensor, data: Float32Array): void {
    checkWrite(x, data);
    t(x).data.set(data);
  }
  read(x: Tensor): Promise<Float32Array> {
    return Promise.resolve(t(x).data.slice());
  }
  free(x: Tensor): void {
    t(x).data = new Float32Array(0);
  }
  release(_b: WeightBuffer | IndexList): void {}

  embed(table: MatView, ids: Int32Array, out: Tensor): void {
    checkEmbed(table, ids, out);
    const w = wd(table);
    const o = t(out).data;
    const c = table.cols;
    for (let i = 0; i < ids.length; i++) {
      const base = table.offset + ids[i] * table.stride;
      o.set(w.subarray(base, base + c), i * c);
    }
  }

  rmsNorm(x: Tensor, weight: MatView, eps: number, out: Tensor): void {
    checkRmsNorm(x, weight, out);
    const xd = t(x).data;
    const od = t(out).data;
    const w = wd(weight);
    const g = weight.cols;
    const groups = xd.length / g;
    for (let r = 0; r < groups; r++) {
      const b = r * g;
      let ss = 0;
      for (let i = 0; i < g; i++) ss += xd[b + i] * xd[b + i];
      const inv = 1 / Math.sqrt(ss / g + eps);
      for (let i = 0; i < g; i++) od[b + i] = xd[b + i] * inv * w[weight.offset + i];
    }
  }

  matmul(x: Tensor, w: MatView, rows: IndexList | null, bias: MatView | null, out: Tensor): void {
    checkMatmul(x, w, rows, bias, out);
    const q8 = (w.buf as RefWeights).q8;
    if (q8) return this.#matmulQ8(x, w, q8, rows, bias, out);
    const xd = t(x).data;
    const od = t(out).data;
    const W = wd(w);
    const K = w.cols;
    const T = x.rows;
    const R = rows ? rows.length : w.rows;
    const idx = rows?.host;
    const bd = bias ? wd(bias) : null;
    for (let i = 0; i < R; i++) {
      const r = idx ? idx[i] : i;
      const base = w.offset + r * w.stride;
      const b = bd ? bd[bias!.offset + r] : 0;
      for (let tok = 0; tok < T; tok++) {
        const xb = tok * K;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let k = 0;
        for (; k + 3 < K; k += 4) {
          s0 += W[base + k] * xd[xb + k];
          s1 += W[base + k + 1] * xd[xb + k + 1];
          s2 += W[base + k + 2] * xd[xb + k + 2];
          s3 += W[base + k + 3] * xd[xb + k + 3];
        }
        for (; k < K; k++) s0 += W[base + k] * xd[xb + k];
        od[tok * R + i] = s0 + s1 + s2 + s3 + b;
      }
    }
  }

  /** q8 weights: x quantized per token and block of 32; exact integer block sums. */
  #matmulQ8(
    x: Tensor,
    w: MatView,
    q8: { d: Float32Array; q: Int8Array },
    rows: IndexList | null,
    bias: MatView | null,
    out: Tensor,
  ): void {
    const K = w.cols, T = x.rows;
    checkQ8View("matmul", "w", w);
    const nb = K / Q8_BLOCK;
    const xd = t(x).data;
    const xq = new Int16Array(T * K); // [T, K] quantized x
    const xs = new Float32Array(T * nb); // [T, K / 32] block scales
    for (let tok = 0; tok < T; tok++) {
      for (let b = 0; b < nb; b++) {
        const e = tok * K + b * Q8_BLOCK;
        xs[tok * nb + b] = quantizeBlock(xd, e, Q8_BLOCK, xq, e);
      }
    }
    const od = t(out).data;
    const R = rows ? rows.length : w.rows;
    const idx = rows?.host;
    const bd = bias ? wd(bias) : null;
    for (let i = 0; i < R; i++) {
      const r = idx ? idx[i] : i;
      const base = w.offset + r * w.stride;
      const b0 = bd ? bd[bias!.offset + r] : 0;
      for (let tok = 0; tok < T; tok++) {
        let s = 0;
        for (let b = 0; b < nb; b++) {
          let isum = 0;
          const wb = base + b * Q8_BLOCK, xb = tok * K + b * Q8_BLOCK;
          for (let k = 0; k < Q8_BLOCK; k++) isum += q8.q[wb + k] * xq[xb + k];
          s += Math.fround(q8.d[wb / Q8_BLOCK] * xs[tok * nb + b]) * isum;
        }
        od[tok * R + i] = s + b0;
      }
    }
  }

  matmulTAdd(a: Tensor, w: MatView, rows: IndexList | null, out: Tensor): void {
    checkMatmulTAdd(a, w, rows, out);
    const ad = t(a).data;
    const od = t(out).data;
    const W = wd(w);
    const M = w.cols;
    const T = a.rows;
    const R = rows ? rows.length : w.rows;
    const idx = rows?.host;
    for (let i = 0; i < R; i++) {
      const r = idx ? idx[i] : i;
      const base = w.offset + r * w.stride;
      for (let tok = 0; tok < T; tok++) {
        const s = ad[tok * R + i];
        if (s === 0) continue;
        const ob = tok * M;
        for (let m = 0; m < M; m++) od[ob + m] += s * W[base + m];
      }
    }
  }

  siluMul(gate: Tensor, up: Tensor, out: Tensor): void {
    checkSiluMul(gate, up, out);
    const g = t(gate).data;
    const u = t(up).data;
    const o = t(out).data;
    for (let i = 0; i < g.length; i++) {
      const v = g[i];
      o[i] = (v / (1 + Math.exp(-v))) * u[i];
    }
  }

  rope(x: Tensor, headDim: number, pos0: number, invFreq: MatView): void {
    checkRope(x, headDim, pos0, invFreq);
    const xd = t(x).data;
    const half = headDim / 2;
    const heads = x.cols / headDim;
    const f = wd(invFreq).subarray(invFreq.offset, invFreq.offset + half);
    const tab = fillRopeTable(new Float32Array(x.rows * headDim), f, pos0, x.rows, "halves");
    for (let tok = 0; tok < x.rows; tok++) {
      const cs = tok * headDim; // [cos_0 .. cos_{half-1}, sin_0 .. sin_{half-1}]
      for (let h = 0; h < heads; h++) {
        const b = tok * x.cols + h * headDim;
        for (let i = 0; i < half; i++) {
          const a = xd[b + i];
          const c = xd[b + i + half];
          xd[b + i] = a * tab[cs + i] - c * tab[cs + half + i];
          xd[b + i + half] = c * tab[cs + i] + a * tab[cs + half + i];
        }
      }
    }
  }

  addRow(x: Tensor, bias: MatView): void {
    checkAddRow(x, bias);
    const xd = t(x).data;
    const b = wd(bias);
    const c = x.cols;
    for (let r = 0; r < x.rows; r++) {
      for (let i = 0; i < c; i++) xd[r * c + i] += b[bias.offset + i];
    }
  }

  add(x: Tensor, y: Tensor): void {
    checkAdd(x, y);
    const xd = t(x).data;
    const yd = t(y).data;
    for (let i = 0; i < xd.length; i++) xd[i] += yd[i];
  }

  kvWrite(cache: Tensor, kv: Tensor, heads: IndexList, maxT: number, pos0: number): void {
    checkKvWrite(cache, kv, heads, maxT, pos0);
    const cd = t(cache).data;
    const kd = t(kv).data;
    const d = cache.cols;
    const S = heads.length;
    for (let tok = 0; tok < kv.rows; tok++) {
      for (let j = 0; j < S; j++) {
        const row = heads.host[j] * maxT + pos0 + tok;
        const src = tok * kv.cols + j * d;
        cd.set(kd.subarray(src, src + d), row * d);
      }
    }
  }

  attention(
    q: Tensor,
    kCache: Tensor,
    vCache: Tensor,
    kvOf: IndexList,
    maxT: number,
    pos0: number,
    scale: number,
    out: Tensor,
  ): void {
    checkAttention(q, kCache, vCache, kvOf, maxT, pos0, out);
    const qd = t(q).data;
    const kd = t(kCache).data;
    const vd = t(vCache).data;
    const od = t(out).data;
    const d = kCache.cols;
    const S = kvOf.length;
    const scores = new Float32Array(pos0 + q.rows);
    for (let tok = 0; tok < q.rows; tok++) {
      const n = pos0 + tok + 1;
      for (let s = 0; s < S; s++) {
        const qb = tok * q.cols + s * d;
        const kvBase = kvOf.host[s] * maxT;
        let mx = -Infinity;
        for (let p = 0; p < n; p++) {
          const kb = (kvBase + p) * d;
          let dot = 0;
          for (let i = 0; i < d; i++) dot += qd[qb + i] * kd[kb + i];
          dot *= scale;
          scores[p] = dot;
          if (dot > mx) mx = dot;
        }
        let sum = 0;
        for (let p = 0; p < n; p++) {
          const e = Math.exp(scores[p] - mx);
          scores[p] = e;
          sum += e;
        }
        const ob = tok * out.cols + s * d;
        for (let i = 0; i < d; i++) od[ob + i] = 0;
        for (let p = 0; p < n; p++) {
          const wgt = scores[p] / sum;
          const vb = (kvBase + p) * d;
          for (let i = 0; i < d; i++) od[ob + i] += wgt * vd[vb + i];
        }
      }
    }
  }

  copyRows(src: Tensor, srcRow: number, count: number, dst: Tensor, dstRow: number): void {
    checkCopyRows(src, srcRow, count, dst, dstRow);
    const c = src.cols;
    t(dst).data.set(t(src).data.subarray(srcRow * c, (srcRow + count) * c), dstRow * c);
  }
}
