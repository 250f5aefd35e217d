/**
 * The backends every cross-backend test runs on: reference (f32 and q8 weights), wasm (f32, f16
 * and q8 weights, f16 also on the half-precision SIMD builds, "wasm-fp16simd-f16" and
 * "wasm64-fp16simd-f16"; the wasm32 and the memory64 kernel builds; f32 and q8 also on 2 threads,
 * "wasm-t2", f16 on 2 threads on half-precision SIMD, "wasm-t2-fp16simd-f16", and f32 on
 * memory64 threads, "wasm64-t2", with every op the pool can cut cut,
 * lib/backends/wasm_threads.ts) and webgpu (f32, f16, q8, and "chunked": f32 with a 2 KiB
 * weight-binding limit, forced split-K in matmulTAdd and 64-position attention chunks, so the
 * row-chunked binding, split-K reduction and chunk-combining attention paths run; skipped, with
 * the reason, only where no WebGPU adapter exists at all). Names end in the weight format when it
 * is not f32. The conformance suite adds {@link LANES64}.
 */

import type { Backend, WeightDType } from "../../lib/backends/backend.ts";
import { ReferenceBackend } from "../../lib/backends/reference.ts";
import { WasmBackend } from "../../lib/backends/wasm.ts";
import { fp16SimdSupported } from "../../lib/backends/wasm_kernels.ts";
import {
  requestWebGpuAdapter,
  WebGpuBackend,
  type WebGpuBackendOptions,
} from "../../lib/backends/webgpu.ts";

/** A backend under test: `make` returns the backend, or a string saying why it is skipped. */
export interface BackendCase {
  name: string;
  make(): Promise<Backend | string>;
}

/** WebGPU backends made for tests, destroyed by `destroyTestBackends`. */
const madeWebGpu: WebGpuBackend[] = [];
/** Threaded WASM backends made for tests, closed by `destroyTestBackends`. */
const madeThreaded: WasmBackend[] = [];

async function makeThreaded(
  weightDType: WeightDType,
  addressBits: 32 | 64 = 32,
  fp16Simd?: boolean,
): Promise<Backend> {
  const b = await WasmBackend.create({ weightDType, threads: 2, addressBits, fp16Simd });
  const pool = b.threadPool!;
  pool.minWork = 0; // cut every op the pool can, however small
  pool.decodeColumnCuts = true;
  pool.waitForWorkers = true; // and make the worker run part of each
  madeThreaded.push(b);
  return b;
}

async function makeWebGpu(opts: WebGpuBackendOptions = {}): Promise<Backend | string> {
  const adapter = await requestWebGpuAdapter();
  if (!adapter) return "navigator.gpu.requestAdapter() returned null";
  const b = await WebGpuBackend.create({ adapter, ...opts });
  madeWebGpu.push(b);
  return b;
}

/**
 * Destroy every WebGPU device the suites made and stop the threaded WASM backends' workers (a
 * test file that makes backends ends with a test calling this, so devices and workers do not
 * pile up across files in one test process). Returns the number of WebGPU devices destroyed.
 */
export function destroyTestBackends(): number {
  const n = madeWebGpu.length;
  for (const b of madeWebGpu.splice(0)) b.destroy();
  for (const b of madeThreaded.splice(0)) b.close();
  return n;
}

/**
 * WebGPU with f16 weights and 64 lanes per matmul row: the shared-memory reduction the f32 and
 * f16 configurations run on a hardware GPU, forced on a software adapter (which defaults to one
 * lane, as its shader compiler takes minutes over the reduction: the conformance suite runs this
 * one's whole-model checks on one fixture model only).
 */
export const LANES64: BackendCase = {
  name: "webgpu-lanes64-f16",
  make: () => makeWebGpu({ weightDType: "f16", matmulLanes: 64 }),
};

/** Why a half-precision SIMD case is skipped in this runtime. */
const NO_FP16 = "this runtime has no WebAssembly half-precision SIMD (run deno with " +
  "--v8-flags=--experimental-wasm-fp16)";

/** Every backend the suites run on. */
export const BACKENDS: BackendCase[] = [
  { name: "reference", make: () => Promise.resolve(new ReferenceBackend()) },
  {
    name: "reference-q8",
    make: () => Promise.resolve(new ReferenceBackend({ weightDType: "q8" })),
  },
  { name: "wasm-f32", make: () => WasmBackend.create({ weightDType: "f32" }) },
  // f16 on both f16 paths: the portable bit-trick kernels (forced, whatever the runtime) and the
  // half-precision SIMD build (kernels/wasm/seap_kernels_fp16.wasm, which needs
  // --v8-flags=--experimental-wasm-fp16: `deno task test` passes it).
  { name: "wasm-f16", make: () => WasmBackend.create({ weightDType: "f16", fp16Simd: false }) },
  {
    name: "wasm-fp16simd-f16",
    make: () =>
      fp16SimdSupported()
        ? WasmBackend.create({ weightDType: "f16", fp16Simd: true })
        : Promise.resolve(NO_FP16),
  },
  { name: "wasm-q8", make: () => WasmBackend.create({ weightDType: "q8" }) },
  // The memory64 build (kernels/wasm/seap_kernels64.wasm), forced on: by default it serves only
  // limits past 4 GiB (docs/design.md, WASM memory past 4 GiB).
  { name: "wasm64-f32", make: () => WasmBackend.create({ weightDType: "f32", addressBits: 64 }) },
  // memory64 f16 on both paths too (seap_kernels64.wasm and seap_kernels64_fp16.wasm).
  {
    name: "wasm64-f16",
    make: () => WasmBackend.create({ weightDType: "f16", addressBits: 64, fp16Simd: false }),
  },
  {
    name: "wasm64-fp16simd-f16",
    make: () =>
      fp16SimdSupported()
        ? WasmBackend.create({ weightDType: "f16", addressBits: 64, fp16Simd: true })
        : Promise.resolve(NO_FP16),
  },
  { name: "wasm64-q8", make: () => WasmBackend.create({ weightDType: "q8", addressBits: 64 }) },
  { name: "wasm-t2", make: () => makeThreaded("f32") },
  { name: "wasm-t2-q8", make: () => makeThreaded("q8") },
  // f16 on 2 threads on the shared-memory half-precision SIMD build (seap_kernels_mt_fp16.wasm).
  {
    name: "wasm-t2-fp16simd-f16",
    make: () => fp16SimdSupported() ? makeThreaded("f16", 32, true) : Promise.resolve(NO_FP16),
  },
  { name: "wasm64-t2", make: () => makeThreaded("f32", 64) },
  { name: "webgpu", make: () => makeWebGpu() },
  { name: "webgpu-f16", make: () => makeWebGpu({ weightDType: "f16" }) },
  { name: "webgpu-q8", make: () => makeWebGpu({ weightDType: "q8" }) },
  {
    name: "webgpu-chunked",
    make: () => makeWebGpu({ maxBindingBytes: 2048, tSplitRows: 5, attnChunk: 64 }),
  },
];
