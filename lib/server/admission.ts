/**
 * Memory-aware admission: on a backend with a hard memory limit (WASM), the context the
 * server advertises (/v1/models `max_context`) and accepts is capped so that the configured
 * number of concurrent sequences fit their KV caches in the memory the backend has left after
 * loading. A request beyond it is refused up front by the context check (a 400/413 naming the
 * parameter) instead of running the backend out of memory mid-generation. Each sequence is
 * charged what its KV cache can grow to (prompt + max_tokens, at most the advertised context;
 * `sequenceKvBytes`); the cache itself grows in pages (lib/model/kv_cache.ts), so a short
 * request holds only the pages it used.
 */

import type { ServerEngine } from "./engine_handle.ts";
import { kvBytesPerToken, memorySafeContext } from "./memory_fit.ts";

/** What {@link admitByMemory} found, for logs and the model card. */
export interface Admission {
  /** Bytes the backend can still give (its limit less what it holds). */
  freeBytes: number;
  /** KV cache bytes one sequence needs per token. */
  kvBytesPerToken: number;
  /** The largest memory-safe context at the configured concurrency. */
  memorySafeContext: number;
  /** Concurrent sequences the context was sized for. */
  maxConcurrent: number;
}

/**
 * Cap `e.maxContext` (and the prompt-length pre-check) to what fits in memory with
 * `maxConcurrent` sequences. Call once, when the engine is loaded and no sequence is live.
 * Returns null (and changes nothing) on a backend without a known memory limit.
 */
export function admitByMemory(
  e: ServerEngine,
  opts: { maxConcurrent: number; prefillChunk: number },
): Admission | null {
  const be = e.model.backend;
  if (be.memoryLimitBytes === undefined || be.usedBytes === undefined) return null;
  const freeBytes = Math.max(0, be.memoryLimitBytes - be.usedBytes);
  const cfg = e.model.config;
  const safe = memorySafeContext(cfg, {
    freeBytes,
    maxConcurrent: Math.max(1, opts.maxConcurrent),
    chunk: opts.prefillChunk,
  });
  if (safe < e.maxContext) {
    e.maxPromptChars = Math.ceil(e.maxPromptChars * safe / e.maxContext);
    e.maxContext = safe;
    e.contextLimit = `memory: ${opts.maxConcurrent} concurrent sequences of ${safe} tokens ` +
      `fit the ${(freeBytes / 2 ** 20).toFixed(1)} MiB the ${be.name} backend has left`;
  }
  return {
    freeBytes,
    kvBytesPerToken: kvBytesPerToken(cfg),
    memorySafeContext: safe,
    maxConcurrent: opts.maxConcurrent,
  };
}
