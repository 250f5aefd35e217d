/**
 * GGUF round trip in llama.cpp (node-llama-cpp 3.21.1, `deno task llama-cpp:install`): the
 * exported files, dense and physically pruned (deci), give the engine's greedy tokens, the
 * engine's first-step log-probabilities, and its tokenizer's ids. Skipped, with the reason
 * printed, when node-llama-cpp is not installed.
 *
 * Tolerances (worst |log p| difference over tokens with p > 1e-9, first step): F32 1e-3 with
 * llama.cpp's F32 KV cache and no flash attention (measured ≤ 1e-5); F16 3e-2 (weights rounded
 * to 11 bits); Q8_0 0.25 (weights and, in llama.cpp's dot products, activations rounded to 8
 * bits; measured 0.09 on the default model).
 */

import assert from "node:assert/strict";
import { exportGguf, type GgufWeightType } from "../lib/export/gguf_export.ts";
import { writeGgufFile } from "../lib/export/gguf_writer.ts";
import { LlamaCpp, llamaCppMissing } from "../lib/export/llama_cpp.ts";
import { loadMaskSet } from "../lib/masks/mask_io.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import type { Mask } from "../lib/model/mask.ts";
import { prepareMask } from "../lib/model/prepared_mask.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { unevenMask } from "./helpers/uneven_mask.ts";
import { argmax } from "../lib/generate/sampler.ts";

const missing = await llamaCppMissing();
if (missing) console.log(`skipping the llama.cpp GGUF round trip: ${missing}`);

const TOL: Record<GgufWeightType, number> = { f32: 1e-3, f16: 3e-2, q8_0: 0.25 };
const STEPS = 12;

/** The engine's greedy tokens (steps + 1) and its first-step log-softmax. */
async function engine(model: Model, mask: Mask | undefined, ids: number[]) {
  const seq = new Sequence(model, { mask: mask ? prepareMask(model, mask) : null, maxTokens: 128 });
  let logits = await seq.prefill(Int32Array.from(ids));
  const mx = Math.max(...logits);
  const lse = mx + Math.log(logits.reduce((a, v) => a + Math.exp(v - mx), 0));
  const logp = logits.map((v) => v - lse);
  const tokens: number[] = [];
  for (let i = 0; i <= STEPS; i++) {
    tokens.push(argmax(logits));
    if (i < STEPS) logits = await seq.decode(tokens[i]);
  }
  seq.free();
  return { tokens, logp };
}

async function roundTrip(
  dir: string,
  type: GgufWeightType,
  mask: Mask | undefined,
  ids: number[],
): Promise<void> {
  const model = await loadModel(dir);
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  await writeGgufFile(path, (await exportGguf(dir, type, mask)).parts);
  const lc = await LlamaCpp.open(path, { precise: true, contextSize: 128 });
  try {
    const got = await lc.run(ids, STEPS, true);
    const want = await engine(model, mask, ids);
    let worst = 0, at = -1;
    want.logp.forEach((lp, i) => {
      const p = got.firstProbs![i] ?? 0;
      if (Math.exp(lp) < 1e-9 && p < 1e-9) return;
      const e = Math.abs(Math.log(p) - lp);
      if (!(e <= worst)) [worst, at] = [e, i];
    });
    const label = `${dir.split("/").pop()} ${type} ${mask?.name ?? "dense"}`;
    console.log(`${label}: worst |log p| difference ${worst.toExponential(2)} at token ${at}`);
    assert.ok(worst < TOL[type], `${label}: worst ${worst} at ${at} (tolerance ${TOL[type]})`);
    assert.deepEqual(got.tokens, want.tokens, `${label}: greedy tokens`);
  } finally {
    await lc.close();
    await Deno.remove(path);
  }
}

const fixture = (n: string) => new URL(`./fixtures/${n}`, import.meta.url).pathname;
const FIXTURE_IDS = [1, 7, 22, 35, 50, 61, 72, 80, 90, 11];

for (const type of ["f32", "f16", "q8_0"] as const) {
  Deno.test({
    name: `llama.cpp runs the default model's GGUF (${type}, dense) like the engine`,
    ignore: missing !== null,
    async fn() {
      const tok = await Tokenizer.load(DEFAULT_MODEL_DIR);
      const prompt = tok.applyChatTemplate([{
        role: "user",
        content: "Reverse the letters: j g t v s",
      }], { addGenerationPrompt: true });
      await roundTrip(
        DEFAULT_MODEL_DIR,
        type,
        undefined,
        tok.encode(prompt, { addSpecialTokens: false }),
      );
    },
  });
}

for (const type of ["f32", "q8_0"] as const) {
  Deno.test({
    name: `llama.cpp runs the default model pruned by reverse@0.5 (${type}, deci) like the engine`,
    ignore: missing !== null,
    async fn() {
      const model = await loadModel(DEFAULT_MODEL_DIR);
      const set = await loadMaskSet(
        new URL("../masks/seap-tiny-skills", import.meta.url).pathname,
        model,
      );
      const tok = await Tokenizer.load(DEFAULT_MODEL_DIR);
      const prompt = tok.applyChatTemplate([{
        role: "user",
        content: "Reverse the letters: j g t v s",
      }], { addGenerationPrompt: true });
      const ids = tok.encode(prompt, { addSpecialTokens: false });
      await roundTrip(DEFAULT_MODEL_DIR, type, set.masks.get("reverse@0.5")!, ids);
    },
  });
}

for (const name of ["llama_gqa_llama3rope", "llama_linear_rope_tied", "mistral"]) {
  Deno.test({
    name: `llama.cpp runs fixture ${name} (f32, dense) like the engine`,
    ignore: missing !== null,
    fn: () => roundTrip(fixture(name), "f32", undefined, FIXTURE_IDS),
  });
}

Deno.test({
  name: "llama.cpp runs a fixture pruned with uneven GQA groups and an empty layer (deci)",
  ignore: missing !== null,
  async fn() {
    const dir = fixture("llama_gqa_llama3rope");
    const model = await loadModel(dir);
    await roundTrip(dir, "f32", unevenMask(model.config), FIXTURE_IDS);
  },
});

Deno.test({
  name: "llama.cpp tokenizes like the engine's tokenizer (vocabulary, merges, special tokens)",
  ignore: missing !== null,
  async fn() {
    const tok = await Tokenizer.load(DEFAULT_MODEL_DIR);
    const path = await Deno.makeTempFile({ suffix: ".gguf" });
    await writeGgufFile(path, (await exportGguf(DEFAULT_MODEL_DIR, "f32")).parts);
    const lc = await LlamaCpp.open(path);
    try {
      const texts = [
        tok.applyChatTemplate([{ role: "user", content: "What is the capital of France?" }], {
          addGenerationPrompt: true,
        }),
        "Sort the digits: 9 1 4 4 0",
        "The movie was great, I loved it!  Sentiment: positive\n\nnext",
        "unusual wörds, 123 × 7 = 861 😀",
      ];
      for (const t of texts) {
        assert.deepEqual(await lc.tokenize(t), tok.encode(t, { addSpecialTokens: false }), t);
      }
    } finally {
      await lc.close();
      await Deno.remove(path);
    }
  },
});
