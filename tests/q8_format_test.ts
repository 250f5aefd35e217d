/**
 * The q8 weight format (lib/formats/q8.ts) against its definition, and `q8` as a weight format
 * choice of the server settings and the backend selector.
 */

import assert from "node:assert/strict";
import {
  dequantizeQ8,
  Q8_BLOCK_BYTES,
  q8Bytes,
  quantizeBlock,
  quantizeQ8,
  quantizeQ8RowsInto,
  roundHalfEven,
} from "../lib/formats/q8.ts";
import { parseWeightDType, selectBackend } from "../lib/backends/select_backend.ts";
import { readServerConfig, ServerConfigError } from "../lib/server/config.ts";
import { rng } from "./helpers/seeded.ts";

Deno.test("q8: round half to even, as WASM f32x4.nearest and WGSL round", () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, 0],
    [-1.5, -2],
    [
      -2.5,
      -2,
    ],
    [2.4999, 2],
    [-3.5000001, -4],
    [126.5, 126],
    [127.5, 128],
  ];
  for (const [v, want] of cases) assert.ok(roundHalfEven(v) === want, `round(${v})`);
});

Deno.test("q8: layout (f32 scale + 32 int8, little-endian), error <= scale / 2, padding", () => {
  const r = rng(5);
  const n = 32 * 5 + 7; // a partial last block
  const data = Float32Array.from({ length: n }, () => (r() - 0.5) * 4);
  data.fill(0, 32, 64); // an all-zero block: scale 0, values 0
  data[70] = -3; // the block's largest magnitude maps to -127 exactly
  for (let k = 64; k < 96; k++) if (k !== 70) data[k] = Math.max(-2.9, Math.min(2.9, data[k]));
  const bytes = quantizeQ8(data);
  assert.equal(bytes.length, q8Bytes(n));
  assert.equal(bytes.length, 6 * Q8_BLOCK_BYTES);
  const dv = new DataView(bytes.buffer);
  const q = new Int8Array(bytes.buffer);
  assert.equal(dv.getFloat32(Q8_BLOCK_BYTES, true), 0);
  assert.equal(dv.getFloat32(2 * Q8_BLOCK_BYTES, true), Math.fround(3 / 127));
  assert.equal(q[2 * Q8_BLOCK_BYTES + 4 + (70 - 64)], -127);
  const back = dequantizeQ8(bytes, n);
  let worst = 0, at = -1;
  for (let e = 0; e < n; e++) {
    const b = Math.floor(e / 32);
    const d = dv.getFloat32(b * Q8_BLOCK_BYTES, true);
    assert.ok(Math.abs(q[b * Q8_BLOCK_BYTES + 4 + (e % 32)]) <= 127);
    const err = Math.abs(back[e] - data[e]);
    // d / 2 from rounding, plus f32 rounding of x * (1 / d) and of d * q.
    const ratio = err / (d / 2 * (1 + 1e-5) + 1e-7 * Math.abs(data[e]));
    if (ratio > worst) [worst, at] = [ratio, e];
  }
  console.log(`  worst |err| / (d/2): ${worst.toFixed(4)} at ${at}`);
  assert.ok(worst <= 1, `error above half a step at ${at}`);
  for (let e = 32; e < 64; e++) assert.equal(back[e], 0);
  for (let e = n; e < 6 * 32; e++) assert.equal(q[Math.floor(e / 32) * 36 + 4 + (e % 32)], 0);
});

Deno.test("q8: rows quantized in place (strided, partial blocks) equal the reference quantizeBlock with roundHalfEven", () => {
  const r = rng(9);
  const rowLen = 32 * 3 + 5, rows = 7, strideBytes = q8Bytes(rowLen) + 2 * Q8_BLOCK_BYTES;
  const data = Float32Array.from({ length: rows * rowLen }, () => (r() - 0.5) * 0.1);
  // Row 1, block 0: largest magnitude 127 (scale 1, 1 / scale 1), so k + 0.5 are exact ties.
  const ties = [127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 3.4999998, -4.5000005];
  data.set(ties, rowLen);
  data.set([NaN, 1], 2 * rowLen); // row 2, block 0: a NaN scale as the reference gives it
  data.set([Infinity, 1], 3 * rowLen + 32); // row 3, block 1: infinite scale, q all 0
  data.fill(0, 4 * rowLen, 4 * rowLen + 64); // row 4, blocks 0-1: zero scale
  const at = 3;
  const got = new Uint8Array(at + (rows - 1) * strideBytes + q8Bytes(rowLen)).fill(0xaa);
  quantizeQ8RowsInto(data, rowLen, got, at, strideBytes);
  const want = new Uint8Array(got.length).fill(0xaa); // the reference, block by block
  const dv = new DataView(want.buffer), q = new Int8Array(want.buffer);
  for (let i = 0; i < rows; i++) {
    for (let b = 0; b * 32 < rowLen; b++) {
      const o = at + i * strideBytes + b * Q8_BLOCK_BYTES, n = Math.min(32, rowLen - b * 32);
      q.fill(0, o + 4, o + 36);
      dv.setFloat32(o, quantizeBlock(data, i * rowLen + b * 32, n, q, o + 4), true);
    }
  }
  const bad = got.findIndex((v, k) => v !== want[k]);
  console.log(`  first differing byte: ${bad} (of ${got.length})`);
  assert.equal(bad, -1, `byte ${bad}: ${got[bad]} vs reference ${want[bad]}`);
  const tq = new Int8Array(got.buffer, at + strideBytes + 4, ties.length);
  assert.deepEqual([...tq], [127, 0, 2, 2, 0, -2, -2, 126, -126, 3, -5]);
  assert.ok(Number.isNaN(new DataView(got.buffer).getFloat32(at + 2 * strideBytes, true)));
  // quantizeQ8Into is the one-row case.
  assert.deepEqual(quantizeQ8(data.subarray(0, rowLen)), got.slice(at, at + q8Bytes(rowLen)));
  assert.throws(() => quantizeQ8RowsInto(data, rowLen, got, at + 1, strideBytes), RangeError);
  assert.throws(() => quantizeQ8RowsInto(data, 5, got, 0, q8Bytes(5)), /not rows of 5/);
});

Deno.test("q8: SEAP_WEIGHTS / --weights accept q8 and reject other names clearly", async () => {
  const env = (k: string) => (k === "SEAP_WEIGHTS" ? "q8" : undefined);
  assert.equal(readServerConfig(env, []).weights, "q8");
  assert.equal(readServerConfig(() => undefined, ["--weights=f16"]).weights, "f16");
  assert.throws(
    () => readServerConfig(() => undefined, ["--weights=q4"]),
    (e: unknown) => e instanceof ServerConfigError && /expected f32, f16 or q8/.test(String(e)),
  );
  assert.equal(parseWeightDType("q8"), "q8");
  assert.throws(() => parseWeightDType("int8"), /expected f32, f16, q8, got "int8"/);
  for (const name of ["reference", "wasm"] as const) {
    const b = await selectBackend(name, { weightDType: "q8" });
    assert.equal(b.name, name);
    assert.equal(b.weightDType, "q8");
  }
});
