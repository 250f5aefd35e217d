/**
 * Issue 13, finding 9, at the engine level on a Llama-3.2-1B shape (hidden 2048, 16 layers,
 * 32 heads, 8 kv heads, intermediate 8192, vocab 128256, tied, f16 weights, context 131072):
 * the WASM backend holds the weights' bytes, then KV caches of 10,000, 30,000 and 2,000
 * tokens are allocated in that order. Before the fix the 30,000-token sequence failed and
 * kept its blocks, so the 2,000-token one failed too. Needs about 4.5 GB of memory.
 *
 *   deno run -A tools/oom_repro_1b.ts
 */

import { BackendMemoryError } from "../lib/backends/backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import type { Model } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";

const cfg = {
  hiddenSize: 2048,
  intermediateSize: 8192,
  numLayers: 16,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 64,
  vocabSize: 128256,
  maxPositionEmbeddings: 131072,
};
const be = await WasmBackend.create({ weightDType: "f16" });
const { hiddenSize: H, intermediateSize: I, numLayers: L, headDim: d } = cfg;
const params = cfg.vocabSize * H +
  L * (2 * H * cfg.numHeads * d + 2 * H * cfg.numKvHeads * d + 3 * H * I);
const chunk = new Float32Array(64 << 20); // 64 Mi elements at a time (zeros: shapes matter)
for (let left = params; left > 0; left -= chunk.length) {
  be.weights(left >= chunk.length ? chunk : chunk.subarray(0, left), "f16");
}
const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
console.log(`weights: ${(params / 1e9).toFixed(3)} B parameters, ${gib(be.usedBytes)} in use`);
// The Sequence only needs the config and the backend to allocate its KV cache.
const model = { config: cfg, backend: be } as unknown as Model;
const rows: string[] = [];
for (const tokens of [10_000, 30_000, 2_000, 30_000, 20]) {
  const before = be.usedBytes;
  try {
    // One page of the whole context: the cache is reserved up front, as before paging.
    const s = new Sequence(model, { maxTokens: tokens, pageTokens: tokens });
    rows.push(`${tokens} tokens: ok (${gib(be.usedBytes - before)} of KV)`);
    s.free();
  } catch (e) {
    if (!(e instanceof BackendMemoryError)) throw e;
    rows.push(`${tokens} tokens: refused: ${e.message}; in use after: ${gib(be.usedBytes)}`);
  }
}
for (const r of rows) console.log(r);
const ok = rows[0].includes(": ok") && rows[1].includes("refused") && rows[2].includes(": ok") &&
  rows[4].includes(": ok");
console.log(ok ? "PASS: the failed sequence left nothing behind" : "FAIL");
Deno.exit(ok ? 0 : 1);
