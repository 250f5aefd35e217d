/** selectBackend: explicit choices and the auto fallback chain (WebGPU only on real GPUs). */

import assert from "node:assert/strict";
import { selectBackend } from "../lib/backends/select_backend.ts";
import {
  requestWebGpuAdapter,
  WebGpuBackend,
  WebGpuUnavailableError,
} from "../lib/backends/webgpu.ts";

const anyAdapter = await requestWebGpuAdapter();
const hwAdapter = await requestWebGpuAdapter({ allowFallback: false });

Deno.test("selectBackend: reference and wasm by name", async () => {
  assert.equal((await selectBackend("reference")).name, "reference");
  const w = await selectBackend("wasm", { weightDType: "f16" });
  assert.equal(w.name, "wasm");
  assert.equal(w.weightDType, "f16");
});

Deno.test("selectBackend: auto picks webgpu only for a hardware adapter, else wasm", async () => {
  const logs: string[] = [];
  const b = await selectBackend("auto", { log: (m) => logs.push(m) });
  assert.equal(b.name, hwAdapter ? "webgpu" : "wasm", logs.join("; "));
  if (b instanceof WebGpuBackend) b.destroy();
});

Deno.test({
  name: "selectBackend: webgpu by name accepts a fallback adapter",
  ignore: anyAdapter === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const b = await selectBackend("webgpu");
    assert.equal(b.name, "webgpu");
    (b as WebGpuBackend).destroy();
  },
});

Deno.test("selectBackend: unknown name is a RangeError", async () => {
  await assert.rejects(() => selectBackend("cuda" as "auto"), RangeError);
});

Deno.test("without navigator.gpu: auto falls back to wasm, webgpu throws a clear error", async () => {
  Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
  try {
    assert.equal(await requestWebGpuAdapter(), null);
    assert.equal((await selectBackend("auto")).name, "wasm");
    await assert.rejects(() => selectBackend("webgpu"), WebGpuUnavailableError);
  } finally {
    delete (navigator as { gpu?: unknown }).gpu;
  }
  assert.notEqual(navigator.gpu, undefined, "navigator.gpu restored");
});
