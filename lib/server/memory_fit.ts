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
import { defaultMemoryLimit } from "../backends/wasm_memory.ts";
import type { ModelConfig } from "../model/config.ts";
import { idleTempBudgetBytes } from "../model/temp_pool.ts";
import { readConfig } from "../model/model.ts";

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
  // K and V: [L][n_kv * maxT, d_h] f32 per sequence at its full budget (the paged cache's most).
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

/** Bytes of one sequence's KV cache per token: K and V, every layer, f32 (lib/model/sequence.ts). */
export function kvBytesPerToken(
  cfg: Pick<ModelConfig, "numLayers" | "numKvHeads" | "headDim">,
): number {
  return cfg.numLayers * 2 * cfg.numKvHeads * cfg.headDim * 4;
}

/** Bytes an allocator that rounds blocks up to powers of two (the WASM one) gives `bytes`. */
function pow2(bytes: number): number {
  return bytes <= 64 ? 64 : 2 ** Math.ceil(Math.log2(bytes));
}

/**
 * Bytes the KV caches of one sequence may hold at its peak when it can grow to `tokens` (a
 * request's prompt + max_tokens, the `maxTokens` of its lib/model/sequence.ts `Sequence`): per
 * layer a K and a V tensor `[n_kv * cap, d_h]` f32 with `cap <= tokens`, plus, while the paged
 * cache grows (lib/model/kv_cache.ts), one layer's old K and V, each rounded up to a power of
 * two as the WASM allocator does (an upper bound for any backend), plus the one-token step's
 * temporaries the sequence keeps between steps (lib/model/temp_pool.ts; twice its budget for
 * the same rounding). A sequence that stays short holds only its pages; this is what admission
 * charges for the longest it may get.
 */
export function sequenceKvBytes(
  cfg: Pick<ModelConfig, "numLayers" | "numKvHeads" | "headDim" | "hiddenSize" | "numHeads">,
  tokens: number,
): number {
  return (cfg.numLayers + 1) * 2 * pow2(cfg.numKvHeads * tokens * cfg.headDim * 4) +
    2 * idleTempBudgetBytes(cfg);
}

/**
 * Bytes set aside for one forward step's temporaries (prefill runs `chunk` tokens at a time):
 * the largest live activations (logits, and per token the hidden state, its norm, q, k, v,
 * the attention output and one FFN row of scratch), doubled for the allocator's rounding to
 * powers of two.
 */
export function stepReserveBytes(
  cfg: Pick<
    ModelConfig,
    "hiddenSize" | "intermediateSize" | "numHeads" | "numKvHeads" | "headDim" | "vocabSize"
  >,
  chunk: number,
): number {
  const perToken = 2 * cfg.hiddenSize + 2 * cfg.numHeads * cfg.headDim +
    2 * cfg.numKvHeads * cfg.headDim + cfg.intermediateSize;
  return 2 * 4 * (cfg.vocabSize + Math.max(1, chunk) * perToken);
}

/**
 * The largest context (prompt + completion tokens) whose KV caches fit `freeBytes` when
 * `maxConcurrent` sequences hold it at once, plus one more of that length (a long prompt is
 * routed on a scratch head pass while its own sequence exists, lib/server/generation.ts) and
 * one step's temporaries (`chunk` prompt tokens per step; 0 = whole prompts). 0 when not even
 * one token fits.
 */
export function memorySafeContext(
  cfg: Pick<
    ModelConfig,
    | "numLayers"
    | "hiddenSize"
    | "intermediateSize"
    | "numHeads"
    | "numKvHeads"
    | "headDim"
    | "vocabSize"
  >,
  opts: { freeBytes: number; maxConcurrent: number; chunk: number },
): number {
  // Prefill runs `chunk` tokens per step (a whole prompt when chunking is off).
  const fits = (t: number) =>
    (opts.maxConcurrent + 1) * sequenceKvBytes(cfg, t) +
        stepReserveBytes(cfg, opts.chunk > 0 ? Math.min(opts.chunk, t) : t) <= opts.freeBytes;
  if (!fits(1)) return 0;
  let lo = 1, hi = 2;
  while (fits(hi) && hi < 2 ** 40) lo = hi, hi *= 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The WASM memory limit for serving `dir` in `weights`: SEAP_MAX_MEMORY when set, else by the
 * weights' size (lib/backends/wasm_memory.ts, defaultMemoryLimit). On "auto" a limit that cannot
 * be chosen (no permission to read the host's memory) is left to the backend's 4 GiB default,
 * since a GPU may serve the model; on "wasm" it is the error.
 */
export async function memoryLimitFor(
  dir: string,
  weights: WeightDType,
  configured: number | null,
  backend: string,
): Promise<number | undefined> {
  if (configured !== null) return configured;
  if (backend !== "wasm" && backend !== "auto") return undefined;
  const { config } = await readConfig(dir);
  const fp = estimateFootprint(config, { weights, maxConcurrent: 1, context: 1 });
  try {
    return defaultMemoryLimit(fp.weights);
  } catch (e) {
    if (backend === "wasm") throw e;
    return undefined;
  }
}
