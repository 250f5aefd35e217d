/**
 * The backends every cross-backend test runs on: reference (f32 and q8 weights), wasm (f32, f16
 * and q8 weights) and webgpu (f32, f16, q8, and "chunked": f32 with a 2 KiB weight-binding
 * limit, forced split-K in matmulTAdd and 64-position attention chunks, so the row-chunked
 * binding, split-K reduction and chunk-combining attention paths run; skipped, with the reason,
 * only where no WebGPU adapter exists at all). Names end in the weight format when it is not
 * f32. The conformance suite adds {@link LANES64}.
 */

import type { Backend } from "../../lib/backends/backend.ts";
import { ReferenceBackend } from "../../lib/backends/reference.ts";
import { WasmBackend } from "../../lib/backends/wasm.ts";
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

async function makeWebGpu(opts: WebGpuBackendOptions = {}): Promise<Backend | string> {
  const adapter = await requestWebGpuAdapter();
  if (!adapter) return "navigator.gpu.requestAdapter() returned null";
  const b = await WebGpuBackend.create({ adapter, ...opts });
  madeWebGpu.push(b);
  return b;
}

/**
 * Destroy every WebGPU device the suites made (a test file that makes backends ends with a test
 * calling this, so devices do not pile up across files in one test process).
 */
export function destroyTestBackends(): number {
  const n = madeWebGpu.length;
  for (const b of madeWebGpu.splice(0)) b.destroy();
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

/** Every backend the suites run on. */
export const BACKENDS: BackendCase[] = [
  { name: "reference", make: () => Promise.resolve(new ReferenceBackend()) },
  {
    name: "reference-q8",
    make: () => Promise.resolve(new ReferenceBackend({ weightDType: "q8" })),
  },
  { name: "wasm-f32", make: () => WasmBackend.create({ weightDType: "f32" }) },
  { name: "wasm-f16", make: () => WasmBackend.create({ weightDType: "f16" }) },
  { name: "wasm-q8", make: () => WasmBackend.create({ weightDType: "q8" }) },
  { name: "webgpu", make: () => makeWebGpu() },
  { name: "webgpu-f16", make: () => makeWebGpu({ weightDType: "f16" }) },
  { name: "webgpu-q8", make: () => makeWebGpu({ weightDType: "q8" }) },
  {
    name: "webgpu-chunked",
    make: () => makeWebGpu({ maxBindingBytes: 2048, tSplitRows: 5, attnChunk: 64 }),
  },
];
