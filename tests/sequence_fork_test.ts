/**
 * Sequence.fork on every backend: continuations scored from forks of one prefilled context
 * equal each continuation scored from scratch (context + continuation prefilled at once in a
 * fresh sequence) within 1e-5 in log-likelihood, dense and under a mask that prunes a whole kv
 * group; the parent is left untouched by its forks; a fork may have a larger capacity.
 */

import assert from "node:assert/strict";
import type { Backend } from "../lib/backends/backend.ts";
import { scoreForked, scoreFromScratch } from "../lib/eval/loglik.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import { type PreparedMask, prepareMask } from "../lib/model/prepared_mask.ts";
import { ContextError, Sequence } from "../lib/model/sequence.ts";
import { rng } from "./helpers/seeded.ts";
import { kvGroupMask } from "./helpers/kv_group_mask.ts";
import { BACKENDS, destroyTestBackends } from "./helpers/test_backends.ts";

const DIR = new URL("./fixtures/tiny_chat", import.meta.url).pathname;

async function worstForkError(model: Model, mask: PreparedMask | null, seed: number) {
  const r = rng(seed);
  const V = model.config.vocabSize;
  const ctx = Int32Array.from({ length: 13 }, () => Math.floor(r() * V));
  const conts = [1, 4, 2, 6].map((n) => Array.from({ length: n }, () => Math.floor(r() * V)));
  const seq = new Sequence(model, { maxTokens: ctx.length + 5, mask });
  const last = await seq.prefill(ctx);
  const forked = await scoreForked(seq, last, conts);
  assert.equal(seq.length, ctx.length, "forks must not grow the parent");
  let worst = 0, at = 0;
  for (const [i, c] of conts.entries()) {
    const want = await scoreFromScratch(model, mask, ctx, c);
    const e = Math.abs(forked[i].logprob - want.logprob);
    if (!(e <= worst)) [worst, at] = [e, i];
    assert.equal(forked[i].greedy, want.greedy, `choice ${i}: greedy flag`);
  }
  // The parent still decodes as if it had never been forked.
  const fresh = new Sequence(model, { maxTokens: ctx.length + 1, mask });
  await fresh.prefill(ctx);
  const a = await seq.decode(conts[1][0]);
  const b = await fresh.decode(conts[1][0]);
  let parentErr = 0;
  for (let i = 0; i < V; i++) parentErr = Math.max(parentErr, Math.abs(a[i] - b[i]));
  seq.free();
  fresh.free();
  return { worst, at, parentErr };
}

for (const bc of BACKENDS) {
  const made = await bc.make();
  const skip = typeof made === "string" ? made : null;
  Deno.test({
    name: `${bc.name}: forked KV cache scores = scores from scratch (1e-5)${
      skip ? ` (skipped: ${skip})` : ""
    }`,
    ignore: skip !== null,
    fn: async () => {
      const model = await loadModel(DIR, { backend: made as Backend });
      for (
        const [what, mask] of [
          ["dense", null],
          ["kv group 0 pruned", prepareMask(model, kvGroupMask(model, "fork-test"))],
        ] as const
      ) {
        const { worst, at, parentErr } = await worstForkError(model, mask, 11);
        console.log(
          `  ${bc.name} ${what}: worst |logprob diff| ${worst.toExponential(3)} at choice ${at}` +
            `, parent logits after forks ${parentErr.toExponential(3)}`,
        );
        assert.ok(worst <= 1e-5, `${what}: worst |diff| ${worst} at choice ${at}`);
        assert.equal(parentErr, 0, `${what}: the parent changed after its forks`);
      }
    },
  });
}

Deno.test("fork: a larger capacity than the parent's; refused when too small or pending", async () => {
  const model = await loadModel(DIR);
  const ids = Int32Array.from([5, 9, 17, 33, 40]);
  const s = new Sequence(model, { maxTokens: 6 });
  const last = await s.prefill(ids);
  const big = s.fork({ maxTokens: 20 });
  assert.equal(big.length, 5);
  // Six more tokens would overflow the parent (capacity 6) but fit the fork.
  const cont = [7, 8, 9, 10, 11, 12, 13];
  const [got] = await scoreForked(big, last, [cont]);
  const want = await scoreFromScratch(model, null, ids, cont);
  assert.ok(Math.abs(got.logprob - want.logprob) <= 1e-5, `${got.logprob} vs ${want.logprob}`);
  await assert.rejects(() => s.fork().prefill(Int32Array.from(cont)), ContextError);
  assert.throws(() => s.fork({ maxTokens: 3 }), ContextError);
  const p = new Sequence(model, { maxTokens: 10 });
  await p.prefillHead(ids, 1);
  assert.throws(() => p.fork(), /pending/);
  for (const x of [s, big, p]) x.free();
});

// Not a test: the WebGPU devices this file made are destroyed once its tests have run.
Deno.test.afterAll(() => {
  destroyTestBackends();
});
