/**
 * The paged KV cache (lib/model/kv_cache.ts, issue 14 item 4): on every backend a sequence whose
 * cache grows page by page (prefills and decodes across several growths, a fork, a mask that
 * prunes a kv group) gives bit-identical logits to one that reserves its whole context up front;
 * a short sequence holds only its first page, as the WASM backend's allocation count shows; the
 * capacity doubles in whole pages up to the sequence's limit.
 */

import assert from "node:assert/strict";
import type { Backend } from "../lib/backends/backend.ts";
import { ReferenceBackend } from "../lib/backends/reference.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { KV_PAGE_TOKENS, KvCache } from "../lib/model/kv_cache.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import { type PreparedMask, prepareMask } from "../lib/model/prepared_mask.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { rng } from "./helpers/seeded.ts";
import { kvGroupMask } from "./helpers/kv_group_mask.ts";
import { BACKENDS, destroyTestBackends } from "./helpers/test_backends.ts";

const DIR = new URL("./fixtures/tiny_chat", import.meta.url).pathname;

/**
 * Every logits vector of one run: prefill 10 then 23 tokens, 30 greedy decodes, then a fork
 * that decodes 5 more; `pageTokens` sets how the cache grows.
 */
async function run(model: Model, mask: PreparedMask | null, pageTokens: number) {
  const r = rng(5);
  const V = model.config.vocabSize;
  const ids = Int32Array.from({ length: 33 }, () => Math.floor(r() * V));
  const seq = new Sequence(model, { maxTokens: 100, mask, pageTokens });
  const out: Float32Array[] = [];
  const caps: number[] = [];
  out.push(await seq.prefill(ids.subarray(0, 10)));
  out.push(await seq.prefill(ids.subarray(10), { allLogits: true }));
  let last = out[1].subarray(out[1].length - V);
  for (let i = 0; i < 30; i++) {
    last = await seq.decode(last.indexOf(Math.max(...last)));
    out.push(last);
    caps.push(seq.kvCapacity);
  }
  const child = seq.fork({ maxTokens: 90 });
  for (let i = 0; i < 5; i++) out.push(await child.decode(7 + i));
  child.free();
  seq.free();
  return { out, caps };
}

for (const bc of BACKENDS) {
  const made = await bc.make();
  const skip = typeof made === "string" ? made : null;
  Deno.test({
    name: `${bc.name}: a KV cache grown in pages gives the logits of one reserved up front${
      skip ? ` (skipped: ${skip})` : ""
    }`,
    ignore: skip !== null,
    fn: async () => {
      const model = await loadModel(DIR, { backend: made as Backend });
      for (
        const [what, mask] of [
          ["dense", null],
          ["kv group 0 pruned", prepareMask(model, kvGroupMask(model, "paging-test"))],
        ] as const
      ) {
        const paged = await run(model, mask, 4);
        const whole = await run(model, mask, 100);
        // 63 cached tokens at the end: pages of 4 grew 4 -> 12 -> 36 -> 72 positions.
        assert.deepEqual([...new Set(paged.caps)], [36, 72], `${paged.caps}`);
        assert.ok(whole.caps.every((c) => c === 100));
        let worst = 0, at = "";
        paged.out.forEach((a, s) => {
          const b = whole.out[s];
          assert.equal(a.length, b.length);
          for (let i = 0; i < a.length; i++) {
            const e = Math.abs(a[i] - b[i]);
            if (!(e <= worst)) [worst, at] = [e, `step ${s} logit ${i}`];
          }
        });
        console.log(`  ${bc.name} ${what}: worst |paged - reserved| ${worst} ${at}`);
        assert.equal(worst, 0, `${what}: paged logits differ by ${worst} at ${at}`);
      }
    },
  });
}

Deno.test("wasm: a short sequence holds one page of KV, not its whole context", async () => {
  const be = await WasmBackend.create();
  const model = await loadModel(DIR, { backend: be });
  const c = model.config;
  // Independent truth from the config: K and V per layer, n_kv heads × positions × d_h f32,
  // rounded up to a power of two as the WASM allocator rounds tensors.
  const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));
  const kvBytes = (positions: number) =>
    c.numLayers * 2 * pow2(c.numKvHeads * positions * c.headDim * 4);
  const warm = new Sequence(model, { maxTokens: 512 });
  await warm.prefill(Int32Array.from({ length: 150 }, (_, i) => 3 + i % 200)); // scratch pools
  warm.free();

  const base = be.usedBytes;
  const whole = new Sequence(model, { maxTokens: 512, pageTokens: 512 });
  const wholeBytes = be.usedBytes - base;
  whole.free();
  const short = new Sequence(model, { maxTokens: 512 });
  await short.prefill(Int32Array.from([5, 9, 17, 33, 40]));
  const shortBytes = be.usedBytes - base;
  console.log(
    `  KV of a 5-token sequence with a 512-token limit: ${shortBytes} B paged, ` +
      `${wholeBytes} B reserved up front`,
  );
  assert.equal(wholeBytes, kvBytes(512));
  assert.equal(shortBytes, kvBytes(KV_PAGE_TOKENS));
  assert.ok(shortBytes * 8 <= wholeBytes);
  // Growing to 150 tokens doubles the capacity twice: 64 -> 128 -> 256 positions.
  for (let i = 0; i < 29; i++) {
    await short.prefill(Int32Array.from({ length: 5 }, (_, k) => 1 + (i * 5 + k) % 250));
  }
  assert.equal(short.length, 150);
  assert.equal(short.kvCapacity, 256);
  assert.equal(be.usedBytes - base, kvBytes(256));
  short.free();
  assert.equal(be.usedBytes, base, "every page given back");
});

Deno.test("KvCache: capacity doubles in whole pages, capped at the limit; beyond it is refused", () => {
  const be = new ReferenceBackend();
  const kv = new KvCache(be, { layers: 2, nKv: 2, headDim: 4 }, 300, 64);
  assert.equal(kv.capacity(0), 64);
  kv.reserve(64, 0);
  assert.equal(kv.capacity(1), 64, "no growth while it fits");
  kv.reserve(65, 64);
  assert.equal(kv.capacity(0), 128);
  kv.reserve(129, 65);
  assert.equal(kv.capacity(1), 256);
  kv.reserve(290, 129);
  assert.equal(kv.capacity(0), 300, "capped at the sequence's limit");
  assert.equal(kv.k(0).rows, 2 * 300);
  assert.throws(() => kv.reserve(301, 290), RangeError);
  const jump = new KvCache(be, { layers: 1, nKv: 1, headDim: 4 }, 5000, 64);
  jump.reserve(1000, 0);
  assert.equal(jump.capacity(0), 1024, "a long prompt rounds up to whole pages");
  assert.throws(() => new KvCache(be, { layers: 1, nKv: 1, headDim: 4 }, 10, 0), /pageTokens/);
  kv.free();
  jump.free();
  assert.throws(() => kv.reserve(10, 0), /after free/);
});

Deno.test("kv paging tests: destroy WebGPU devices", () => {
  destroyTestBackends();
});
