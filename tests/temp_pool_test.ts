/**
 * The temporaries a sequence keeps between one-token steps (lib/model/temp_pool.ts): a kept
 * tensor is never handed out while live, the budget bounds what is kept, a failed step still
 * gives every tensor back, and reuse changes no output: decoding on a backend whose new one-row
 * tensors are full of NaN (so a temporary read before it is written would show) gives the same
 * logits, bit for bit, as plain decoding, and takes no new small tensor after the first step.
 */

import assert from "node:assert/strict";
import type { Backend, Tensor } from "../lib/backends/backend.ts";
import { ReferenceBackend } from "../lib/backends/reference.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { loadModel } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { idleTempBudgetBytes, TempPool } from "../lib/model/temp_pool.ts";
import { prepareMask } from "../lib/model/prepared_mask.ts";
import { denseMask, type Mask } from "../lib/model/mask.ts";

const DIR = new URL("./fixtures/mistral", import.meta.url).pathname;
const IDS = Int32Array.from([1, 5, 9, 17, 33, 40]);

/**
 * `be` with its tensor and free calls counted, one-row tensors handed out full of NaN when
 * `poison`, and the `failAt`-th matmul call (1-based; 0: never) throwing.
 */
function spied(be: Backend, opts: { poison?: boolean; failAt?: number } = {}) {
  opts = { ...opts };
  const stats = { made: 0, freed: 0, madeRows1: 0, matmuls: 0 };
  const live = new Set<Tensor>();
  const proxy = new Proxy(be, {
    get(target, prop, recv) {
      if (prop === "tensor") {
        return (rows: number, cols: number) => {
          const t = target.tensor(rows, cols);
          stats.made++;
          if (rows === 1) stats.madeRows1++;
          if (rows === 1 && opts.poison) target.write(t, new Float32Array(cols).fill(NaN));
          live.add(t);
          return t;
        };
      }
      if (prop === "free") {
        return (t: Tensor) => {
          assert.ok(live.delete(t), "freed a tensor that was not live");
          stats.freed++;
          target.free(t);
        };
      }
      if (prop === "matmul") {
        return (...a: Parameters<Backend["matmul"]>) => {
          if (++stats.matmuls === opts.failAt) throw new Error("injected matmul failure");
          target.matmul(...a);
        };
      }
      const v = Reflect.get(target, prop, recv);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { be: proxy as Backend, stats, live, opts };
}

/** Every other neuron and head 1 pruned from layer 1 on: q, k, v widths differ per layer. */
function halfMask(m: Mask): Mask {
  return {
    name: "half",
    layers: m.layers.map((l, i) =>
      i < 1 ? l : {
        ...l,
        neurons: l.neurons.filter((j) => j % 2 === 0),
        heads: l.heads.filter((h) => h !== 1),
      }
    ),
  };
}

Deno.test("TempPool: kept tensors come back only once given back; budget and shape bound them", () => {
  const { be, stats } = spied(new ReferenceBackend());
  const pool = new TempPool(be, 3 * 8 * 4, 8); // room for three [1, 8]
  const a = pool.take(1, 8, true), b = pool.take(1, 8, true);
  assert.notEqual(a, b, "two live tensors of one shape are distinct");
  pool.give(a, true);
  assert.throws(() => pool.give(a, true), /given back twice/);
  const c = pool.take(1, 8, true);
  assert.equal(c, a, "the kept tensor is handed out again");
  assert.notEqual(c, b);
  const d = pool.take(1, 8, true);
  assert.ok(d !== b && d !== c, "never a live one");
  for (const t of [b, c, d]) pool.give(t, true);
  assert.equal(pool.idleBytes, 3 * 8 * 4);
  const e = pool.take(1, 4, true), f = pool.take(1, 4, true);
  pool.give(e, true); // over the budget: freed
  assert.equal(pool.idleBytes, 3 * 8 * 4);
  pool.give(f, false); // not kept
  const wide = pool.take(1, 9, true), tall = pool.take(2, 8, true);
  pool.give(wide, true); // wider than maxCols
  pool.give(tall, true); // more than one row
  assert.equal(stats.made - stats.freed, 3, "only the three kept ones are held");
  const g = pool.take(1, 8, false);
  assert.ok(![b, c, d].includes(g), "reuse = false takes a new tensor");
  pool.freeAll();
  assert.equal(stats.made, stats.freed, "freeAll gives back live and kept tensors");
  assert.equal(pool.liveCount, 0);
  assert.equal(pool.idleBytes, 0);
});

for (
  const [name, make] of [
    ["reference", () => Promise.resolve(new ReferenceBackend())],
    ["wasm", () => WasmBackend.create()],
  ] as const
) {
  Deno.test(`${name}: decoding with kept temporaries equals plain decoding (stale values never read)`, async () => {
    for (const masked of [false, true]) {
      const plainModel = await loadModel(DIR, { backend: await make() });
      const spy = spied(await make(), { poison: true });
      const model = await loadModel(DIR, { backend: spy.be });
      const mask = masked ? halfMask(denseMask(model.config)) : null;
      const a = new Sequence(plainModel, {
        maxTokens: 32,
        mask: mask && prepareMask(plainModel, mask),
      });
      const b = new Sequence(model, { maxTokens: 32, mask: mask && prepareMask(model, mask) });
      assert.deepEqual([...await b.prefill(IDS)], [...await a.prefill(IDS)]);
      const made: number[] = [];
      for (const tok of [7, 3, 22, 9, 41]) {
        const before = spy.stats.madeRows1;
        const got = await b.decode(tok), want = await a.decode(tok);
        made.push(spy.stats.madeRows1 - before);
        const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
        assert.equal(bad, -1, `masked ${masked}: logit ${bad}: ${got[bad]} vs ${want[bad]}`);
      }
      console.log(`  ${name}, masked ${masked}: new one-row tensors per decode step ${made}`);
      // After the first step only the logits [1, V] (wider than any kept width) are new, and
      // on a backend without the fused FFN the gate and up rows of the layers they are too
      // wide to keep in.
      assert.ok(made.slice(1).every((n) => n === made[1]), `new tensors per step: ${made}`);
      assert.ok(made[1] < made[0], `new tensors per step: ${made}`);
      if (name === "wasm") assert.equal(made[1], 1, `new tensors per step: ${made}`);
      a.free();
      b.free();
      assert.equal(spy.live.size, 0, "free gave back the KV cache and every kept temporary");
    }
  });
}

Deno.test("a decode step that fails part-way gives back every tensor with the sequence", async () => {
  const wasm = await WasmBackend.create();
  const spy = spied(wasm);
  const model = await loadModel(DIR, { backend: spy.be });
  const warm = new Sequence(model, { maxTokens: 32 }); // grows the backend's scratch blocks
  await warm.prefill(IDS);
  await warm.decode(7);
  warm.free();
  const base = wasm.usedBytes;
  const s = new Sequence(model, { maxTokens: 32 });
  await s.prefill(IDS);
  const m0 = spy.stats.matmuls;
  await s.decode(7); // kept temporaries exist from here on
  const perStep = spy.stats.matmuls - m0;
  // Fail in the middle of the next step (a matmul of a middle layer).
  spy.opts.failAt = spy.stats.matmuls + Math.floor(perStep / 2);
  await assert.rejects(() => s.decode(3), /injected/);
  assert.ok(spy.live.size > 0, "the failed step left tensors to give back");
  s.free();
  assert.equal(spy.live.size, 0, "every tensor, live or kept, given back");
  assert.equal(wasm.usedBytes, base, "the heap is back where it was");
  await assert.rejects(() => s.decode(3), /freed/);
});

Deno.test("idleTempBudgetBytes covers every width of a one-token step", () => {
  const cfg = { hiddenSize: 576, numHeads: 9, numKvHeads: 3, headDim: 64 };
  // 3 [1, H] + q and att [1, S d] for S = 1..9 + k and v [1, S_kv d] for S_kv = 1..3.
  let want = 3 * 576;
  for (let s = 1; s <= 9; s++) want += 2 * s * 64;
  for (let s = 1; s <= 3; s++) want += 2 * s * 64;
  assert.equal(idleTempBudgetBytes(cfg), 4 * want);
});
