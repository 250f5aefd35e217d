/**
 * The memory64 path of the WASM backend (kernels/wasm/seap_kernels64.wasm,
 * lib/backends/wasm_memory.ts): the same model gives the same logits on the wasm32 and the wasm64
 * build, also when every tensor and weight lies above the 4 GiB line (a 4 GiB block allocated
 * first and never touched, so it costs address space, not resident memory); the build is chosen
 * by the memory limit; f16 on both conversions (the portable bit tricks and, with
 * `--v8-flags=--experimental-wasm-fp16`, the half-precision SIMD builds seap_kernels_fp16.wasm
 * and seap_kernels64_fp16.wasm, which a model past 4 GiB in f16 runs on); the i64 signatures are read from the module's bytes; SEAP_MAX_MEMORY
 * parses; the default limit follows the model's size. The server's side (settings, admission):
 * tests/server_max_memory_test.ts.
 */

import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { fp16SimdSupported } from "../lib/backends/wasm_kernels.ts";
import {
  addressBitsFor,
  defaultMemoryLimit,
  i64Params,
  kernelUrl,
  parseByteSize,
  WASM32_MAX_BYTES,
} from "../lib/backends/wasm_memory.ts";
import { loadModel } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { prepareMask } from "../lib/model/prepared_mask.ts";
import type { Mask } from "../lib/model/mask.ts";
import type { WeightDType } from "../lib/backends/backend.ts";
import { rng, subset } from "./helpers/seeded.ts";

const GiB = 2 ** 30;
const FIXTURE = new URL("./fixtures/llama_gqa_llama3rope", import.meta.url).pathname;

/** Prefill + 3 decode steps' logits of the fixture under a seeded random mask, concatenated. */
async function logitsOn(be: WasmBackend): Promise<Float32Array> {
  const model = await loadModel(FIXTURE, { backend: be });
  const c = model.config;
  const r = rng(7);
  const mask: Mask = {
    name: "wasm64-random",
    layers: Array.from({ length: c.numLayers }, () => ({
      neurons: subset(c.intermediateSize, Math.ceil(c.intermediateSize / 2), r),
      heads: subset(c.numHeads, Math.max(1, c.numHeads - 1), r),
      biasAttn: null,
      biasFfn: null,
    })),
  };
  const out: number[] = [];
  for (const m of [null, prepareMask(model, mask)]) {
    const seq = new Sequence(model, { maxTokens: 16, ...(m ? { mask: m } : {}) });
    out.push(...await seq.prefill(Int32Array.of(1, 5, 9, 2, 7, 3), { allLogits: true }));
    for (const id of [4, 8, 6]) out.push(...await seq.decode(id));
    seq.free();
  }
  return Float32Array.from(out);
}

function worst(a: Float32Array, b: Float32Array): { err: number; at: number } {
  assert.equal(a.length, b.length);
  let err = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= err)) [err, at] = [e, i];
  }
  return { err, at };
}

const HAS_FP16 = fp16SimdSupported();
const CASES: { dtype: WeightDType; fp16Simd: boolean }[] = [
  { dtype: "f32", fp16Simd: false },
  { dtype: "f16", fp16Simd: false },
  { dtype: "f16", fp16Simd: true },
  { dtype: "q8", fp16Simd: false },
];

for (const { dtype, fp16Simd } of CASES) {
  const label = fp16Simd ? `${dtype} fp16-simd` : dtype;
  const skip = fp16Simd && !HAS_FP16;
  Deno.test({
    name: `wasm64 ${label}: dense and masked logits equal wasm32's, also above 4 GiB${
      skip ? " (skipped: run deno with --v8-flags=--experimental-wasm-fp16)" : ""
    }`,
    ignore: skip,
  }, async () => {
    const opts = { weightDType: dtype, fp16Simd };
    const w32 = await WasmBackend.create(opts);
    const w64 = await WasmBackend.create({ ...opts, addressBits: 64 });
    assert.equal(w32.addressBits, 32);
    assert.equal(w64.addressBits, 64);
    const want = await logitsOn(w32);
    const low = worst(want, await logitsOn(w64));
    // Above 4 GiB: a never-written 4 GiB weight block first, so everything after lies past it.
    const high = await WasmBackend.create({ ...opts, maxBytes: 5 * GiB });
    assert.equal(high.addressBits, 64);
    const path = dtype === "f16" && fp16Simd ? "fp16-simd" : "bit-trick";
    for (const be of [w32, w64, high]) assert.equal(be.f16Path, path);
    high.allocWeights(WASM32_MAX_BYTES / 4, "f32");
    assert.ok(high.usedBytes >= WASM32_MAX_BYTES);
    const above = worst(want, await logitsOn(high));
    console.log(
      `  ${label}: worst |wasm64 - wasm32| ${low.err.toExponential(3)} at ${low.at}; ` +
        `above 4 GiB ${above.err.toExponential(3)} at ${above.at} (${want.length} logits)`,
    );
    // Same C sources, clang 14 vs clang 19 (-ffp-contract=off): equal up to f32 rounding.
    for (const w of [low, above]) assert.ok(w.err <= 1e-4, `worst ${w.err} at ${w.at}`);
  });
}

Deno.test("wasm64: the build follows the memory limit; wasm32 refuses more than 4 GiB", async () => {
  assert.equal(addressBitsFor(4 * GiB), 32);
  assert.equal(addressBitsFor(4 * GiB + 65536), 64);
  assert.equal(addressBitsFor(1 * GiB, 64), 64);
  assert.throws(() => addressBitsFor(5 * GiB, 32), /32-bit memory cannot hold/);
  await assert.rejects(
    () => WasmBackend.create({ maxBytes: 17 * GiB }),
    /maxBytes must be in \(0, 16 GiB\]/,
  );
  const be = await WasmBackend.create({ maxBytes: 6 * GiB });
  assert.equal(be.memoryLimitBytes, 6 * GiB);
  assert.equal(be.addressBits, 64);
});

Deno.test("wasm64: the module's i64 parameters are read from its bytes", async () => {
  const sig64 = i64Params(await Deno.readFile(kernelUrl(64, false, false)));
  const sig32 = i64Params(await Deno.readFile(kernelUrl(32, false, false)));
  // matmul_f32(x*, T, K, w*, wstride, rows*, R, out*, tb, scratch*): pointers and size_t are i64.
  const mm = sig64.get("matmul_f32")!;
  assert.equal(mm.length, 10);
  assert.deepEqual([0, 3, 5, 7, 9].map((i) => mm[i]), [true, true, true, true, true]);
  assert.equal(mm[1], false, "T is an int");
  assert.ok([...sig32.values()].every((s) => s.every((x) => !x)), "wasm32 has no i64 params");
  assert.deepEqual([...sig32.keys()].sort(), [...sig64.keys()].sort());
  assert.throws(() => i64Params(new Uint8Array(8)), /not a WebAssembly module/);
});

Deno.test("SEAP_MAX_MEMORY sizes parse; bad ones are refused clearly", () => {
  assert.equal(parseByteSize("12G"), 12 * GiB);
  assert.equal(parseByteSize("12GiB"), 12 * GiB);
  assert.equal(parseByteSize("6144m"), 6 * GiB);
  assert.equal(parseByteSize("1.5GB"), 1.5 * GiB);
  assert.equal(parseByteSize("4096"), 4096);
  assert.throws(() => parseByteSize("lots", "SEAP_MAX_MEMORY"), /SEAP_MAX_MEMORY: expected/);
  assert.throws(() => parseByteSize("0G"), /more than 0/);
});

Deno.test("default memory limit: 4 GiB while the weights leave 1 GiB, else 3/4 of the host", () => {
  const host = () => 24 * GiB;
  assert.equal(defaultMemoryLimit(2.3 * GiB, host), 4 * GiB); // Llama-3.2-1B f16
  assert.equal(defaultMemoryLimit(4.6 * GiB, host), 16 * GiB); // 1B f32: 18 GiB capped
  assert.equal(defaultMemoryLimit(4.6 * GiB, () => 8 * GiB), 6 * GiB);
  assert.throws(
    () =>
      defaultMemoryLimit(6 * GiB, () => {
        throw new Deno.errors.NotCapable("Requires sys access");
      }),
    /set SEAP_MAX_MEMORY \(e\.g\. 8G/,
  );
});
