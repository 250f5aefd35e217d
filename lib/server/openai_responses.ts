/**
 * The bodies the server sends, built in one place: chat and text completions, their streamed
 * chunks, usage, the route decision, the model card and the x-seap-* headers. Each matches its
 * zod schema in schemas.ts (tests/server_responses_test.ts parses what is actually sent).
 * Key order is part of the answer (clients may compare bytes): keep it.
 */

import type { MaskInfo } from "../masks/resolve.ts";
import type { Admission } from "./admission.ts";
import type { ServerEngine } from "./engine_handle.ts";
import type { FinishReason, GenerationResult } from "./generation.ts";
import type { Usage } from "./schemas.ts";

/** Which completion endpoint an answer is for. */
export type CompletionKind = "chat" | "completions";

/** Fields every completion body and chunk starts with. */
export interface ResponseBase {
  id: string;
  created: number;
  model: string;
  system_fingerprint: string;
}

/** A fresh id and timestamp for one completion of `e`. */
export function responseBase(kind: CompletionKind, e: ServerEngine): ResponseBase {
  return {
    id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`,
    created: Math.floor(Date.now() / 1000),
    model: e.modelId,
    system_fingerprint: `seap-${e.model.fingerprint.slice(0, 12)}`,
  };
}

/** Token counts of a finished generation. */
export function usageOf(r: GenerationResult): Usage {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
  };
}

/** A whole (non-streamed) chat or text completion. */
export function completionBody(
  kind: CompletionKind,
  base: ResponseBase,
  text: string,
  r: GenerationResult,
  info: MaskInfo,
) {
  return kind === "chat"
    ? {
      ...base,
      object: "chat.completion" as const,
      choices: [{
        index: 0,
        message: { role: "assistant" as const, content: text, refusal: null },
        logprobs: null,
        finish_reason: r.finishReason,
      }],
      usage: usageOf(r),
      seap: info,
    }
    : {
      ...base,
      object: "text_completion" as const,
      choices: [{ index: 0, text, logprobs: null, finish_reason: r.finishReason }],
      usage: usageOf(r),
      seap: info,
    };
}

/** What one streamed chunk carries. */
export interface ChunkContent {
  /** New text, or null for none (the first and the last chunk). */
  delta: string | null;
  /** Set on the last chunk. */
  finish: FinishReason | null;
  /** The first chunk: opens the assistant's message (chat). */
  first?: boolean;
}

/**
 * One streamed chunk. The first and the last carry the mask (`seap`); with
 * `stream_options.include_usage` every chunk has `usage: null` until the usage chunk.
 */
export function completionChunk(
  kind: CompletionKind,
  base: ResponseBase,
  c: ChunkContent,
  info: MaskInfo,
  includeUsage: boolean,
) {
  const tail = {
    ...(includeUsage ? { usage: null } : {}),
    ...(c.first || c.finish ? { seap: info } : {}),
  };
  return kind === "chat"
    ? {
      ...base,
      object: "chat.completion.chunk" as const,
      choices: [{
        index: 0,
        delta: c.first
          ? { role: "assistant" as const, content: "" }
          : c.delta === null
          ? {}
          : { content: c.delta },
        logprobs: null,
        finish_reason: c.finish,
      }],
      ...tail,
    }
    : {
      ...base,
      object: "text_completion" as const,
      choices: [{ index: 0, text: c.delta ?? "", logprobs: null, finish_reason: c.finish }],
      ...tail,
    };
}

/** The usage chunk after the last one (`stream_options.include_usage`). */
export function usageChunk(kind: CompletionKind, base: ResponseBase, r: GenerationResult) {
  const object = kind === "chat" ? "chat.completion.chunk" as const : "text_completion" as const;
  return { ...base, object, choices: [], usage: usageOf(r) };
}

/** POST /v1/route's answer. */
export function routeBody(e: ServerEngine, promptTokens: number, info: MaskInfo) {
  return {
    object: "seap.route" as const,
    model: e.modelId,
    prompt_tokens: promptTokens,
    task: info.task,
    confidence: info.confidence,
    threshold: e.catalog.threshold,
    mask: info.mask,
    selection: info.selection,
  };
}

/** The /v1/models card of the loaded model. */
export function modelCard(e: ServerEngine, admission: Admission | null | undefined) {
  const c = e.catalog;
  return {
    id: e.modelId,
    object: "model" as const,
    created: e.created,
    owned_by: "seap",
    seap: {
      tasks: c.tasks,
      sparsities: c.sparsities,
      default_sparsity: c.defaultSparsity,
      router_threshold: c.threshold,
      protected_layers: c.protectedLayers,
      max_context: e.maxContext,
      max_context_reason: e.contextLimit ?? "model",
      memory: admission
        ? {
          free_bytes: admission.freeBytes,
          kv_bytes_per_token: admission.kvBytesPerToken,
          max_concurrent: admission.maxConcurrent,
          memory_safe_context: admission.memorySafeContext,
        }
        : null,
      masks: c.entries.map((m) => ({
        name: m.name,
        task: m.task,
        sparsity: m.sparsity,
        kind: m.kind,
        removed: {
          params: m.removed.params,
          bytes_per_token: m.removed.bytesPerToken,
          flops_per_token: m.removed.flopsPerToken,
        },
      })),
    },
  };
}

/** x-seap-* headers of an answer served by the mask `info`. */
export function seapHeaders(info: MaskInfo): Record<string, string> {
  return {
    "x-seap-mask": info.mask,
    "x-seap-task": info.task ?? "none",
    "x-seap-confidence": info.confidence === null ? "none" : info.confidence.toFixed(4),
    "x-seap-sparsity": String(info.sparsity),
    "x-seap-selection": info.selection,
  };
}
