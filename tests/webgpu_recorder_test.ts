/**
 * What only the WebGPU backend has: its command recorder. The ops themselves are checked, on
 * every WebGPU configuration (f32, f16, q8, row-chunked bindings), by the one conformance suite
 * (tests/backend_conformance_test.ts); here, on the plain f32 backend: a use after free is
 * refused, more dispatches than the uniform ring holds and a write larger than the upload
 * arena keep stream order, and a decode step is one compute pass, one submission and one
 * readback with the reference backend's logits. Skipped only when there is no WebGPU adapter at
 * all (llvmpipe counts).
 */

import assert from "node:assert/strict";
import type { Backend } from "../lib/backends/backend.ts";
import { requestWebGpuAdapter, WebGpuBackend } from "../lib/backends/webgpu.ts";
import { assertClose } from "./helpers/assert_close.ts";

const adapter = await requestWebGpuAdapter();
const opts = { ignore: adapter === null, sanitizeResources: false, sanitizeOps: false };

/** Run `fn` on a fresh f32 WebGPU backend and destroy it afterwards. */
async function withGpu(fn: (b: WebGpuBackend) => Promise<void>): Promise<void> {
  const b = await WebGpuBackend.create({ adapter: adapter! });
  try {
    await fn(b);
  } finally {
    b.destroy();
  }
}

function put(b: Backend, rows: number, cols: number, data: Float32Array) {
  const t = b.tensor(rows, cols);
  b.write(t, data);
  return t;
}

Deno.test({
  name: "webgpu recorder: a tensor used after free is refused",
  ...opts,
  fn: () =>
    withGpu(async (b) => {
      const x = put(b, 2, 3, Float32Array.of(1, 2, 3, 4, 5, 6));
      const y = b.tensor(2, 3);
      b.free(x);
      assert.throws(() => b.add(y, x), /webgpu: tensor used after free/);
      assertClose("y untouched", await b.read(y), new Float32Array(6), 0, 0);
      b.free(y);
    }),
});

Deno.test({
  name: "webgpu recorder: > 2048 dispatches (uniform ring flush) and arena growth keep order",
  ...opts,
  fn: () =>
    withGpu(async (b) => {
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
      const before = b.stats.submissions;
      assertClose("many dispatches", await b.read(y), new Float32Array(n).fill(want), 0, 0);
      assert.ok(b.stats.submissions - before >= 1);
      const big = b.tensor(600, 500); // 1.2 MB write: larger than the initial 1 MiB arena
      b.add(y, x); // something pending so the write goes through the arena
      const data = Float32Array.from({ length: 600 * 500 }, (_, i) => i % 1000);
      b.write(big, data);
      assertClose("big write", await b.read(big), data, 0, 0);
      for (const t of [x, y, big]) b.free(t);
    }),
});

Deno.test({
  name: "webgpu engine: one pass, one submission, one readback per decode step; logits = reference",
  ...opts,
  fn: async () => {
    const { loadModel } = await import("../lib/model/model.ts");
    const { Sequence } = await import("../lib/model/sequence.ts");
    const { ReferenceBackend } = await import("../lib/backends/reference.ts");
    const dir = new URL("./fixtures/llama_gqa_llama3rope", import.meta.url).pathname;
    await withGpu(async (gpu) => {
      const ids = Int32Array.of(1, 5, 9, 2, 7);
      const run = async (m: Awaited<ReturnType<typeof loadModel>>, counted: boolean) => {
        const seq = new Sequence(m, { maxTokens: 16 });
        const out = [await seq.prefill(ids)];
        for (const id of [3, 4]) {
          const before = { ...gpu.stats };
          out.push(await seq.decode(id));
          if (counted) {
            assert.equal(gpu.stats.submissions - before.submissions, 1, "submissions per step");
            assert.equal(gpu.stats.readbacks - before.readbacks, 1, "readbacks per step");
            assert.equal(gpu.stats.passes - before.passes, 1, "compute passes per step");
          }
        }
        seq.free();
        return out;
      };
      const got = await run(await loadModel(dir, { backend: gpu }), true);
      const want = await run(await loadModel(dir, { backend: new ReferenceBackend() }), false);
      got.forEach((g, i) => assertClose(`engine logits step ${i}`, g, want[i], 1e-4, 1e-4));
    });
  },
});
