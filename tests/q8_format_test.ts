/**
 * The q8 weight format (lib/formats/q8.ts) against its definition, and `q8` as a weight format
 * choice of the server settings and the backend selector.
 */

import assert from "node:assert/strict";
import {
  dequantizeQ8,
  Q8_BLOCK_BYTES,
  q8Bytes,
  quantizeQ8,
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
