/**
 * Every WebGPU op against a small, independent TypeScript computation (seeded random inputs:
 * random kept-row lists, strided views with offsets, T = 1 and T > 1, GQA maps).
 *
 * Each op runs on three backend configurations: f32 weights; f16 weights with 64 matmul lanes
 * per row (the reference then uses the same f16-rounded weights, so the same tolerance
 * applies; 64 lanes exercise the shared-memory reduction); and f32 with a tiny weight-binding
 * limit, forced split-K in matmulTAdd and 64-position attention chunks, which exercises the
 * row-chunked binding path and the chunk-combining attention.
 * Tolerance: |got - want| <= 1e-4 + 1e-4 |want| (rope: 1e-4 absolute). Some small vectors use a
 * per-buffer "f32" override on the f16 backend, as the engine does for norms, biases, invFreq.
 * Skipped only when there is no WebGPU adapter at all (llvmpipe counts).
 */

import assert from "node:assert/strict";
import type { IndexList, MatView, WeightBuffer, WeightDType } from "../lib/backends/backend.ts";
import { requestWebGpuAdapter, WebGpuBackend } from "../lib/backends/webgpu.ts";
import { rng } from "../lib/util/seeded_rng.ts";

const adapter = await requestWebGpuAdapter();
const ignore = adapter === null;
const opts = { ignore, sanitizeResources: false, sanitizeOps: false };

// ---------------------------------------------------------------------------------------------
// helpers

function randArr(r: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** Sorted random subset of [0, n) of size k. */
function randRows(r: () => number, n: number, k: number): Int32Array {
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return Int32Array.from(all.slice(0, k).sort((a, b) => a - b));
}

function close(what: string, got: Float32Array, want: ArrayLike<number>, atol = 1e-4, rtol = 1e-4) {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1;
  let worstErr = 0;
  let bad = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const ok = err <= atol + rtol * Math.abs(want[i]);
    if (!ok || Number.isNaN(got[i])) {
      bad++;
      if (!(err <= worstErr)) {
        worstErr = err;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    assert.fail(
      `${what}: ${bad}/${got.length} values off; worst at index ${worst}: got ${got[worst]}, ` +
        `want ${want[worst]} (|err| ${worstErr}, atol ${atol}, rtol ${rtol})`,
    );
  }
}

const f16round = (Math as { f16round?: (x: number) => number }).f16round;

/** The weights as the backend stores them (f16-rounded when it uses f16). */
function stored(b: WebGpuBackend, data: Float32Array, dtype?: WeightDType): Float32Array {
  if ((dtype ?? b.weightDType) === "f32") return data;
  if (f16round) return data.map((v) => f16round(v));
  const F16 =
    (globalThis as unknown as { Float16Array: new (a: Float32Array) => ArrayLike<number> })
      .Float16Array;
  return Float32Array.from(new F16(data));
}

interface Cfg {
  label: string;
  make: () => Promise<WebGpuBackend>;
}

const CFGS: Cfg[] = [
  { label: "f32", make: () => WebGpuBackend.create({ adapter: adapter! }) },
  {
    label: "f16",
    make: () => WebGpuBackend.create({ adapter: adapter!, weightDType: "f16", matmulLanes: 64 }),
  },
  {
    label: "f32-chunked",
    make: () =>
      WebGpuBackend.create({
        adapter: adapter!,
        maxBindingBytes: 2048,
        tSplitRows: 5,
        attnChunk: 64,
      }),
  },
];

const backends = new Map<string, WebGpuBackend>();
async function each(fn: (b: WebGpuBackend, label: string) => Promise<void>) {
  for (const c of CFGS) {
    let b = backends.get(c.label);
    if (!b) {
      b = await c.make();
      backends.set(c.label, b);
    }
    await fn(b, c.label);
  }
}

/** A weight buffer holding `rows` rows of `cols` at `offset` with `stride`; returns view + host. */
function makeView(
  b: WebGpuBackend,
  r: () => number,
  rows: number,
  cols: number,
  offset: number,
  stride: number,
  dtype?: WeightDType,
): { view: MatView; buf: WeightBuffer; host: Float32Array; at: (i: number, k: number) => number } {
  const data = randArr(r, offset + rows * stride + 3);
  const buf = b.weights(data, dtype);
  const host = stored(b, data, dtype);
  return {
    view: { buf, offset, stride, rows, cols },
    buf,
    host,
    at: (i, k) => host[offset + i * stride + k],
  };
}

function tensorOf(b: WebGpuBackend, rows: number, cols: number, data: Float32Array) {
  const t = b.tensor(rows, cols);
  b.write(t, data);
  return t;
}

// ---------------------------------------------------------------------------------------------
// ops

Deno.test({
  name: "webgpu matmul: gathered rows, strided views, bias, T = 1 and T > 1",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(1);
      const cases = [
        { T: 1, K: 64, N: 37, off: 8, stride: 72, keep: 20, bias: true }, // aligned (vec4)
        { T: 5, K: 64, N: 37, off: 8, stride: 72, keep: 37, bias: false },
        { T: 1, K: 30, N: 23, off: 5, stride: 33, keep: 9, bias: true }, // unaligned
        { T: 6, K: 30, N: 23, off: 5, stride: 33, keep: 0, bias: true }, // all rows (null)
      ];
      for (const c of cases) {
        const w = makeView(b, r, c.N, c.K, c.off, c.stride);
        const rowsHost = c.keep ? randRows(r, c.N, c.keep) : null;
        const rows: IndexList | null = rowsHost ? b.indices(rowsHost) : null;
        const R = rowsHost ? rowsHost.length : c.N;
        // bias precision alternates: the backend's default, then an f32 override
        const bv = c.bias ? makeView(b, r, 1, c.N, 3, c.N, c.T > 1 ? "f32" : undefined) : null;
        const x = randArr(r, c.T * c.K);
        const xt = tensorOf(b, c.T, c.K, x);
        const out = b.tensor(c.T, R);
        b.matmul(xt, w.view, rows, bv?.view ?? null, out);
        const got = await b.read(out);
        const want = new Float64Array(c.T * R);
        for (let t = 0; t < c.T; t++) {
          for (let i = 0; i < R; i++) {
            const row = rowsHost ? rowsHost[i] : i;
            let s = bv ? bv.at(0, row) : 0;
            for (let k = 0; k < c.K; k++) s += x[t * c.K + k] * w.at(row, k);
            want[t * R + i] = s;
          }
        }
        close(`[${label}] matmul ${JSON.stringify(c)}`, got, want);
        b.free(xt);
        b.free(out);
        b.release(w.buf);
        if (rows) b.release(rows);
        if (bv) b.release(bv.buf);
      }
    }),
});

Deno.test({
  name: "webgpu matmulTAdd: gathered rows, accumulate, split-K, T = 1 and T > 1",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(2);
      const cases = [
        { T: 1, M: 40, N: 50, off: 4, stride: 44, keep: 31 }, // aligned
        { T: 7, M: 40, N: 50, off: 4, stride: 44, keep: 50 },
        { T: 3, M: 37, N: 29, off: 1, stride: 39, keep: 0 }, // unaligned, all rows
        { T: 1, M: 300, N: 70, off: 0, stride: 300, keep: 66 }, // > 256 columns
      ];
      for (const c of cases) {
        const w = makeView(b, r, c.N, c.M, c.off, c.stride);
        const rowsHost = c.keep ? randRows(r, c.N, c.keep) : null;
        const rows = rowsHost ? b.indices(rowsHost) : null;
        const R = rowsHost ? rowsHost.length : c.N;
        const a = randArr(r, c.T * R);
        const o0 = randArr(r, c.T * c.M);
        const at = tensorOf(b, c.T, R, a);
        const out = tensorOf(b, c.T, c.M, o0);
        b.matmulTAdd(at, w.view, rows, out);
        const got = await b.read(out);
        const want = Float64Array.from(o0);
        for (let t = 0; t < c.T; t++) {
          for (let i = 0; i < R; i++) {
            const row = rowsHost ? rowsHost[i] : i;
            for (let m = 0; m < c.M; m++) want[t * c.M + m] += a[t * R + i] * w.at(row, m);
          }
        }
        close(`[${label}] matmulTAdd ${JSON.stringify(c)}`, got, want);
        b.free(at);
        b.free(out);
        b.release(w.buf);
        if (rows) b.release(rows);
      }
    }),
});

Deno.test({
  name: "webgpu ffn: fused gate/up + transposed down on a bundled layout, act capture",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(10);
      const cases = [
        { T: 1, K: 64, N: 40, keep: 23, off: 8 }, // aligned (vec4)
        { T: 6, K: 30, N: 21, keep: 0, off: 3 }, // unaligned, all rows
      ];
      for (const c of cases) {
        // bundle [N, 3K] after `off` elements: row j = gate_j | up_j | downT_j
        const data = randArr(r, c.off + c.N * 3 * c.K, 0.5);
        const buf = b.weights(data);
        const host = stored(b, data);
        const v = (o: number): MatView => ({
          buf,
          offset: c.off + o,
          stride: 3 * c.K,
          rows: c.N,
          cols: c.K,
        });
        const at = (j: number, part: number, k: number) =>
          host[c.off + j * 3 * c.K + part * c.K + k];
        const rowsHost = c.keep ? randRows(r, c.N, c.keep) : null;
        const rows = rowsHost ? b.indices(rowsHost) : null;
        const R = rowsHost ? rowsHost.length : c.N;
        const xh = randArr(r, c.T * c.K);
        const o0 = randArr(r, c.T * c.K);
        const x = tensorOf(b, c.T, c.K, xh);
        const out = tensorOf(b, c.T, c.K, o0);
        const act = b.tensor(c.T, R);
        b.ffn(x, v(0), v(c.K), v(2 * c.K), rows, out, act);
        const wantAct = new Float64Array(c.T * R);
        const wantOut = Float64Array.from(o0);
        for (let t = 0; t < c.T; t++) {
          for (let i = 0; i < R; i++) {
            const j = rowsHost ? rowsHost[i] : i;
            let g = 0, u = 0;
            for (let k = 0; k < c.K; k++) {
              g += xh[t * c.K + k] * at(j, 0, k);
              u += xh[t * c.K + k] * at(j, 1, k);
            }
            const a = (g / (1 + Math.exp(-g))) * u;
            wantAct[t * R + i] = a;
            for (let m = 0; m < c.K; m++) wantOut[t * c.K + m] += a * at(j, 2, m);
          }
        }
        close(`[${label}] ffn act ${JSON.stringify(c)}`, await b.read(act), wantAct);
        close(`[${label}] ffn out ${JSON.stringify(c)}`, await b.read(out), wantOut);
        for (const t of [x, out, act]) b.free(t);
        b.release(buf);
        if (rows) b.release(rows);
      }
    }),
});

Deno.test({
  name: "webgpu attention: GQA map, several position tiles, T = 1 and T > 1",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(3);
      const cases = [
        { T: 1, d: 16, nKv: 2, S: 3, maxT: 8, pos0: 0 },
        { T: 3, d: 72, nKv: 3, S: 5, maxT: 150, pos0: 70 },
        { T: 9, d: 8, nKv: 1, S: 2, maxT: 140, pos0: 120 },
      ];
      for (const c of cases) {
        const kvOfHost = Int32Array.from({ length: c.S }, () => Math.floor(r() * c.nKv));
        const kvOf = b.indices(kvOfHost);
        const kh = randArr(r, c.nKv * c.maxT * c.d);
        const vh = randArr(r, c.nKv * c.maxT * c.d);
        const qh = randArr(r, c.T * c.S * c.d, 2);
        const kc = tensorOf(b, c.nKv * c.maxT, c.d, kh);
        const vc = tensorOf(b, c.nKv * c.maxT, c.d, vh);
        const q = tensorOf(b, c.T, c.S * c.d, qh);
        const out = b.tensor(c.T, c.S * c.d);
        const scale = 1 / Math.sqrt(c.d);
        b.attention(q, kc, vc, kvOf, c.maxT, c.pos0, scale, out);
        const got = await b.read(out);
        const want = new Float64Array(c.T * c.S * c.d);
        for (let t = 0; t < c.T; t++) {
          for (let s = 0; s < c.S; s++) {
            const n = c.pos0 + t + 1;
            const base = kvOfHost[s] * c.maxT;
            const sc = new Float64Array(n);
            for (let p = 0; p < n; p++) {
              let dot = 0;
              for (let i = 0; i < c.d; i++) {
                dot += qh[(t * c.S + s) * c.d + i] * kh[(base + p) * c.d + i];
              }
              sc[p] = dot * scale;
            }
            const mx = Math.max(...sc);
            let sum = 0;
            for (let p = 0; p < n; p++) sum += sc[p] = Math.exp(sc[p] - mx);
            for (let p = 0; p < n; p++) {
              for (let i = 0; i < c.d; i++) {
                want[(t * c.S + s) * c.d + i] += (sc[p] / sum) * vh[(base + p) * c.d + i];
              }
            }
          }
        }
        close(`[${label}] attention ${JSON.stringify(c)}`, got, want);
        for (const x of [kc, vc, q, out]) b.free(x);
        b.release(kvOf);
      }
    }),
});

Deno.test({
  name: "webgpu rmsNorm: hidden norm, grouped (per-head) norm, in place",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(4);
      for (const c of [{ T: 1, G: 1, gs: 100 }, { T: 3, G: 4, gs: 12 }, { T: 2, G: 1, gs: 256 }]) {
        const w = makeView(b, r, 1, c.gs, 7, c.gs, c.G > 1 ? "f32" : undefined);
        const xh = randArr(r, c.T * c.G * c.gs, 3);
        const eps = 1e-6;
        const want = new Float64Array(xh.length);
        for (let g = 0; g < c.T * c.G; g++) {
          let ss = 0;
          for (let i = 0; i < c.gs; i++) ss += xh[g * c.gs + i] ** 2;
          const inv = 1 / Math.sqrt(ss / c.gs + eps);
          for (let i = 0; i < c.gs; i++) want[g * c.gs + i] = xh[g * c.gs + i] * inv * w.at(0, i);
        }
        const x = tensorOf(b, c.T, c.G * c.gs, xh);
        const out = b.tensor(c.T, c.G * c.gs);
        b.rmsNorm(x, w.view, eps, out);
        close(`[${label}] rmsNorm ${JSON.stringify(c)}`, await b.read(out), want);
        b.rmsNorm(x, w.view, eps, x); // in place
        close(`[${label}] rmsNorm in place ${JSON.stringify(c)}`, await b.read(x), want);
        b.free(x);
        b.free(out);
        b.release(w.buf);
      }
    }),
});

Deno.test({
  name: "webgpu rope: rotate_half on every head, large positions",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(5);
      for (
        const c of [
          { T: 1, nh: 3, d: 16, pos0: 0 },
          { T: 4, nh: 2, d: 32, pos0: 1000 },
          { T: 2, nh: 1, d: 64, pos0: 40000 },
        ]
      ) {
        const half = c.d / 2;
        const fData = new Float32Array(half + 2);
        for (let i = 0; i < half; i++) fData[i + 2] = Math.pow(10000, (-2 * i) / c.d);
        const fb = b.weights(fData, "f32"); // the engine keeps invFreq in f32
        const fh = fData;
        const xh = randArr(r, c.T * c.nh * c.d);
        const x = tensorOf(b, c.T, c.nh * c.d, xh);
        b.rope(x, c.d, c.pos0, { buf: fb, offset: 2, stride: half, rows: 1, cols: half });
        const want = new Float64Array(xh.length);
        for (let t = 0; t < c.T; t++) {
          for (let h = 0; h < c.nh; h++) {
            for (let i = 0; i < half; i++) {
              const ang = (c.pos0 + t) * fh[i + 2]; // exact product, as the reference backend
              const o = (t * c.nh + h) * c.d;
              const a = xh[o + i];
              const z = xh[o + i + half];
              want[o + i] = a * Math.cos(ang) - z * Math.sin(ang);
              want[o + i + half] = z * Math.cos(ang) + a * Math.sin(ang);
            }
          }
        }
        close(`[${label}] rope ${JSON.stringify(c)}`, await b.read(x), want, 1e-4, 0);
        b.free(x);
        b.release(fb);
      }
    }),
});

Deno.test({
  name: "webgpu rope: in-kernel angles when invFreq has no host copy (big buffer)",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(9);
      const T = 3, nh = 2, d = 16, pos0 = 500, half = d / 2, off = 70000; // > host-copy limit
      const fData = new Float32Array(off + half);
      for (let i = 0; i < half; i++) fData[off + i] = Math.pow(10000, (-2 * i) / d);
      const fb = b.weights(fData, "f32");
      const xh = randArr(r, T * nh * d);
      const x = tensorOf(b, T, nh * d, xh);
      b.rope(x, d, pos0, { buf: fb, offset: off, stride: half, rows: 1, cols: half });
      const want = new Float64Array(xh.length);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < nh; h++) {
          for (let i = 0; i < half; i++) {
            const ang = (pos0 + t) * fData[off + i];
            const o = (t * nh + h) * d;
            want[o + i] = xh[o + i] * Math.cos(ang) - xh[o + i + half] * Math.sin(ang);
            want[o + i + half] = xh[o + i + half] * Math.cos(ang) + xh[o + i] * Math.sin(ang);
          }
        }
      }
      // f32 angle (~3e-5 rad at this position) and WGSL sin/cos (2^-11 bound): 2e-3
      close(`[${label}] rope in-kernel angles`, await b.read(x), want, 2e-3, 0);
      b.free(x);
      b.release(fb);
    }),
});

Deno.test({
  name: "webgpu elementwise: siluMul (also aliased), add, addRow",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(6);
      for (const [T, n] of [[1, 37], [5, 300]]) {
        const g = randArr(r, T * n, 4);
        const u = randArr(r, T * n);
        const gt = tensorOf(b, T, n, g);
        const ut = tensorOf(b, T, n, u);
        const out = b.tensor(T, n);
        const want = Array.from(g, (v, i) => (v / (1 + Math.exp(-v))) * u[i]);
        b.siluMul(gt, ut, out);
        close(`[${label}] siluMul ${T}x${n}`, await b.read(out), want);
        b.siluMul(gt, ut, gt);
        close(`[${label}] siluMul aliased ${T}x${n}`, await b.read(gt), want);
        b.add(out, ut);
        close(`[${label}] add ${T}x${n}`, await b.read(out), want.map((v, i) => v + u[i]));
        const bv = makeView(b, r, 1, n, 9, n);
        b.addRow(ut, bv.view);
        close(
          `[${label}] addRow ${T}x${n}`,
          await b.read(ut),
          Array.from(u, (v, i) => v + bv.at(0, i % n)),
        );
        for (const t of [gt, ut, out]) b.free(t);
        b.release(bv.buf);
      }
    }),
});

Deno.test({
  name: "webgpu embed: random ids from a strided table view",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(7);
      for (
        const c of [{ T: 1, V: 50, H: 24, off: 6, stride: 30 }, {
          T: 6,
          V: 90,
          H: 40,
          off: 0,
          stride: 40,
        }]
      ) {
        const w = makeView(b, r, c.V, c.H, c.off, c.stride);
        const ids = Int32Array.from({ length: c.T }, () => Math.floor(r() * c.V));
        const out = b.tensor(c.T, c.H);
        b.embed(w.view, ids, out);
        const want = new Float32Array(c.T * c.H);
        for (let t = 0; t < c.T; t++) {
          for (let k = 0; k < c.H; k++) want[t * c.H + k] = w.at(ids[t], k);
        }
        close(`[${label}] embed ${JSON.stringify(c)}`, await b.read(out), want, 0, 0);
        assert.throws(() => b.embed(w.view, Int32Array.of(c.V), b.tensor(1, c.H)), RangeError);
        b.free(out);
        b.release(w.buf);
      }
    }),
});

Deno.test({
  name: "webgpu kvWrite and copyRows",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const r = rng(8);
      const nKv = 4, maxT = 10, d = 6, T = 3, pos0 = 5;
      const headsHost = Int32Array.of(0, 2, 3);
      const heads = b.indices(headsHost);
      const c0 = randArr(r, nKv * maxT * d);
      const kvh = randArr(r, T * headsHost.length * d);
      const cache = tensorOf(b, nKv * maxT, d, c0);
      const kv = tensorOf(b, T, headsHost.length * d, kvh);
      b.kvWrite(cache, kv, heads, maxT, pos0);
      const want = c0.slice();
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < headsHost.length; j++) {
          for (let i = 0; i < d; i++) {
            want[((headsHost[j] * maxT) + pos0 + t) * d + i] =
              kvh[(t * headsHost.length + j) * d + i];
          }
        }
      }
      close(`[${label}] kvWrite`, await b.read(cache), want, 0, 0);
      assert.throws(() => b.kvWrite(cache, kv, heads, maxT, 8), RangeError);

      const dst = b.tensor(5, d);
      b.copyRows(cache, 4, 3, dst, 1);
      const wantC = new Float32Array(5 * d);
      wantC.set(want.subarray(4 * d, 7 * d), d);
      close(`[${label}] copyRows`, await b.read(dst), wantC, 0, 0);
      b.copyRows(dst, 1, 2, dst, 3); // same tensor, no overlap
      wantC.copyWithin(3 * d, d, 3 * d);
      close(`[${label}] copyRows same tensor`, await b.read(dst), wantC, 0, 0);
      assert.throws(() => b.copyRows(dst, 0, 3, dst, 1), RangeError);
      for (const t of [cache, kv, dst]) b.free(t);
      b.release(heads);
    }),
});

Deno.test({
  name: "webgpu recording: writes, pooled zero tensors and ops keep stream order",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const A = Float32Array.of(1, 2, 3, 4, 5, 6);
      const B = Float32Array.of(10, 20, 30, 40, 50, 60);
      const x = tensorOf(b, 2, 3, A);
      const y = tensorOf(b, 2, 3, A);
      b.add(y, x); // 2A
      b.write(x, B); // must not affect the add above
      b.add(y, x); // 2A + B
      b.free(x);
      const z = b.tensor(2, 3); // likely x's pooled buffer: must read as zeros
      b.add(y, z);
      close(`[${label}] ordered`, await b.read(y), A.map((v, i) => 2 * v + B[i]), 0, 0);
      close(`[${label}] pooled tensor is zero`, await b.read(z), new Float32Array(6), 0, 0);
      assert.throws(() => b.add(x, y), /after free/);
      assert.throws(() => b.add(y, b.tensor(3, 2)), RangeError);
      b.free(y);
      b.free(z);
    }),
});

Deno.test({
  name: "webgpu recording: > 2048 dispatches (uniform ring flush) and arena growth keep order",
  ...opts,
  fn: () =>
    each(async (b, label) => {
      const n = 7;
      const x = b.tensor(1, n);
      const y = b.tensor(1, n);
      let want = 0;
      let v = 0;
      for (let i = 0; i < 2600; i++) {
        if (i % 500 === 0) b.write(x, new Float32Array(n).fill(v = i / 500 + 1));
        b.add(y, x);
        want += v;
      }
      close(`[${label}] many dispatches`, await b.read(y), new Float32Array(n).fill(want), 0, 0);
      const big = b.tensor(600, 500); // 1.2 MB write: larger than the initial 1 MiB arena
      b.add(y, x); // something pending so the write goes through the arena
      const data = Float32Array.from({ length: 600 * 500 }, (_, i) => i % 1000);
      b.write(big, data);
      close(`[${label}] big write`, await b.read(big), data, 0, 0);
      for (const t of [x, y, big]) b.free(t);
    }),
});

// Not a test: the backends this file made are destroyed once its tests have run.
Deno.test.afterAll(() => {
  for (const b of backends.values()) b.destroy();
  backends.clear();
});

Deno.test({
  name: "webgpu engine: one pass, one submission, one readback per decode step; logits = reference",
  ...opts,
  fn: async () => {
    const { loadModel } = await import("../lib/model/model.ts");
    const { Sequence } = await import("../lib/model/sequence.ts");
    const { ReferenceBackend } = await import("../lib/backends/reference.ts");
    const dir = new URL("./fixtures/llama_gqa_llama3rope", import.meta.url).pathname;
    const gpu = await WebGpuBackend.create({ adapter: adapter! });
    const ids = Int32Array.of(1, 5, 9, 2, 7);
    const run = async (m: Awaited<ReturnType<typeof loadModel>>, onStep?: () => void) => {
      const seq = new Sequence(m, { maxTokens: 16 });
      const out = [await seq.prefill(ids)];
      for (const id of [3, 4]) {
        const before = { ...gpu.stats };
        out.push(await seq.decode(id));
        if (onStep) {
          assert.equal(gpu.stats.submissions - before.submissions, 1, "submissions per step");
          assert.equal(gpu.stats.readbacks - before.readbacks, 1, "readbacks per step");
          assert.equal(gpu.stats.passes - before.passes, 1, "compute passes per step");
        }
      }
      seq.free();
      return out;
    };
    const got = await run(await loadModel(dir, { backend: gpu }), () => {});
    const want = await run(await loadModel(dir, { backend: new ReferenceBackend() }));
    got.forEach((g, i) => close(`engine logits step ${i}`, g, want[i], 1e-4, 1e-4));
    gpu.destroy();
  },
});
