/**
 * The harness's measures against truth known by construction:
 * - a uniform model (LM head all zeros, so every logit is equal) has perplexity equal to its
 *   vocabulary size, with disjoint and with overlapping rolling windows;
 * - on that model a choice's log-likelihood is -(tokens * ln V), so acc picks the choice with
 *   fewest tokens and acc_norm the one with fewest tokens per byte: rows built so that they
 *   disagree score acc 0 / acc_norm 1 and the reverse;
 * - the right choice known by construction: on the fixture chat model, the greedy path beats
 *   the same path with its last token replaced (and only the greedy path is flagged greedy);
 * - WinoGrande partial scoring picks the context under which the continuation, prefilled from
 *   scratch, is likeliest;
 * - GSM8K's last-number rule.
 */

import assert from "node:assert/strict";
import { evaluateDataset } from "../lib/eval/benchmark_eval.ts";
import type { Dataset } from "../lib/eval/datasets.ts";
import { lastNumber, lastNumberMatches } from "../lib/eval/last_number.ts";
import { encodeChoices, scoreForked, scoreFromScratch } from "../lib/eval/loglik.ts";
import { rollingNll } from "../lib/eval/rolling_perplexity.ts";
import {
  parseSafetensors,
  serializeSafetensors,
  type TensorToWrite,
  toFloat32,
} from "../lib/formats/safetensors.ts";
import { argmax } from "../lib/generate/sampler.ts";
import { loadModel } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { writeRandomModel } from "../tools/make_random_model.ts";

const CHAT = new URL("./fixtures/tiny_chat", import.meta.url).pathname;
const V = 307; // the fixture tokenizer's vocabulary

/** A random model with the fixture tokenizer whose LM head is all zeros. */
async function uniformModelDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "uniform-model-" });
  await writeRandomModel(dir, {
    hidden: 32,
    intermediate: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    vocab: V,
    tied: false,
  }, 3);
  const f = parseSafetensors(await Deno.readFile(`${dir}/model.safetensors`));
  const t: Record<string, TensorToWrite> = {};
  for (const [name, st] of f.tensors) {
    const data = toFloat32(st);
    if (name === "lm_head.weight") data.fill(0);
    t[name] = { dtype: "F32", shape: st.shape, data };
  }
  await Deno.writeFile(`${dir}/model.safetensors`, serializeSafetensors(t));
  for (const n of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(`${CHAT}/${n}`, `${dir}/${n}`);
  }
  return dir;
}

const UNIFORM = await uniformModelDir();

Deno.test("perplexity of a uniform model equals its vocabulary size", async () => {
  const model = await loadModel(UNIFORM);
  const ids = Array.from({ length: 50 }, (_, i) => (i * 37) % V);
  // Tokens fed (lm-eval's rolling windows: a window feeds min(end, window) tokens for window
  // ends end): window 16 ends at 16, 32, 48, 50 -> 64; stride 5 ends at 5, 10, ..., 50 ->
  // 5 + 10 + 15 + 7 * 16 = 142; one window of 64 feeds the 50 tokens once.
  for (const [window, stride, feeds] of [[16, 16, 64], [16, 5, 142], [64, 64, 50]]) {
    const { nll, fed } = await rollingNll(model, null, 302, ids, window, stride);
    assert.equal(fed, feeds);
    const ppl = Math.exp(nll / ids.length);
    assert.ok(Math.abs(ppl - V) < 1e-6 * V, `window ${window} stride ${stride}: ppl ${ppl}`);
  }
  const tok = await Tokenizer.load(UNIFORM);
  const ds: Dataset = {
    kind: "text",
    task: "text",
    source: "inline",
    rows: [
      { task: "text", id: "a", text: "The quick brown fox jumps over the lazy dog. ".repeat(8) },
      { task: "text", id: "b", text: "Short one." },
    ],
  };
  const r = await evaluateDataset(model, tok, ds, { kind: "fixed", mask: null }, { window: 32 });
  assert.ok(
    Math.abs(r.metrics.token_perplexity - V) < 1e-6 * V,
    String(r.metrics.token_perplexity),
  );
  // bits per byte = log2(V) * tokens / bytes.
  const tokens = ds.rows.reduce(
    (a, x) => a + tok.encode(x.text, { addSpecialTokens: false }).length,
    0,
  );
  const bytes = ds.rows.reduce((a, x) => a + new TextEncoder().encode(x.text).length, 0);
  assert.ok(Math.abs(r.metrics.bits_per_byte - Math.log2(V) * tokens / bytes) < 1e-9);
});

Deno.test("acc and acc_norm disagree where the construction says they must", async () => {
  const model = await loadModel(UNIFORM);
  const tok = await Tokenizer.load(UNIFORM);
  const context = "Question: which one?\nAnswer:";
  const short = " no";
  const long = " the quick brown fox jumps over the lazy dog";
  const enc = encodeChoices(tok, context, [short, long]);
  const [ns, nl] = enc.continuations.map((c) => c.length);
  const bs = new TextEncoder().encode(short).length, bl = new TextEncoder().encode(long).length;
  // Preconditions of the construction: fewer tokens for `short`, fewer tokens per byte for `long`.
  assert.ok(ns < nl && nl / bl < ns / bs, `tokens ${ns}/${nl}, bytes ${bs}/${bl}`);
  const ds: Dataset = {
    kind: "choice",
    task: "mc",
    source: "inline",
    rows: [
      { task: "mc", id: "gold-long", context, choices: [short, long], gold: 1 },
      { task: "mc", id: "gold-short", context, choices: [short, long], gold: 0 },
      { task: "mc", id: "gold-long-again", context, choices: [long, short], gold: 0 },
    ],
  };
  const one = async (i: number) =>
    (await evaluateDataset(model, tok, { ...ds, rows: [ds.rows[i]] } as Dataset, {
      kind: "fixed",
      mask: null,
    })).metrics;
  assert.deepEqual(await one(0), { acc: 0, acc_norm: 1 });
  assert.deepEqual(await one(1), { acc: 1, acc_norm: 0 });
  assert.deepEqual(await one(2), { acc: 0, acc_norm: 1 });
  const all = await evaluateDataset(model, tok, ds, { kind: "fixed", mask: null });
  assert.ok(
    Math.abs(all.metrics.acc - 1 / 3) < 1e-12 && Math.abs(all.metrics.acc_norm - 2 / 3) < 1e-12,
  );
});

Deno.test("WinoGrande partial scoring picks the context under which the continuation is likeliest", async () => {
  const model = await loadModel(CHAT);
  const tok = await Tokenizer.load(CHAT);
  const contexts = ["Anna lent Bo a pen because Anna", "Anna lent Bo a pen because Bo"];
  const continuation = " needed one.";
  // Independent truth: each context + continuation prefilled from scratch.
  const lp = [];
  for (const c of contexts) {
    const e = encodeChoices(tok, c, [continuation]);
    lp.push((await scoreFromScratch(model, null, e.context, e.continuations[0])).logprob);
  }
  assert.notEqual(lp[0], lp[1]);
  const best = lp[0] > lp[1] ? 0 : 1;
  const row = { task: "wg", id: "1", contexts, continuation, gold: best };
  const ds: Dataset = {
    kind: "partial",
    task: "wg",
    source: "inline",
    rows: [row, { ...row, id: "2", gold: 1 - best }, { ...row, id: "3" }],
  };
  const r = await evaluateDataset(model, tok, ds, { kind: "fixed", mask: null });
  assert.ok(Math.abs(r.metrics.acc - 2 / 3) < 1e-12, String(r.metrics.acc));
});

Deno.test("continuations longer than the window are scored by rolling windows", async () => {
  const model = await loadModel(CHAT);
  const ctx = [302, 40, 71, 88, 9, 120, 33];
  const cont = [5, 9, 17, 33, 40, 41, 60, 70];
  const want = await scoreFromScratch(model, null, ctx, cont);
  // One window holding everything: the same as scoring from scratch.
  const one = await rollingNll(model, null, ctx[0], [...ctx.slice(1), ...cont], 64, 64, 6);
  assert.ok(Math.abs(-one.nll - want.logprob) < 1e-5, `${-one.nll} vs ${want.logprob}`);
  // Through the harness with a 6-token window on the uniform model: -(tokens ln V) per choice,
  // so the choice with fewer tokens still wins and every row counts as cut.
  const um = await loadModel(UNIFORM);
  const tok = await Tokenizer.load(UNIFORM);
  const short = " the cat sat down", long = " the cat sat on the mat all day";
  const n = encodeChoices(tok, "Q:", [short, long]).continuations.map((c) => c.length);
  assert.ok(n[0] >= 6 && n[1] > n[0], String(n));
  const ds: Dataset = {
    kind: "choice",
    task: "mc",
    source: "inline",
    rows: [{ task: "mc", id: "1", context: "Q:", choices: [long, short], gold: 1 }],
  };
  const r = await evaluateDataset(um, tok, ds, { kind: "fixed", mask: null }, { maxTokens: 6 });
  assert.equal(r.metrics.acc, 1);
  assert.equal(r.truncated, 1);
});

Deno.test("the right choice is known by construction: the greedy path wins", async () => {
  const model = await loadModel(CHAT);
  const ctx = Int32Array.from([302, 40, 71, 88, 9, 120, 33]);
  const seq = new Sequence(model, { maxTokens: ctx.length + 3 });
  let logits = await seq.prefill(ctx);
  const last = logits;
  const greedy: number[] = [];
  for (let i = 0; i < 3; i++) {
    greedy.push(argmax(logits));
    if (i < 2) logits = await seq.decode(greedy[i]);
  }
  seq.free();
  const base = new Sequence(model, { maxTokens: ctx.length + 3 });
  assert.deepEqual([...(await base.prefill(ctx))], [...last]);
  const wrong = [0, 1, 2, 3].map((k) => {
    const x = (greedy[2] + 1 + k * 17) % V;
    return [greedy[0], greedy[1], x];
  });
  const s = await scoreForked(base, last, [...wrong.slice(0, 2), greedy, ...wrong.slice(2)]);
  base.free();
  const best = s.reduce((b, x, i) => (x.logprob > s[b].logprob ? i : b), 0);
  assert.equal(best, 2);
  assert.deepEqual(s.map((x) => x.greedy), [false, false, true, false, false]);
});

Deno.test("GSM8K: the last number of the answer, commas and dollars ignored", () => {
  assert.equal(lastNumber("She makes 9 * 2 = $18 every day.\n#### 18"), "18");
  assert.equal(lastNumber("no digits here"), null);
  assert.equal(lastNumber("a total of 1,234.50 dollars"), "1234.50");
  assert.ok(lastNumberMatches("so 3 + 4 = 7. The answer is 72.", "72"));
  assert.ok(lastNumberMatches("it costs $1,000", "1000"));
  assert.ok(lastNumberMatches("answer: -5", "-5"));
  assert.ok(!lastNumberMatches("72 was not it, it is 73", "72"));
  assert.ok(!lastNumberMatches("", "72"));
});

Deno.test("remove the uniform model", async () => {
  await Deno.remove(UNIFORM, { recursive: true });
});
