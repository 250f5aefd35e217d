/**
 * Issue 13, finding 9: one request that runs out of memory must not break the server. The
 * WASM allocator reuses freed blocks of any size, a sequence whose construction fails gives
 * back what it took, a request beyond the memory-safe context is refused up front (issue 14)
 * and the next one succeeds, and a broken engine makes /healthz say so. Memory is forced short with the backend's `maxBytes`
 * on the tiny fixture (the 1B-shaped reproduction is tools/oom_repro_1b.ts).
 */

import assert from "node:assert/strict";
import { BackendMemoryError } from "../lib/backends/backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { loadModel } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { createApp } from "../lib/server/app.ts";
import { makeEngine } from "../lib/server/engine_handle.ts";
import { MaskCatalog } from "../lib/masks/catalog.ts";
import { post, TINY_CHAT } from "./server_helpers.ts";
import {
  kvBytesPerToken,
  memorySafeContext,
  sequenceKvBytes,
  stepReserveBytes,
} from "../lib/server/memory_fit.ts";

Deno.test("wasm allocator: freed blocks of other sizes are reused and merged", async () => {
  const be = await WasmBackend.create({ maxBytes: 64 << 20 });
  const base = be.usedBytes;
  const big = be.tensor(1024, 1024); // 4 MiB
  const grown = be.memoryBytes;
  be.free(big);
  assert.equal(be.usedBytes, base, "everything given back");
  // Three smaller tensors of different sizes fit where the big one was: no growth.
  const a = be.tensor(100, 1000), b = be.tensor(300, 700), c = be.tensor(7, 9);
  assert.equal(be.memoryBytes, grown, "memory did not grow");
  be.write(b, new Float32Array(300 * 700).fill(3));
  be.free(b);
  const d = be.tensor(200, 700); // reuses b's block: must read back as zeros
  const got = await be.read(d);
  const nonZero = got.findIndex((v) => v !== 0);
  assert.equal(nonZero, -1, `reused memory not zeroed at ${nonZero}`);
  for (const t of [a, c, d]) be.free(t);
  assert.equal(be.usedBytes, base);
  assert.equal(be.freeBytes, 0, "neighbours merged back into the top");
  // Past the limit: a clear error, nothing allocated.
  assert.throws(() => be.tensor(8192, 8192), BackendMemoryError);
  assert.equal(be.usedBytes, base);
});

async function cappedModel(extraBytes: number) {
  const be = await WasmBackend.create();
  const model = await loadModel(TINY_CHAT, { backend: be });
  // Warm the backend's scratch pools with a short prefill, then cap memory just above.
  const warm = new Sequence(model, { maxTokens: 64 });
  await warm.prefill(Int32Array.from({ length: 60 }, (_, i) => i % 300));
  warm.free();
  const capped = await WasmBackend.create({ maxBytes: be.usedBytes + extraBytes });
  const m2 = await loadModel(TINY_CHAT, { backend: capped });
  const w2 = new Sequence(m2, { maxTokens: 64 });
  await w2.prefill(Int32Array.from({ length: 60 }, (_, i) => i % 300));
  w2.free();
  return { model: m2, be: capped };
}

Deno.test("sequence: a failed construction frees its KV blocks; a smaller one then fits", async () => {
  // 512 tokens × 6 layers × K,V × 2 kv heads × 16 dims × 4 B = 768 KiB of KV: does not fit
  // in 600 KiB; 100 tokens (192 KiB, rounded) does, but only if nothing leaked.
  const { model, be } = await cappedModel(600 << 10);
  const before = be.usedBytes;
  assert.throws(() => new Sequence(model, { maxTokens: 512 }), BackendMemoryError);
  assert.equal(be.usedBytes, before, "the failed sequence gave back every layer it took");
  let settled = 0; // after the first round the backend's scratch pools have their size
  for (let round = 0; round < 3; round++) {
    const s = new Sequence(model, { maxTokens: 100 });
    const logits = await s.prefill(Int32Array.from({ length: 90 }, (_, i) => (i * 7) % 300));
    assert.ok(logits.every(Number.isFinite));
    s.free();
    assert.throws(() => new Sequence(model, { maxTokens: 512 }), BackendMemoryError);
    if (round === 0) settled = be.usedBytes;
    else assert.equal(be.usedBytes, settled, `round ${round}: nothing leaked`);
  }
});

Deno.test("server: a request beyond the memory-safe context is refused up front (400), requests at it succeed concurrently", async () => {
  // 1.25 MiB left after loading: less than 2 sequences of the config's 512 tokens need
  // with a long prompt's routing pass (before admission, this ran out of memory mid-request).
  const { model, be } = await cappedModel(1280 << 10);
  const tokenizer = await Tokenizer.load(TINY_CHAT);
  const engine = makeEngine(model, tokenizer, new MaskCatalog(model, [], null, { source: "none" }));
  const app = createApp(engine, { maxConcurrent: 2 });
  const card = (await (await app.request("/v1/models")).json()).data[0].seap;
  const ctx: number = card.max_context;
  // Independent truth: the KV bytes per token from the config (K and V, every layer, f32).
  const c = model.config;
  assert.equal(card.memory.kv_bytes_per_token, c.numLayers * 2 * c.numKvHeads * c.headDim * 4);
  assert.equal(card.memory.max_concurrent, 2);
  assert.ok(card.memory.free_bytes <= (1280 << 10) && card.memory.free_bytes > 0);
  assert.ok(ctx > 64 && ctx < c.maxPositionEmbeddings, `memory-safe context ${ctx}`);
  assert.match(card.max_context_reason, /memory/);
  // The advertised context fits its KV caches in the free memory at concurrency 2.
  assert.ok(2 * ctx * card.memory.kv_bytes_per_token <= card.memory.free_bytes);

  const prompt = "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(2);
  const promptLen = tokenizer.encode(prompt, { addSpecialTokens: true }).length;
  assert.ok(promptLen > 64, `prompt of ${promptLen} tokens prefills in chunks`);
  const complete = (max_tokens: number) =>
    post(app, "/v1/completions", { model: engine.modelId, prompt, max_tokens, temperature: 0 });
  const over = await complete(ctx - promptLen + 1);
  const err = await over.json();
  assert.equal(over.status, 400, JSON.stringify(err));
  assert.equal(err.error.param, "max_tokens");
  assert.equal(err.error.code, "context_length_exceeded");
  assert.match(err.error.message, new RegExp(`${ctx} tokens \\(memory`));
  const before = be.usedBytes;
  // Two requests at exactly the advertised context, at once: both complete.
  const both = await Promise.all([complete(ctx - promptLen), complete(ctx - promptLen)]);
  for (const r of both) {
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.usage.prompt_tokens, promptLen);
  }
  assert.equal(be.usedBytes, before, "the sequences gave their KV caches back");
  const h = await app.request("/healthz");
  assert.equal(h.status, 200);
  assert.equal((await h.json()).status, "ready");
});

Deno.test("memory-safe context: KV caches of every sequence plus a routing pass and one step fit", () => {
  const cfg = {
    numLayers: 16,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    vocabSize: 128256,
  };
  assert.equal(kvBytesPerToken(cfg), 16 * 2 * 8 * 64 * 4); // 64 KiB, as issue 14 says
  const free = 1.5 * 2 ** 30;
  for (const c of [1, 4]) {
    const t = memorySafeContext(cfg, { freeBytes: free, maxConcurrent: c, chunk: 64 });
    const need = (n: number) =>
      (c + 1) * sequenceKvBytes(cfg, n) + stepReserveBytes(cfg, Math.min(64, n));
    assert.ok(need(t) <= free, `concurrency ${c}: ${t} tokens need ${need(t)} > ${free}`);
    assert.ok(need(t + 1) > free, `concurrency ${c}: ${t + 1} tokens would fit too`);
    // Never more than the plain KV arithmetic allows.
    assert.ok((c + 1) * t * kvBytesPerToken(cfg) <= free);
  }
  assert.equal(memorySafeContext(cfg, { freeBytes: 1000, maxConcurrent: 1, chunk: 64 }), 0);
});

Deno.test("server: an engine that cannot allocate at all is reported broken by /healthz", async () => {
  const be = await WasmBackend.create();
  const model = await loadModel(TINY_CHAT, { backend: be });
  const tokenizer = await Tokenizer.load(TINY_CHAT);
  const engine = makeEngine(model, tokenizer, new MaskCatalog(model, [], null, { source: "none" }));
  const app = createApp(engine, { maxConcurrent: 2 });
  const ok = await post(app, "/v1/completions", {
    model: engine.modelId,
    prompt: "hi",
    max_tokens: 2,
  });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  // Force every later allocation to fail, as a corrupted or exhausted heap would.
  const tensor = be.tensor.bind(be);
  be.tensor = () => {
    throw new BackendMemoryError("wasm backend: out of memory (forced by the test)");
  };
  try {
    const r = await post(app, "/v1/completions", {
      model: engine.modelId,
      prompt: "hi",
      max_tokens: 2,
    });
    assert.equal(r.status, 503);
    await r.body?.cancel();
    let health: Response | null = null;
    for (let i = 0; i < 50; i++) {
      health = await app.request("/healthz");
      if (health.status !== 200) break;
      await health.body?.cancel();
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(health!.status, 503);
    const body = await health!.json();
    assert.equal(body.status, "broken");
    assert.match(body.error, /out of memory/);
    const after = await post(app, "/v1/completions", { model: engine.modelId, prompt: "hi" });
    assert.equal(after.status, 503);
    assert.match((await after.json()).error.message, /broken/);
  } finally {
    be.tensor = tensor;
  }
});
