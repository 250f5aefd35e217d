/**
 * WASM backend specifics the shared conformance suite does not cover: its allocator reuses
 * memory across prompts of any length, and misuse (freed tensors, bad views, out-of-range
 * indices) fails loudly instead of reading stray memory.
 */

import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";

Deno.test("wasm: activations of many lengths reuse memory (bounded growth)", async () => {
  const be = await WasmBackend.create();
  const H = 576, I = 1536;
  const round = (T: number) => {
    const ts = [be.tensor(T, H), be.tensor(T, I), be.tensor(T, I), be.tensor(T, H)];
    for (const t of ts) be.free(t);
  };
  for (let T = 1; T <= 300; T += 7) round(T);
  const after = be.memoryBytes;
  for (let T = 2; T <= 300; T += 3) round(T);
  assert.equal(be.memoryBytes, after, "memory grew although every size class was already pooled");
});

Deno.test("wasm: reused tensors come back zero-filled", async () => {
  const be = await WasmBackend.create();
  const a = be.tensor(3, 5);
  be.write(a, new Float32Array(15).fill(7));
  be.free(a);
  const b = be.tensor(3, 5);
  assert.deepEqual([...await be.read(b)], new Array(15).fill(0));
});

Deno.test("wasm: misuse is rejected", async () => {
  const be = await WasmBackend.create({ weightDType: "f16" });
  const w = be.weights(new Float32Array(12));
  const x = be.tensor(1, 3), out = be.tensor(1, 2);
  const view = { buf: w, offset: 0, stride: 3, rows: 4, cols: 3 };
  assert.throws(
    () => be.matmul(x, view, be.indices(new Int32Array([0, 4])), null, out),
    /rows index 4 at 1 outside \[0, 4\)/,
  );
  assert.throws(
    () => be.matmul(x, { ...view, offset: 1 }, null, null, be.tensor(1, 4)),
    /view \(offset 1, stride 3, \[4, 3\]\) does not fit a buffer of 12/,
  );
  assert.throws(() => be.matmul(x, view, null, null, out), /matmul/); // out [1, 2] for R = 4
  be.free(x);
  assert.throws(() => be.read(x), /after free/);
  assert.throws(
    () => be.embed(view, Int32Array.of(4), be.tensor(1, 3)),
    /token id 4 at 0 outside \[0, 4\)/,
  );
  const other = await WasmBackend.create();
  assert.throws(() => other.read(out), /not a tensor of this backend/);
});
