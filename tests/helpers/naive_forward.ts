/**
 * An independent, deliberately naive dense forward pass over HF-named weights, with per-layer
 * head lists so that it can run a physically pruned model (rows and columns sliced out). Used
 * only by tests as a second opinion on the engine; it shares no code with it.
 */

import type { ModelConfig } from "../../lib/model/config.ts";

/** One layer of a (possibly physically pruned) model, HF orientation. */
export interface NaiveLayer {
  attnNorm: Float64Array; // [H]
  q: Float64Array[]; // per kept head: [d_h * H] rows of W_q
  qb: Float64Array[] | null; // per kept head: [d_h]
  kvOfHead: number[]; // per kept head: index into k / v
  k: Float64Array[]; // per kept kv head: [d_h * H]
  kb: Float64Array[] | null;
  v: Float64Array[];
  vb: Float64Array[] | null;
  qNorm: Float64Array | null; // [d_h]
  kNorm: Float64Array | null;
  oCols: Float64Array[]; // per kept head: [H * d_h] columns of W_o as [H][d_h]
  oBias: Float64Array | null; // [H]
  mlpNorm: Float64Array; // [H]
  gate: Float64Array[]; // per kept neuron: [H]
  up: Float64Array[]; // per kept neuron: [H]
  downCol: Float64Array[]; // per kept neuron: [H] column of W_down
  downBias: Float64Array | null; // [H]
}

/** A whole naive model. */
export interface NaiveModel {
  cfg: ModelConfig;
  embed: Float64Array; // [V, H]
  layers: NaiveLayer[];
  norm: Float64Array; // [H]
  lmHead: Float64Array; // [V, H]
  invFreq: Float64Array; // [d_h / 2]
}

function rms(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * w[i]);
}

function matvec(rows: Float64Array, H: number, x: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < H; c++) s += rows[r * H + c] * x[c];
    out[r] = s;
  }
  return out;
}

function rope(v: Float64Array, pos: number, inv: Float64Array): Float64Array {
  const half = v.length / 2;
  const out = new Float64Array(v.length);
  for (let i = 0; i < half; i++) {
    const c = Math.cos(pos * inv[i]);
    const s = Math.sin(pos * inv[i]);
    out[i] = v[i] * c - v[i + half] * s;
    out[i + half] = v[i + half] * c + v[i] * s;
  }
  return out;
}

/** Logits `[T][V]` of every position of `ids` (full causal attention, no cache). */
export function naiveForward(m: NaiveModel, ids: number[]): Float64Array[] {
  const { hiddenSize: H, headDim: d, rmsNormEps: eps } = m.cfg;
  let xs = ids.map((id) => m.embed.slice(id * H, (id + 1) * H));
  for (const L of m.layers) {
    const hs = xs.map((x) => rms(x, L.attnNorm, eps));
    const add = (a: Float64Array | null, b: Float64Array) => a ? b.map((v, i) => v + a[i]) : b;
    const qs = hs.map((h, t) =>
      L.q.map((w, j) => {
        let q = add(L.qb ? L.qb[j] : null, matvec(w, H, h, d));
        if (L.qNorm) q = rms(q, L.qNorm, eps);
        return rope(q, t, m.invFreq);
      })
    );
    const ks = hs.map((h, t) =>
      L.k.map((w, j) => {
        let k = add(L.kb ? L.kb[j] : null, matvec(w, H, h, d));
        if (L.kNorm) k = rms(k, L.kNorm, eps);
        return rope(k, t, m.invFreq);
      })
    );
    const vs = hs.map((h) => L.v.map((w, j) => add(L.vb ? L.vb[j] : null, matvec(w, H, h, d))));
    xs = xs.map((x, t) => {
      const y = x.slice();
      L.q.forEach((_, j) => {
        const g = L.kvOfHead[j];
        const sc = [];
        for (let p = 0; p <= t; p++) {
          let s = 0;
          for (let i = 0; i < d; i++) s += qs[t][j][i] * ks[p][g][i];
          sc.push(s / Math.sqrt(d));
        }
        const mx = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        const o = new Float64Array(d);
        for (let p = 0; p <= t; p++) for (let i = 0; i < d; i++) o[i] += e[p] / z * vs[p][g][i];
        for (let r = 0; r < H; r++) {
          for (let i = 0; i < d; i++) y[r] += L.oCols[j][r * d + i] * o[i];
        }
      });
      if (L.oBias) { for (let r = 0; r < H; r++) y[r] += L.oBias[r]; }
      const h2 = rms(y, L.mlpNorm, eps);
      L.gate.forEach((gw, j) => {
        let g = 0, u = 0;
        for (let c = 0; c < H; c++) {
          g += gw[c] * h2[c];
          u += L.up[j][c] * h2[c];
        }
        const a = g / (1 + Math.exp(-g)) * u;
        for (let r = 0; r < H; r++) y[r] += a * L.downCol[j][r];
      });
      if (L.downBias) { for (let r = 0; r < H; r++) y[r] += L.downBias[r]; }
      return y;
    });
  }
  return xs.map((x) => {
    const h = rms(x, m.norm, eps);
    return matvec(m.lmHead, H, h, m.cfg.vocabSize);
  });
}
