/**
 * A model folder laid out the way transformers.js (and Optimum) load ONNX decoders:
 * `onnx/model.onnx` next to the source folder's config, generation config and tokenizer files.
 */

import { join } from "node:path";

/** Files copied from the source folder when present. */
const SIDE_FILES = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/** Write `onnx` as `outDir/onnx/model.onnx` with `srcDir`'s config and tokenizer files. */
export async function writeOnnxFolder(
  srcDir: string,
  outDir: string,
  onnx: Uint8Array,
): Promise<void> {
  await Deno.mkdir(join(outDir, "onnx"), { recursive: true });
  await Deno.writeFile(join(outDir, "onnx", "model.onnx"), onnx);
  for (const f of SIDE_FILES) {
    try {
      await Deno.copyFile(join(srcDir, f), join(outDir, f));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
