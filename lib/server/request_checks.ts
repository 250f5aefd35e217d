/**
 * From a parsed request body to what a job needs: the endpoint's refusals of options this
 * server does not support, the prompt as token ids, the completion budget that fits the
 * context, and the sampling settings. Every check throws an OpenAI-shaped {@link ApiError}.
 */

import { TokenizerError } from "../text/tokenizer.ts";
import type { MaskRequest } from "../masks/resolve.ts";
import { COMPLETIONS_MAX_TOKENS } from "./config.ts";
import type { ServerEngine } from "./engine_handle.ts";
import type { GenerationParams } from "./generation.ts";
import { ApiError, badRequest, notFound, tooLarge } from "./errors.ts";
import type { CompletionKind } from "./openai_responses.ts";
import type { ChatCompletionRequest, CompletionRequest, RouteRequest } from "./schemas.ts";

/** A completion request, checked and tokenized: the generation's settings plus the answer's. */
export interface CompletionJobSpec
  extends
    Pick<GenerationParams, "promptIds" | "maxTokens" | "temperature" | "topP" | "seed" | "stop"> {
  kind: CompletionKind;
  seap: MaskRequest | undefined;
  stream: boolean;
  includeUsage: boolean;
}

/**
 * POST /v1/chat/completions. `allowSpecialTokens`: whether a request may ask for its content
 * to be parsed for the template's special tokens (trusted callers only).
 */
export function chatSpec(
  e: ServerEngine,
  r: ChatCompletionRequest,
  allowSpecialTokens: boolean,
): CompletionJobSpec {
  checkModel(e, r.model);
  checkCommon(r);
  if (r.logprobs) throw unsupported("logprobs");
  if (r.top_logprobs !== undefined && r.top_logprobs !== null) throw unsupported("top_logprobs");
  if (r.tools && r.tools.length > 0) throw unsupported("tools");
  if (r.tool_choice !== undefined && r.tool_choice !== null && r.tool_choice !== "none") {
    throw unsupported("tool_choice");
  }
  if (r.response_format && r.response_format.type !== "text") {
    throw unsupported("response_format");
  }
  if (
    r.max_tokens != null && r.max_completion_tokens != null &&
    r.max_tokens !== r.max_completion_tokens
  ) {
    throw badRequest(
      "max_tokens and max_completion_tokens disagree; give one",
      "max_completion_tokens",
      "invalid_value",
    );
  }
  const ids = chatIds(e, r.messages, specialTokens(r.seap, allowSpecialTokens));
  const explicit = r.max_completion_tokens ?? r.max_tokens ?? null;
  const maxParam = r.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
  const maxTokens = checkContext(
    e,
    ids.length,
    explicit,
    true,
    "messages",
    maxParam,
    e.defaultMaxTokens,
  );
  return spec("chat", r, ids, maxTokens);
}

/** POST /v1/completions. */
export function completionSpec(e: ServerEngine, r: CompletionRequest): CompletionJobSpec {
  checkModel(e, r.model);
  checkCommon(r);
  if (r.echo) throw unsupported("echo");
  if (r.suffix) throw unsupported("suffix");
  if (r.best_of != null && r.best_of !== 1) throw unsupported("best_of", "best_of > 1");
  if (r.logprobs != null) throw unsupported("logprobs");
  let ids: number[];
  const p = r.prompt;
  if (typeof p === "string") ids = textIds(e, p);
  else if (p.length > 1 && typeof p[0] !== "number") {
    throw badRequest(
      "Batched prompts (a list of several prompts) are not supported; send one prompt per request",
      "prompt",
      "unsupported_parameter",
    );
  } else if (typeof p[0] === "string") ids = textIds(e, p[0]);
  else if (typeof p[0] === "number") ids = checkIds(e, p as number[]);
  else ids = checkIds(e, (p as number[][])[0]);
  if (r.seap?.special_tokens !== undefined) {
    throw badRequest(
      "seap.special_tokens applies to chat messages; a text prompt is raw text already",
      "seap.special_tokens",
      "invalid_value",
    );
  }
  const maxTokens = checkContext(
    e,
    ids.length,
    r.max_tokens ?? null,
    true,
    "prompt",
    "max_tokens",
    COMPLETIONS_MAX_TOKENS,
  );
  return spec("completions", r, ids, maxTokens);
}

/** POST /v1/route: the prompt ids to route (and the request's mask choice). */
export function routeSpec(
  e: ServerEngine,
  r: RouteRequest,
  allowSpecialTokens: boolean,
): { promptIds: number[]; seap: MaskRequest | undefined } {
  if (r.model !== undefined) checkModel(e, r.model);
  if ((r.prompt === undefined) === (r.messages === undefined)) {
    throw badRequest("Give exactly one of 'prompt' or 'messages'", "prompt", "invalid_value");
  }
  const special = specialTokens(r.seap, allowSpecialTokens);
  const ids = r.messages ? chatIds(e, r.messages, special) : textIds(e, r.prompt!);
  checkContext(e, ids.length, 0, false, r.messages ? "messages" : "prompt", null);
  return { promptIds: ids, seap: r.seap };
}

function spec(
  kind: CompletionKind,
  r: ChatCompletionRequest | CompletionRequest,
  promptIds: number[],
  maxTokens: number,
): CompletionJobSpec {
  const stream = r.stream === true;
  return {
    kind,
    promptIds,
    maxTokens,
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    seed: r.seed ?? Math.floor(Math.random() * 2 ** 32),
    stop: r.stop == null ? [] : typeof r.stop === "string" ? [r.stop] : r.stop,
    seap: r.seap as MaskRequest | undefined,
    stream,
    includeUsage: stream && r.stream_options?.include_usage === true,
  };
}

/** Whether the request's chat content is parsed for special tokens (trusted callers only). */
function specialTokens(
  seap: { special_tokens?: boolean } | undefined,
  allowed: boolean,
): boolean {
  if (seap?.special_tokens !== true) return false;
  if (!allowed) {
    throw badRequest(
      "seap.special_tokens is disabled on this server (SEAP_ALLOW_SPECIAL_TOKENS); message content is encoded as plain text",
      "seap.special_tokens",
      "special_tokens_disabled",
    );
  }
  return true;
}

function unsupported(param: string, what = param): ApiError {
  return badRequest(`'${what}' is not supported by this server`, param, "unsupported_parameter");
}

/** 404 unless `model` is the served model's id. */
export function checkModel(e: ServerEngine, model: string): void {
  if (model !== e.modelId) {
    throw notFound(
      `The model '${model}' does not exist; this server serves '${e.modelId}'`,
      "model",
      "model_not_found",
    );
  }
}

function checkCommon(r: ChatCompletionRequest | CompletionRequest): void {
  if (r.n != null && r.n !== 1) throw unsupported("n", "n > 1");
  if (r.presence_penalty) throw unsupported("presence_penalty", "presence_penalty ≠ 0");
  if (r.frequency_penalty) throw unsupported("frequency_penalty", "frequency_penalty ≠ 0");
  if (r.logit_bias && Object.keys(r.logit_bias).length > 0) throw unsupported("logit_bias");
  if (r.stream_options && r.stream !== true) {
    throw badRequest(
      "stream_options is only allowed when stream is true",
      "stream_options",
      "invalid_value",
    );
  }
}

/** " (reason)" when the context is capped below the model's own limit (e.g. by memory). */
function why(e: ServerEngine): string {
  return e.contextLimit ? ` (${e.contextLimit})` : "";
}

/**
 * Check the prompt fits and return the completion budget. A prompt that fills the context is
 * a 413 naming `promptParam`; an explicit budget that overflows it a 400 naming `maxParam`
 * (OpenAI's context_length_exceeded).
 */
function checkContext(
  e: ServerEngine,
  promptLen: number,
  explicitMax: number | null,
  generating: boolean,
  promptParam: string,
  maxParam: string | null,
  defaultMax = COMPLETIONS_MAX_TOKENS,
): number {
  if (promptLen === 0) throw badRequest("The prompt is empty", promptParam, "empty_prompt");
  const room = e.maxContext - promptLen;
  if (room < (generating ? 1 : 0)) {
    throw tooLarge(
      `This model's maximum context length is ${e.maxContext} tokens${
        why(e)
      }; the prompt has ${promptLen}`,
      promptParam,
      "context_length_exceeded",
    );
  }
  if (explicitMax !== null) {
    if (explicitMax > room) {
      throw badRequest(
        `This model's maximum context length is ${e.maxContext} tokens${
          why(e)
        }; the prompt has ${promptLen} and ${maxParam} asks for ${explicitMax}`,
        maxParam,
        "context_length_exceeded",
      );
    }
    return explicitMax;
  }
  return Math.min(defaultMax, room);
}

/**
 * Chat messages → prompt ids. Content is encoded as plain text: a special token typed into a
 * message ("<|end|>") stays text, and only the template's own markup yields special ids,
 * unless a trusted caller opted in (`special`).
 */
function chatIds(
  e: ServerEngine,
  messages: ChatCompletionRequest["messages"],
  special: boolean,
): number[] {
  let chars = 0;
  for (const m of messages) {
    chars += typeof m.content === "string"
      ? m.content.length
      : m.content.reduce((a, p) => a + p.text.length, 0);
  }
  checkChars(e, chars, "messages");
  const msgs = messages.map((m) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
  }));
  try {
    return special
      ? e.tokenizer.encode(
        e.tokenizer.applyChatTemplate(msgs, { addGenerationPrompt: true }),
        { addSpecialTokens: false },
      )
      : e.tokenizer.encodeChat(msgs, { addGenerationPrompt: true });
  } catch (err) {
    if (err instanceof TokenizerError) {
      throw badRequest(
        `The chat template rejected the messages: ${err.message}`,
        "messages",
        "invalid_value",
      );
    }
    throw err;
  }
}

/** Refuse text that cannot fit the context before spending time tokenizing it. */
function checkChars(e: ServerEngine, chars: number, param: string): void {
  if (chars > e.maxPromptChars) {
    throw tooLarge(
      `This model's maximum context length is ${e.maxContext} tokens${
        why(e)
      }; the prompt has ${chars} characters, far more than fits`,
      param,
      "context_length_exceeded",
    );
  }
}

function textIds(e: ServerEngine, text: string): number[] {
  checkChars(e, text.length, "prompt");
  return e.tokenizer.encode(text, { addSpecialTokens: true });
}

function checkIds(e: ServerEngine, ids: number[]): number[] {
  const V = e.model.config.vocabSize;
  const bad = ids.findIndex((i) => i >= V);
  if (bad >= 0) {
    throw badRequest(
      `Token id ${ids[bad]} is outside the vocabulary [0, ${V})`,
      "prompt",
      "invalid_value",
    );
  }
  return ids;
}
