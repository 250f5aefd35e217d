/**
 * The ONNX export in transformers.js (@huggingface/transformers 4.x, `deno task
 * transformers-js:install`, local files only), as a new user would load it: the dense and the
 * reverse@0.5-pruned exports of the default model generate the engine's greedy tokens, alone
 * and as one left-padded batch of prompts of different lengths. Skipped, with the reason
 * printed, when the package is not installed.
 */

import assert from "node:assert/strict";
import { exportOnnx } from "../lib/export/onnx_export.ts";
import { writeOnnxFolder } from "../lib/export/onnx_folder.ts";
import { transformersJsGreedy, transformersJsMissing } from "../lib/export/transformers_js.ts";
import { loadMaskSet } from "../lib/masks/mask_io.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import type { Mask } from "../lib/model/mask.ts";
import { prepareMask } from "../lib/model/prepared_mask.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";

const missing = await transformersJsMissing();
if (missing) console.log(`skipping the transformers.js ONNX round trip: ${missing}`);

const STEPS = 12;

/** The engine's greedy continuation, up to and including the first EOS. */
async function engineGreedy(model: Model, mask: Mask | undefined, ids: number[], eos: number[]) {
  const seq = new Sequence(model, { mask: mask ? prepareMask(model, mask) : null, maxTokens: 128 });
  let logits = await seq.prefill(Int32Array.from(ids));
  const out: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    let b = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[b]) b = j;
    out.push(b);
    if (eos.includes(b) || i === STEPS - 1) break;
    logits = await seq.decode(b);
  }
  seq.free();
  return out;
}

const untilEos = (xs: number[], eos: number[]) => {
  const i = xs.findIndex((x) => eos.includes(x));
  return i < 0 ? xs : xs.slice(0, i + 1);
};

for (const maskName of [null, "reverse@0.5"]) {
  Deno.test({
    name: `transformers.js runs the ${
      maskName ?? "dense"
    } ONNX export with the engine's greedy tokens`,
    ignore: missing !== null,
    async fn() {
      const model = await loadModel(DEFAULT_MODEL_DIR);
      const tok = await Tokenizer.load(DEFAULT_MODEL_DIR);
      let mask: Mask | undefined;
      if (maskName) {
        const dir = new URL("../masks/seap-tiny-skills", import.meta.url).pathname;
        mask = (await loadMaskSet(dir, model)).masks.get(maskName)!;
      }
      const prompts = [
        "Reverse the letters: j g t v s",
        "What is the capital of France?",
        "Sort the digits: 9 1 4 4 0 7 2",
      ].map((content) =>
        tok.encode(
          tok.applyChatTemplate([{ role: "user", content }], { addGenerationPrompt: true }),
          {
            addSpecialTokens: false,
          },
        )
      );
      const out = await Deno.makeTempDir();
      try {
        await writeOnnxFolder(
          DEFAULT_MODEL_DIR,
          out,
          (await exportOnnx(DEFAULT_MODEL_DIR, mask)).bytes,
        );
        const eos = model.config.eosTokenIds;
        const got = await transformersJsGreedy(out, prompts, STEPS, 5);
        for (const [i, p] of prompts.entries()) {
          const want = await engineGreedy(model, mask, p, eos);
          assert.deepEqual(untilEos(got.single[i], eos), want, `prompt ${i} alone`);
          assert.deepEqual(untilEos(got.batched[i], eos), want, `prompt ${i} in a padded batch`);
        }
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  });
}
