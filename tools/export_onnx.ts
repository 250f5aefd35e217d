/**
 * Export a model, dense or physically pruned by one of its SEAP masks, to ONNX with a KV cache,
 * so a task's pruned model runs in any onnxruntime-based runtime.
 *
 *   deno task export-onnx --out reverse.onnx --mask reverse@0.5
 */

import { parseArgs } from "node:util";
import { exportOnnx } from "../lib/export/onnx_export.ts";
import { loadMaskSet } from "../lib/calibrate/mask_io.ts";
import { loadModel } from "../lib/model/model.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";

const HELP = `usage: deno task export-onnx --out FILE [--model DIR] [--masks DIR] [--mask NAME]

  --model DIR   Hugging Face model folder (default: the embedded default model)
  --masks DIR   mask set made by 'deno task calibrate' (default: masks/<model name>)
  --mask NAME   mask to prune by, e.g. reverse@0.5 or generic@0.2 (default: dense export)
  --out FILE    where to write the .onnx file

Inputs: input_ids, position_ids [1, T] int64 and past_key.L / past_value.L [1, kv_L, P, d];
outputs: logits [1, T, V] and present_key.L / present_value.L.`;

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: DEFAULT_MODEL_DIR },
      masks: { type: "string" },
      mask: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.out) {
    console.log(HELP);
    Deno.exit(values.help ? 0 : 2);
  }
  const dir = values.model!;
  let mask;
  if (values.mask) {
    const model = await loadModel(dir);
    const maskDir = values.masks ??
      new URL(`../masks/${model.name}`, import.meta.url).pathname;
    const set = await loadMaskSet(maskDir, model);
    mask = set.masks.get(values.mask);
    if (!mask) {
      console.error(
        `unknown mask "${values.mask}"; available: ${[...set.masks.keys()].join(", ")}`,
      );
      Deno.exit(2);
    }
  }
  const exp = await exportOnnx(dir, mask);
  await Deno.writeFile(values.out, exp.bytes);
  console.log(
    `wrote ${values.out} (${(exp.bytes.length / 1e6).toFixed(1)} MB, ${
      mask ? `pruned by ${mask.name}` : "dense"
    })`,
  );
}
