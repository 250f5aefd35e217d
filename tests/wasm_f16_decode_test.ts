/**
 * The portable f16 decode kernels (T = 1, the bit-trick build: `matmul_f16`, `matmul_t_add_f16`
 * and `ffn_f16` of kernels/wasm/matmul.c without -DSEAP_FP16) on the shapes their four-row
 * passes leave edges in: R not a multiple of 4 (rows i + j R/4 in groups, the rest one by one),
 * K and M not multiples of 8 (scalar tails), and the exact fallbacks (x not pre-scaled when some
 * |x| >= 2^15; a down/o row added without the pre-scaled accumulator when its |coefficient| >=
 * 2^15, alone or inside a group of four). Checked against float64 sums over the f16-rounded
 * weights, printing the worst error and its index; and a row's dot must have the same bits
 * whether it was read in a group of four or alone (the thread pool cuts matmul by rows,
 * lib/backends/wasm_threads_cuts.ts). Runs on the wasm32 and memory64 builds.
 */

import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";
import type { MatView, Tensor } from "../lib/backends/backend.ts";
import { rng, subset, uniform } from "./helpers/seeded.ts";
import { ffnBundle } from "./helpers/ffn_bundle.ts";
import { ATOL, RTOL } from "./helpers/assert_close.ts";

/** Compare with the conformance tolerance, printing the worst error and its index either way. */
function check(what: string, got: Float32Array, want: ArrayLike<number>): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let ss = 0;
  for (let i = 0; i < want.length; i++) ss += want[i] * want[i];
  const rms = Math.sqrt(ss / Math.max(1, want.length));
  let worst = 0, worstErr = 0, worstRatio = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const ratio = err / (ATOL + RTOL * Math.max(Math.abs(want[i]), rms));
    if (!(ratio <= worstRatio)) [worst, worstErr, worstRatio] = [i, err, ratio];
  }
  console.log(
    `  ${what}: worst |err| ${worstErr.toExponential(2)} at ${worst} (${
      worstRatio.toFixed(2)
    }x tolerance, rms ${rms.toExponential(2)})`,
  );
  assert.ok(
    worstRatio <= 1,
    `${what}: worst |err| ${worstErr} at ${worst} (got ${got[worst]}, want ${want[worst]})`,
  );
}

function put(be: WasmBackend, rows: number, cols: number, data: Float32Array): Tensor {
  const t = be.tensor(rows, cols);
  be.write(t, data);
  return t;
}

const f16 = (a: Float32Array) => a.map((v) => Math.f16round(v));

for (const addressBits of [32, 64] as const) {
  const name = `wasm${addressBits} portable f16 decode`;

  Deno.test(`${name}: matmul, R % 4 != 0, K tails, exact path, same bits in groups and alone`, async () => {
    const be = await WasmBackend.create({ weightDType: "f16", fp16Simd: false, addressBits });
    assert.equal(be.f16Path, "bit-trick");
    const r = rng(1101 + addressBits);
    for (const [K, N] of [[67, 39], [64, 50], [5, 7], [16, 3]]) {
      const w = uniform(N * K, r);
      const buf = be.weights(w);
      const wv = f16(w);
      const view: MatView = { buf, offset: 0, stride: K, rows: N, cols: K };
      for (const keep of [N, N - 2, 6, 1]) {
        const rows = keep === N ? null : subset(N, keep, r);
        const R = rows ? rows.length : N;
        const il = rows ? be.indices(rows) : null;
        for (const big of [false, true]) {
          const x = uniform(K, r, 2);
          if (big) x[K >> 1] = -1e5; // x * 2^112 would overflow: the exact dot
          const want = new Float64Array(R);
          for (let i = 0; i < R; i++) {
            const j = rows ? rows[i] : i;
            for (let k = 0; k < K; k++) want[i] += x[k] * wv[j * K + k];
          }
          const xt = put(be, 1, K, x), out = be.tensor(1, R);
          be.matmul(xt, view, il, null, out);
          const got = await be.read(out);
          check(`matmul K=${K} N=${N} R=${R}${big ? " |x|=1e5" : ""}`, got, want);
          // Each row alone (R = 1: the one-row kernel) gives the bits of its grouped value.
          const one = be.tensor(1, 1);
          for (let i = 0; i < R; i++) {
            const j = rows ? rows[i] : i;
            const li = be.indices(Int32Array.of(j));
            be.matmul(xt, view, li, null, one);
            const alone = (await be.read(one))[0];
            assert.ok(
              Object.is(alone, got[i]),
              `matmul K=${K} R=${R} row ${i}: ${got[i]} in a group, ${alone} alone`,
            );
            be.release(li);
          }
          for (const t of [xt, out, one]) be.free(t);
        }
        if (il) be.release(il);
      }
      be.release(buf);
    }
  });

  Deno.test(`${name}: matmulTAdd, R % 4 != 0, M tails, |a| >= 2^15 in a group and in the tail`, async () => {
    const be = await WasmBackend.create({ weightDType: "f16", fp16Simd: false, addressBits });
    const r = rng(2202 + addressBits);
    for (const [N, M] of [[31, 45], [23, 64], [6, 13], [9, 7]]) {
      const w = uniform(N * M, r);
      const buf = be.weights(w);
      const wv = f16(w);
      const view: MatView = { buf, offset: 0, stride: M, rows: N, cols: M };
      for (const keep of [N, N - 1, 3]) {
        const rows = keep === N ? null : subset(N, keep, r);
        const R = rows ? rows.length : N;
        const il = rows ? be.indices(rows) : null;
        // Coefficients: all small; one >= 2^15 in the first group (its last row); one in the last (tail) row;
        // all large.
        for (const mode of ["small", "group", "tail", "all"] as const) {
          const a = uniform(R, r, 2);
          if (mode === "group" && R >= 4) a[3 * (R >> 2)] = 7e4; // row 0 + 3 R/4 of group 0
          if (mode === "tail") a[R - 1] = -2e5;
          if (mode === "all") a.forEach((_, i) => a[i] = (i % 2 ? -1 : 1) * (4e4 + 1e3 * i));
          const out0 = uniform(M, r);
          const want = Float64Array.from(out0);
          for (let i = 0; i < R; i++) {
            const j = rows ? rows[i] : i;
            for (let m = 0; m < M; m++) want[m] += a[i] * wv[j * M + m];
          }
          const at = put(be, 1, R, a), out = put(be, 1, M, out0);
          be.matmulTAdd(at, view, il, out);
          check(`matmulTAdd N=${N} M=${M} R=${R} a ${mode}`, await be.read(out), want);
          be.free(at);
          be.free(out);
        }
        if (il) be.release(il);
      }
      be.release(buf);
    }
  });

  Deno.test(`${name}: ffn, R % 4 != 0, K tails, activations >= 2^15, |x| >= 2^15`, async () => {
    const be = await WasmBackend.create({ weightDType: "f16", fp16Simd: false, addressBits });
    const r = rng(3303 + addressBits);
    for (const [K, N] of [[40, 30], [21, 11], [64, 7]]) {
      const M = K;
      // [N, 3K] row j = gate_j | up_j | down^T_j; every third neuron's gate and up are scaled
      // so that its activation silu(g) u passes 2^15 (the down row then skips the pre-scaled
      // accumulator), in groups of four and in the tail alike.
      const bundle = uniform(N * 3 * K, r, 0.5);
      for (let j = 0; j < N; j += 3) {
        for (let k = 0; k < 2 * K; k++) bundle[j * 3 * K + k] *= 400;
      }
      const { bundle: buf, gate: gv, up: uv, down: dv } = ffnBundle(be, bundle, N, K, M);
      const vals = f16(bundle);
      for (const keep of [N, N - 1, 5, 2]) {
        const rows = keep === N ? null : subset(N, keep, r);
        const R = rows ? rows.length : N;
        const il = rows ? be.indices(rows) : null;
        for (const big of [false, true]) {
          const x = uniform(K, r, 2);
          if (big) x[1] = 5e4;
          const out0 = uniform(M, r);
          const want = Float64Array.from(out0), wantAct = new Float64Array(R);
          let large = 0;
          for (let i = 0; i < R; i++) {
            const j = rows ? rows[i] : i;
            let g = 0, u = 0;
            for (let k = 0; k < K; k++) {
              g += x[k] * vals[j * 3 * K + k];
              u += x[k] * vals[j * 3 * K + K + k];
            }
            const a = g / (1 + Math.exp(-g)) * u;
            if (Math.abs(a) >= 2 ** 15) large++;
            wantAct[i] = a;
            for (let m = 0; m < M; m++) want[m] += a * vals[j * 3 * K + 2 * K + m];
          }
          const xt = put(be, 1, K, x), out = put(be, 1, M, out0), act = be.tensor(1, R);
          be.ffn!(xt, gv, uv, dv, il, out, act);
          const what = `ffn K=${K} N=${N} R=${R}${big ? " |x|=5e4" : ""} (${large} |a| >= 2^15)`;
          check(`${what} out`, await be.read(out), want);
          check(`${what} act`, await be.read(act), wantAct);
          for (const t of [xt, out, act]) be.free(t);
        }
        if (il) be.release(il);
      }
      be.release(buf);
    }
  });
}
