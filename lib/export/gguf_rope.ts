/**
 * RoPE conventions between Hugging Face Llama checkpoints and llama.cpp's `llama` / `deci`
 * architectures. HF rotates the pair (i, i + d/2) of each head ("rotate_half"); llama.cpp's
 * normal RoPE rotates (2i, 2i + 1). Reordering each head's q and k rows so that row 2i + j
 * holds HF row j * d/2 + i makes the two agree (convert_hf_to_gguf.py's `permute`). Llama 3
 * frequency scaling travels as `rope_freqs.weight`, the factor each base frequency is divided by.
 */

import type { ModelConfig } from "../model/config.ts";
import { ropeInvFreq } from "../model/rope.ts";

/**
 * Reorder the rows of a `[heads * d, cols]` projection (row-major) head by head, from HF's
 * half-split rotary layout to llama.cpp's interleaved one: out row h*d + 2i + j = in row
 * h*d + j*d/2 + i.
 */
export function permuteRopeRows(w: Float32Array, d: number, cols: number): Float32Array {
  const rows = w.length / cols;
  if (rows % d !== 0 || d % 2 !== 0) {
    throw new Error(`permuteRopeRows: ${rows} rows do not split into heads of ${d}`);
  }
  const out = new Float32Array(w.length);
  const half = d / 2;
  for (let h = 0; h < rows / d; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * d + j * half + i) * cols;
        out.set(w.subarray(src, src + cols), (h * d + 2 * i + j) * cols);
      }
    }
  }
  return out;
}

/**
 * llama.cpp's `rope_freqs` `[d/2]`: base frequency over the scaled one, per pair, for Llama 3
 * scaling (null when the config has none or uses linear scaling, which is a metadata key).
 */
export function ropeFreqFactors(cfg: ModelConfig): Float32Array | null {
  if (cfg.ropeScaling.type !== "llama3") return null;
  const scaled = ropeInvFreq(cfg);
  const d = cfg.headDim;
  return Float32Array.from(
    scaled,
    (s, i) => 1 / Math.pow(cfg.ropeTheta, (2 * i) / d) / s,
  );
}
