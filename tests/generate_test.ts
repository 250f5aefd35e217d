/**
 * Generation on the tiny chat fixture: greedy decode through the KV cache equals re-running the
 * whole prefix from scratch each step; seeds replay; max tokens, EOS and stop strings end it
 * the way OpenAI clients expect.
 */

import assert from "node:assert/strict";
import { loadModel } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { generate, Generation, type GenerationOptions } from "../lib/generate/generate.ts";
import { argmax } from "../lib/generate/sampler.ts";

const DIR = new URL("./fixtures/tiny_chat", import.meta.url).pathname;
const model = await loadModel(DIR);
const tok = await Tokenizer.load(DIR);
const detok = (ids: number[]) => tok.decode(ids, { skipSpecialTokens: true });
const prompt = Int32Array.from(tok.encode(
  tok.applyChatTemplate([{ role: "user", content: "Reverse the word: garden" }], {
    addGenerationPrompt: true,
  }),
  { addSpecialTokens: false },
));

async function run(
  opts: Partial<GenerationOptions>,
): Promise<{ text: string; ids: number[]; reason: string }> {
  const seq = new Sequence(model, { maxTokens: 256 });
  const g = new Generation(seq, await seq.prefill(prompt), detok, {
    maxTokens: 12,
    eosTokenIds: [],
    temperature: 0,
    ...opts,
  });
  let text = "";
  const ids: number[] = [];
  while (!g.done) {
    const r = await g.step();
    text += r.text;
    if (r.tokenId !== null) ids.push(r.tokenId);
  }
  seq.free();
  return { text, ids, reason: g.finishReason! };
}

Deno.test("greedy generation equals argmax over full re-prefills (KV cache is exact)", async () => {
  const { ids, reason } = await run({ maxTokens: 10 });
  assert.equal(reason, "length");
  assert.equal(ids.length, 10);
  const ctx = [...prompt];
  for (let i = 0; i < 10; i++) {
    const s = new Sequence(model, { maxTokens: 256 });
    const next = argmax(await s.prefill(Int32Array.from(ctx)));
    assert.equal(ids[i], next, `step ${i}`);
    ctx.push(next);
    s.free();
  }
});

Deno.test("seeded sampling replays; another seed differs", async () => {
  const a = await run({ temperature: 1, seed: 42, maxTokens: 16 });
  const b = await run({ temperature: 1, seed: 42, maxTokens: 16 });
  const c = await run({ temperature: 1, seed: 43, maxTokens: 16 });
  assert.deepEqual(a.ids, b.ids);
  assert.notDeepEqual(a.ids, c.ids);
});

Deno.test("EOS and stop strings end generation with finish_reason stop", async () => {
  const base = await run({ maxTokens: 12 });
  const eos = await run({ eosTokenIds: [base.ids[3]] });
  assert.equal(eos.reason, "stop");
  assert.ok(eos.ids.length <= 4);
  // A stop string from the middle of the greedy text cuts the output just before it.
  const text = base.text;
  const chars = [...text];
  assert.ok(chars.length >= 4, `greedy text too short for the stop test: ${JSON.stringify(text)}`);
  const stop = chars.slice(2, 4).join("");
  const cut = await run({ stop: [stop] });
  assert.equal(cut.reason, "stop");
  assert.equal(cut.text, text.slice(0, text.indexOf(stop)));
});

Deno.test("generate() yields deltas that add up to the full text and honours abort", async () => {
  const seq = new Sequence(model, { maxTokens: 256 });
  const logits = await seq.prefill(prompt);
  let all = "";
  const opts = { maxTokens: 12, eosTokenIds: [], temperature: 0 };
  for await (const d of generate(seq, logits, detok, opts)) all += d;
  assert.equal(all, (await run({})).text);
  const ac = new AbortController();
  const s2 = new Sequence(model, { maxTokens: 256 });
  let n = 0;
  for await (const _ of generate(s2, await s2.prefill(prompt), detok, opts, ac.signal)) {
    n++;
    ac.abort();
  }
  assert.ok(n <= 1);
});
