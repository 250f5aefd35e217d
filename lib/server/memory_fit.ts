/**
 * Will a model fit a platform's memory limit? The footprint is estimated from config.json
 * alone: the weights as the backend stores them (f32 or f16; norms stay f32), the KV caches of
 * every concurrent sequence at the full context, one forward pass's largest activations, and
 * a fixed runtime base: V8, the tokenizer, the WASM module and the host copies made while
 * loading. The base is measured: the server process with the default model peaked at 201 MiB
 * resident in the end-to-end test (tests/server_hard_test.ts), of which the model parts
 * estimated here are about 27 MiB.
 */

import type { WeightDType } from "../backends/backend.ts";
import type { ModelConfig } from "../model/config.ts";

/** Bytes of the runtime besides the model (V8, Hono, tokenizer, WASM code, load buffers). */
export const RUNTIME_BASE_BYTES = 176 * 2 ** 20;

/** The footprint's parts, in bytes. */
export interface Footprint {
  weights: number;
  kvCache: number;
  activations: number;
  runtime: number;
  total: number;
}

/** Estimated resident bytes of serving `cfg` with `maxConcurrent` sequences of `context`. */
export function estimateFootprint(
  cfg: Pick<
    ModelConfig,
    | "hiddenSize"
    | "intermediateSize"
    | "numLayers"
    | "numHeads"
    | "numKvHeads"
    | "headDim"
    | "vocabSize"
    | "tieWordEmbeddings"
  >,
  opts: { weights: WeightDType; maxConcurrent: number; context: number },
): Footprint {
  const { hiddenSize: H, intermediateSize: I, numLayers: L, numHeads: nh, numKvHeads: nkv } = cfg;
  const d = cfg.headDim;
  const perLayer = H * nh * d * 2 + H * nkv * d * 2 + 3 * H * I; // q, o, k, v, gate/up/down
  const embed = cfg.vocabSize * H * (cfg.tieWordEmbeddings ? 1 : 2);
  // q8: 36-byte blocks of 32 weights (lib/formats/q8.ts).
  const es = opts.weights === "f16" ? 2 : opts.weights === "q8" ? 36 / 32 : 4;
  const weights = (perLayer * L + embed) * es;
  // K and V: [L][n_kv * maxT, d_h] f32 per sequence, allocated at the full budget.
  const kvCache = opts.maxConcurrent * L * 2 * nkv * opts.context * d * 4;
  // Largest live activations of one pass: logits [V] and a [T, I] FFN block at a 64-token chunk.
  const activations = (cfg.vocabSize + 64 * (I + 4 * H)) * 4 * opts.maxConcurrent;
  const total = weights + kvCache + activations + RUNTIME_BASE_BYTES;
  return { weights, kvCache, activations, runtime: RUNTIME_BASE_BYTES, total };
}

/** MiB with one decimal. */
function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Compare a footprint with a memory limit; the message says what does not fit and what to
 * change (fewer concurrent sequences, a shorter context, f16 weights, a smaller model).
 */
export function checkMemoryFit(
  fp: Footprint,
  limitBytes: number,
  what: string,
  weights: WeightDType = "f32",
): { fits: boolean; message: string } {
  const parts = `weights ${mib(fp.weights)} + KV caches ${mib(fp.kvCache)} + activations ${
    mib(fp.activations)
  } + runtime ${mib(fp.runtime)}`;
  if (fp.total <= limitBytes) {
    return {
      fits: true,
      message: `${what}: ${mib(fp.total)} of ${mib(limitBytes)} (${parts})`,
    };
  }
  return {
    fits: false,
    message: `${what} does not fit: it needs about ${mib(fp.total)} (${parts}) but the ` +
      `platform allows ${mib(limitBytes)}. Lower SEAP_MAX_CONCURRENT or SEAP_MAX_CONTEXT, ` +
      `${
        weights === "f32"
          ? "use SEAP_WEIGHTS=q8 or f16, "
          : weights === "f16"
          ? "use SEAP_WEIGHTS=q8, "
          : ""
      }or deploy a smaller model.`,
  };
}
