/**
 * The backends every cross-backend test runs on: reference, wasm (f32 and f16 weights) and
 * webgpu (skipped, with the reason, only where no WebGPU adapter exists at all).
 */

import type { Backend } from "../../lib/backends/backend.ts";
import { ReferenceBackend } from "../../lib/backends/reference.ts";
import { WasmBackend } from "../../lib/backends/wasm.ts";
import { requestWebGpuAdapter, WebGpuBackend } from "../../lib/backends/webgpu.ts";

/** A backend under test: `make` returns the backend, or a string saying why it is skipped. */
export interface BackendCase {
  name: string;
  make(): Promise<Backend | string>;
}

/** WebGPU backends made for tests, destroyed by `destroyTestBackends`. */
const madeWebGpu: WebGpuBackend[] = [];

async function makeWebGpu(): Promise<Backend | string> {
  const adapter = await requestWebGpuAdapter();
  if (!adapter) return "navigator.gpu.requestAdapter() returned null";
  const b = await WebGpuBackend.create({ adapter });
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

/** Every backend the suites run on. */
export const BACKENDS: BackendCase[] = [
  { name: "reference", make: () => Promise.resolve(new ReferenceBackend()) },
  { name: "wasm-f32", make: () => WasmBackend.create({ weightDType: "f32" }) },
  { name: "wasm-f16", make: () => WasmBackend.create({ weightDType: "f16" }) },
  { name: "webgpu", make: makeWebGpu },
];
