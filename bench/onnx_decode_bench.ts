/**
 * onnxruntime-web's decode and prefill speed on the same model, as the dense peer of the
 * engine's decode bench: the model is exported to ONNX (dense) and run with the wasm EP.
 *
 *   deno run -A bench/onnx_decode_bench.ts [--model DIR] [--tokens 16]
 */

import { parseArgs } from "node:util";
import { exportOnnx } from "../lib/export/onnx_export.ts";
import { OnnxDecoder } from "../lib/export/onnx_decoder.ts";
import type { Mask } from "../lib/model/mask.ts";
import type { DecodeRow } from "./decode_bench.ts";

/** Time onnxruntime-web on an exported model (dense, or physically pruned by `mask`). */
export async function runOnnxDecodeBench(
  modelDir: string,
  opts: { tokens?: number; promptLen?: number; mask?: Mask; threads?: number } = {},
): Promise<DecodeRow> {
  const exp = await exportOnnx(modelDir, opts.mask);
  const dec = await OnnxDecoder.create(exp, opts.threads ?? 1);
  const promptLen = opts.promptLen ?? 32;
  const tokens = opts.tokens ?? 16;
  const ids = Array.from({ length: promptLen }, (_, i) => 2 + (i * 31) % 200);
  let t0 = performance.now();
  await dec.forward(ids);
  const prefill = promptLen / ((performance.now() - t0) / 1000);
  await dec.forward([5]); // warm-up
  t0 = performance.now();
  for (let i = 0; i < tokens; i++) await dec.forward([3 + (i % 50)]);
  const decode = tokens / ((performance.now() - t0) / 1000);
  await dec.release();
  return {
    model: modelDir.replace(/\/+$/, "").split("/").pop()!,
    backend: "onnxruntime-web",
    mask: opts.mask ? `onnx-${opts.mask.name}` : "dense",
    decodeTokS: decode,
    prefillTokS: prefill,
    idealSpeedup: 1,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { model: { type: "string" }, tokens: { type: "string", default: "16" } },
  });
  if (!values.model) {
    console.error("usage: onnx_decode_bench.ts --model DIR [--tokens N]");
    Deno.exit(2);
  }
  const r = await runOnnxDecodeBench(values.model, { tokens: Number(values.tokens) });
  console.log(
    `${r.model}: onnxruntime-web decode ${r.decodeTokS.toFixed(2)} tok/s, prefill ${
      r.prefillTokS.toFixed(1)
    } tok/s`,
  );
}
