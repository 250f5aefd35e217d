/**
 * Export a model, dense or physically pruned by one of its SEAP masks, as ONNX (with a KV cache,
 * for onnxruntime and transformers.js) or as GGUF (for llama.cpp).
 *
 *   deno task export --format gguf --type q8_0 --mask reverse@0.5 --out reverse.gguf
 *   deno task export --format onnx --mask reverse@0.5 --out reverse   (a transformers.js folder)
 */

import { parseArgs } from "node:util";
import { exportOnnx } from "../lib/export/onnx_export.ts";
import { exportGguf, type GgufWeightType } from "../lib/export/gguf_export.ts";
import { writeGgufFile } from "../lib/export/gguf_writer.ts";
import { writeOnnxFolder } from "../lib/export/onnx_folder.ts";
import { loadMaskSet } from "../lib/masks/mask_io.ts";
import type { Mask } from "../lib/model/mask.ts";
import { loadModel } from "../lib/model/model.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";

const HELP = `usage: deno task export --format onnx|gguf --out FILE [--type f32|f16|q8_0]
                        [--model DIR] [--masks DIR] [--mask NAME]

  --format F    onnx (default) or gguf
  --type T      GGUF weight type: f32 (default), f16 or q8_0 (blocks of 32 int8 + f16 scale)
  --model DIR   Hugging Face model folder (default: the embedded default model)
  --masks DIR   mask set made by 'deno task calibrate' (default: masks/<model name>)
  --mask NAME   mask to prune by, e.g. reverse@0.5 or generic@0.2 (default: dense export)
  --out PATH    where to write: a file (.onnx / .gguf), or for ONNX a folder that
                transformers.js loads (PATH/onnx/model.onnx + config and tokenizer files)

ONNX: inputs input_ids, attention_mask, position_ids [B, T] int64 and
past_key_values.L.key / .value [B, kv_L, P, d]; outputs logits [B, T, V] and
present.L.key / .value (the transformers.js / Optimum names).
GGUF: architecture llama (dense) or deci (pruned: per-layer head and FFN sizes, the mask's
bias compensation as attn_output.bias / ffn_down.bias), the BPE tokenizer and chat template.`;

async function pickMask(dir: string, masksDir: string | undefined, name: string): Promise<Mask> {
  const model = await loadModel(dir);
  const maskDir = masksDir ?? new URL(`../masks/${model.name}`, import.meta.url).pathname;
  const set = await loadMaskSet(maskDir, model);
  const mask = set.masks.get(name);
  if (!mask) {
    throw new Error(`unknown mask "${name}"; available: ${[...set.masks.keys()].join(", ")}`);
  }
  return mask;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      format: { type: "string", default: "onnx" },
      type: { type: "string", default: "f32" },
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
  const format = values.format!;
  const type = values.type!;
  if (format !== "onnx" && format !== "gguf") {
    console.error(`--format must be onnx or gguf, got "${format}"`);
    Deno.exit(2);
  }
  if (!["f32", "f16", "q8_0"].includes(type) || (format === "onnx" && type !== "f32")) {
    console.error(`--type must be f32, f16 or q8_0 (ONNX: f32 only), got "${type}"`);
    Deno.exit(2);
  }
  try {
    const dir = values.model!;
    const mask = values.mask ? await pickMask(dir, values.masks, values.mask) : undefined;
    const what = mask ? `pruned by ${mask.name}` : "dense";
    let bytes: number;
    if (format === "onnx") {
      const exp = await exportOnnx(dir, mask);
      if (values.out.endsWith(".onnx")) await Deno.writeFile(values.out, exp.bytes);
      else await writeOnnxFolder(dir, values.out, exp.bytes);
      bytes = exp.bytes.length;
    } else {
      const exp = await exportGguf(dir, type as GgufWeightType, mask, (l, n) => {
        Deno.stderr.writeSync(new TextEncoder().encode(`\rencoding layer ${l}/${n}`));
        if (l === n) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
      });
      bytes = await writeGgufFile(values.out, exp.parts);
      const ffn = exp.layers.map((l) => l.ffn).join(",");
      const heads = exp.layers.map((l) => `${l.heads}/${l.kvHeads}`).join(",");
      console.log(`architecture ${exp.arch}; per layer heads/kv ${heads}; FFN ${ffn}`);
      if (exp.padding.heads || exp.padding.neurons) {
        console.log(
          `zero-weight padding: ${exp.padding.heads} query heads, ${exp.padding.neurons} neurons`,
        );
      }
      if (exp.fallbacks.length) {
        console.log(`kept as F16 (width not a multiple of 32): ${exp.fallbacks.join(", ")}`);
      }
    }
    console.log(`wrote ${values.out} (${(bytes / 1e6).toFixed(1)} MB, ${format} ${type}, ${what})`);
  } catch (e) {
    console.error(`export failed: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
