/**
 * Zod schemas of every request and response body the server speaks (OpenAI-compatible plus
 * the SEAP extension). Requests are strict: an unknown field is a 400, never silently ignored.
 * All schemas are registered in {@link apiRegistry} so `/openapi.json` is generated from them.
 */

import { z } from "zod";
import { badRequest } from "./errors.ts";

/** Registry of the schemas published as OpenAPI components (keyed by `id`). */
export const apiRegistry = z.registry<{ id: string; description?: string }>();

const MAX_STR = 1_000_000;

/** The SEAP extension of a request: which mask to run, at which sparsity. */
export const SeapRequest = z.strictObject({
  mask: z.string().min(1).max(128).optional().describe(
    '"auto" (router decides, default), "dense", "generic", or a task name from GET /v1/models',
  ),
  sparsity: z.number().min(0).max(1).optional().describe(
    "Pick among the mask set's available sparsities (default: the mask set's default)",
  ),
  special_tokens: z.boolean().optional().describe(
    "Parse chat content for the template's special tokens (trusted callers; the server must " +
      "run with SEAP_ALLOW_SPECIAL_TOKENS=1). Default: content is plain text.",
  ),
}).register(apiRegistry, { id: "SeapRequest" });

/** `stop`: one string or up to 4. */
const Stop = z.union([
  z.string().min(1).max(512),
  z.array(z.string().min(1).max(512)).max(4),
]).nullable().optional();

const StreamOptions = z.strictObject({
  include_usage: z.boolean().nullable().optional(),
}).nullable().optional();

/** Sampling and control fields shared by chat and text completions. */
const common = {
  model: z.string().min(1).max(256),
  max_tokens: z.int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  stop: Stop,
  seed: z.int().nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: StreamOptions,
  user: z.string().max(256).optional(),
  // Accepted only at their no-op values (checked in the handler, with a clear 400 otherwise).
  n: z.int().nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logit_bias: z.record(z.string(), z.number()).nullable().optional(),
  seap: SeapRequest.optional(),
};

const TextPart = z.strictObject({ type: z.literal("text"), text: z.string().max(MAX_STR) });

/** One chat message; content is a string or a list of text parts. */
export const ChatMessage = z.strictObject({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string().max(MAX_STR), z.array(TextPart).min(1).max(256)]),
  name: z.string().min(1).max(64).optional(),
}).register(apiRegistry, { id: "ChatMessage" });

/** POST /v1/chat/completions body. */
export const ChatCompletionRequest = z.strictObject({
  ...common,
  messages: z.array(ChatMessage).min(1).max(1024),
  max_completion_tokens: z.int().min(1).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.int().nullable().optional(),
  response_format: z.object({ type: z.string() }).nullable().optional(),
  tools: z.array(z.unknown()).nullable().optional(),
  tool_choice: z.unknown().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
}).register(apiRegistry, { id: "ChatCompletionRequest" });
/** Parsed chat request. */
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** POST /v1/completions body. */
export const CompletionRequest = z.strictObject({
  ...common,
  prompt: z.union([
    z.string().max(MAX_STR),
    z.array(z.string().max(MAX_STR)).min(1).max(16),
    z.array(z.int().min(0)).min(1).max(1_000_000),
    z.array(z.array(z.int().min(0)).min(1)).min(1).max(16),
  ]),
  echo: z.boolean().nullable().optional(),
  suffix: z.string().nullable().optional(),
  best_of: z.int().nullable().optional(),
  logprobs: z.int().nullable().optional(),
}).register(apiRegistry, { id: "CompletionRequest" });
/** Parsed text-completion request. */
export type CompletionRequest = z.infer<typeof CompletionRequest>;

/** POST /v1/route body: the router's decision for a prompt or a chat, without generating. */
export const RouteRequest = z.strictObject({
  model: z.string().min(1).max(256).optional(),
  prompt: z.string().max(MAX_STR).optional(),
  messages: z.array(ChatMessage).min(1).max(1024).optional(),
  seap: SeapRequest.optional(),
}).register(apiRegistry, { id: "RouteRequest" });
/** Parsed route request. */
export type RouteRequest = z.infer<typeof RouteRequest>;

/** The SEAP block present in every generation response. */
export const SeapInfo = z.object({
  mask: z.string().describe('Mask that ran, e.g. "reverse@0.5", "generic@0.5" or "dense"'),
  task: z.string().nullable().describe("Task the router picked (null when not routed)"),
  confidence: z.number().nullable().describe("Router confidence for that task"),
  sparsity: z.number().describe("Sparsity of the mask that ran (0 for dense)"),
  selection: z.enum(["auto", "fallback", "forced"]).describe(
    "auto: router's task mask; fallback: generic because confidence < threshold or the prompt belongs to no task; forced: the request chose",
  ),
}).register(apiRegistry, { id: "SeapInfo" });
/** SEAP response block. */
export type SeapInfo = z.infer<typeof SeapInfo>;

/** Token counts. */
export const Usage = z.object({
  prompt_tokens: z.int(),
  completion_tokens: z.int(),
  total_tokens: z.int(),
}).register(apiRegistry, { id: "Usage" });
/** Token counts. */
export type Usage = z.infer<typeof Usage>;

const FinishReason = z.enum(["stop", "length"]);

/** Non-streaming chat response. */
export const ChatCompletion = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.int(),
  model: z.string(),
  system_fingerprint: z.string().nullable(),
  choices: z.array(z.object({
    index: z.int(),
    message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
    logprobs: z.null(),
    finish_reason: FinishReason,
  })),
  usage: Usage,
  seap: SeapInfo,
}).register(apiRegistry, { id: "ChatCompletion" });

/** One SSE chunk of a streaming chat response. */
export const ChatCompletionChunk = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.int(),
  model: z.string(),
  system_fingerprint: z.string().nullable(),
  choices: z.array(z.object({
    index: z.int(),
    delta: z.object({ role: z.literal("assistant").optional(), content: z.string().optional() }),
    logprobs: z.null(),
    finish_reason: FinishReason.nullable(),
  })),
  usage: Usage.nullable().optional(),
  seap: SeapInfo.optional(),
}).register(apiRegistry, { id: "ChatCompletionChunk" });

/** Text completion response (also the shape of each streamed chunk). */
export const Completion = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.int(),
  model: z.string(),
  system_fingerprint: z.string().nullable(),
  choices: z.array(z.object({
    index: z.int(),
    text: z.string(),
    logprobs: z.null(),
    finish_reason: FinishReason.nullable(),
  })),
  usage: Usage.nullable().optional(),
  seap: SeapInfo.optional(),
}).register(apiRegistry, { id: "Completion" });

/** One mask the server can run. */
export const MaskEntry = z.object({
  name: z.string(),
  task: z.string().nullable(),
  sparsity: z.number(),
  kind: z.enum(["dense", "generic", "task", "baseline"]),
  removed: z.object({
    params: z.number(),
    bytes_per_token: z.number(),
    flops_per_token: z.number(),
  }).describe(
    "Shares of the dense model the mask removes: decoder-layer parameters, weight bytes read " +
      "per decoded token, FLOPs per decoded token",
  ),
}).register(apiRegistry, { id: "MaskEntry" });

/** GET /v1/models response. */
export const ModelList = z.object({
  object: z.literal("list"),
  data: z.array(z.object({
    id: z.string(),
    object: z.literal("model"),
    created: z.int(),
    owned_by: z.string(),
    seap: z.object({
      tasks: z.array(z.string()),
      sparsities: z.array(z.number()),
      default_sparsity: z.number(),
      router_threshold: z.number(),
      protected_layers: z.int(),
      max_context: z.int().describe(
        "Largest prompt + completion tokens accepted: the model's limit, or less when the " +
          "backend's memory cannot hold that many tokens of KV cache at the configured concurrency",
      ),
      max_context_reason: z.string().describe('"model", or why the context is capped lower'),
      memory: z.object({
        free_bytes: z.int(),
        kv_bytes_per_token: z.int(),
        max_concurrent: z.int(),
        memory_safe_context: z.int(),
      }).nullable().describe("The memory-aware admission's inputs (null: no memory limit known)"),
      masks: z.array(MaskEntry),
    }),
  })),
}).register(apiRegistry, { id: "ModelList" });

/** POST /v1/route response. */
export const RouteResponse = z.object({
  object: z.literal("seap.route"),
  model: z.string(),
  prompt_tokens: z.int(),
  task: z.string().nullable(),
  confidence: z.number().nullable(),
  threshold: z.number(),
  mask: z.string(),
  selection: z.enum(["auto", "fallback", "forced"]),
}).register(apiRegistry, { id: "RouteResponse" });

/** OpenAI-shaped error body. */
export const ErrorResponse = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
}).register(apiRegistry, { id: "ErrorResponse" });

/**
 * Validate `body` against `schema`; on failure throw a 400 naming the first offending field.
 */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const key = [...path, issue.keys[0]].join(".");
    throw badRequest(`Unrecognized request argument supplied: ${key}`, key, "unknown_parameter");
  }
  const param = path.length ? path.join(".") : null;
  throw badRequest(
    `Invalid value${param ? ` for '${param}'` : " for the request body"}: ${issue.message}`,
    param,
    "invalid_value",
  );
}
