/**
 * The HTTP layer: a Hono app over one loaded engine. Tests drive it with `app.request()` or
 * a real `Deno.serve`; production serves it with `deno serve main.ts`.
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models(/:id),
 * POST /v1/route, GET /healthz, GET /metrics, GET /openapi.json.
 */

import { Hono } from "hono";
import { ApiError, badRequest, notFound, notReady, toApiError, tooLarge } from "./errors.ts";
import { EngineHandle, type ServerEngine } from "./engine_handle.ts";
import { type FinishReason, GenerationJob, HealthProbeJob, RouteJob } from "./generation.ts";
import type { MaskChoice, MaskRequest } from "./mask_catalog.ts";
import { ServerMetrics } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";
import { Scheduler } from "./scheduler.ts";
import {
  ChatCompletionRequest,
  CompletionRequest,
  parseBody,
  RouteRequest,
  type SeapInfo,
  type Usage,
} from "./schemas.ts";
import { SSE_HEADERS, SseStream } from "./sse.ts";
import { readJsonBody } from "./read_body.ts";
import { TokenizerError } from "../text/tokenizer.ts";
import { type Admission, admitByMemory } from "./admission.ts";

/** Limits of the app (see config.ts for their env vars). */
export interface AppOptions {
  maxConcurrent: number;
  queueSize: number;
  timeoutMs: number;
  maxBodyBytes: number;
  /** Most ms a client may take to send its request body (0 = no limit); then a 408. */
  readTimeoutMs: number;
  /**
   * Whether a request may ask (`"seap": {"special_tokens": true}`) for its chat content to be
   * parsed for the template's special tokens. Off by default: content is plain text.
   */
  allowSpecialTokens: boolean;
  /** Prompts longer than this prefill in chunks between other sequences' steps (0 = off). */
  prefillChunk: number;
  /** Metrics sink (one is created when omitted). */
  metrics?: ServerMetrics;
  /** Scheduler (one is created from the limits when omitted; tests pass theirs to hold it). */
  scheduler?: Scheduler;
}

const DEFAULT_OPTIONS: AppOptions = {
  maxConcurrent: 4,
  queueSize: 32,
  timeoutMs: 120_000,
  maxBodyBytes: 1 << 20,
  readTimeoutMs: 30_000,
  allowSpecialTokens: false,
  prefillChunk: 64,
};

type Endpoint = "chat" | "completions" | "route" | "models";

/**
 * Build the app over a loaded engine, or over an {@link EngineHandle} still loading (then
 * every /v1 endpoint answers 503 until it is ready).
 */
export function createApp(
  engine: ServerEngine | EngineHandle,
  options: Partial<AppOptions> = {},
): Hono {
  const opts = { ...DEFAULT_OPTIONS, ...options };
  const handle = engine instanceof EngineHandle ? engine : new EngineHandle(engine);
  const metrics = opts.metrics ?? new ServerMetrics();
  const scheduler = opts.scheduler ?? new Scheduler(opts, metrics);
  metrics.ready.set(handle.status === "ready" ? 1 : 0);
  handle.settled.then(() => metrics.ready.set(handle.status === "ready" ? 1 : 0));
  const app = new Hono();

  // Sized once, at the first request after loading (no sequence is live yet).
  let admission: Admission | null | undefined;
  const ready = (): ServerEngine => {
    if (handle.status === "ready" && handle.engine) {
      if (admission === undefined) {
        admission = admitByMemory(handle.engine, opts);
        if (handle.engine.contextLimit) {
          console.log(
            `seap: context capped at ${handle.engine.maxContext} tokens (${handle.engine.contextLimit})`,
          );
        }
      }
      return handle.engine;
    }
    if (handle.status === "failed") throw notReady(`The model failed to load: ${handle.error}`);
    if (handle.status === "draining") throw notReady("The server is shutting down.");
    if (handle.status === "broken") throw notReady(`The engine is broken: ${handle.error}`);
    throw notReady();
  };

  /**
   * After a request failed inside the engine, check that the engine still works (one probe at
   * a time, through the scheduler so it never overlaps a step); a failed probe marks the
   * engine broken so /healthz stops saying "ready" and the orchestrator replaces it.
   */
  let probing = false;
  const probe = (e: ServerEngine) => {
    if (probing || handle.status !== "ready") return;
    probing = true;
    try {
      scheduler.submit(
        new HealthProbeJob(e, (error) => {
          probing = false;
          if (error) {
            handle.markBroken(error);
            metrics.ready.set(0);
          }
        }),
      );
    } catch {
      probing = false; // queue full: the next failure probes again
    }
  };

  const record = (ep: Endpoint, status: number, mask: string, t0: number) => {
    metrics.requests.inc({ endpoint: ep, status: String(status), mask });
    metrics.latency.observe((performance.now() - t0) / 1000, { endpoint: ep });
  };

  /** Run a handler; any throw becomes an OpenAI-shaped error, and every answer is counted. */
  const guarded = (ep: Endpoint, fn: (req: Request, t0: number) => Promise<Response>) => {
    return async (c: { req: { raw: Request } }) => {
      const t0 = performance.now();
      try {
        return await fn(c.req.raw, t0);
      } catch (e) {
        const err = toApiError(e);
        if (err.status >= 500 && err.status !== 503 && err.status !== 504) {
          console.error(`seap: ${ep}: ${e instanceof Error ? e.stack : e}`);
        }
        record(ep, err.status, "none", t0);
        return err.toResponse();
      }
    };
  };

  app.get("/healthz", (c) => {
    const body = {
      status: handle.status,
      model: handle.engine?.modelId ?? null,
      masks: handle.engine?.catalog.source ?? null,
      backend: handle.engine?.backendName ?? null,
      error: handle.error,
    };
    return c.json(body, handle.status === "ready" ? 200 : 503);
  });

  app.get("/metrics", () => {
    metrics.ready.set(handle.status === "ready" ? 1 : 0);
    return new Response(metrics.render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument(handle.engine?.modelId)));

  app.get(
    "/v1/models",
    guarded("models", (_req, t0) => {
      const e = ready();
      record("models", 200, "none", t0);
      return Promise.resolve(Response.json({ object: "list", data: [modelCard(e, admission)] }));
    }),
  );

  app.get("/v1/models/:id{.+}", (c) =>
    guarded("models", (_req, t0) => {
      const e = ready();
      // Hono has already percent-decoded the parameter once; decoding it again turned "%25"
      // into a URIError (500) and "seap%252D..." into a match.
      const id = c.req.param("id");
      if (id !== e.modelId) {
        throw notFound(`The model '${id}' does not exist`, "model", "model_not_found");
      }
      record("models", 200, "none", t0);
      return Promise.resolve(Response.json(modelCard(e, admission)));
    })(c));

  app.post(
    "/v1/route",
    guarded("route", async (req, t0) => {
      const e = ready();
      const r = parseBody(RouteRequest, await readJson(req));
      if (r.model !== undefined) checkModel(e, r.model);
      if ((r.prompt === undefined) === (r.messages === undefined)) {
        throw badRequest("Give exactly one of 'prompt' or 'messages'", "prompt", "invalid_value");
      }
      const special = specialTokens(r.seap);
      const ids = r.messages ? chatIds(e, r.messages, special) : textIds(e, r.prompt!);
      checkContext(e, ids.length, 0, false, r.messages ? "messages" : "prompt", null);
      const forced = e.catalog.resolveForced(r.seap);
      let choice: MaskChoice;
      if (forced) {
        choice = forced;
      } else {
        const result = await new Promise<MaskChoice | ApiError>((resolve) => {
          scheduler.submit(
            new RouteJob(e, ids, r.seap, resolve, opts.timeoutMs, metrics),
            req.signal,
          );
        });
        if (result instanceof ApiError) {
          if (result.status >= 500 && result.status !== 504) probe(e);
          throw result;
        }
        choice = result;
      }
      record("route", 200, choice.info.mask, t0);
      return Response.json(
        {
          object: "seap.route",
          model: e.modelId,
          prompt_tokens: ids.length,
          task: choice.info.task,
          confidence: choice.info.confidence,
          threshold: e.catalog.threshold,
          mask: choice.info.mask,
          selection: choice.info.selection,
        },
        { headers: seapHeaders(choice.info) },
      );
    }),
  );

  app.post(
    "/v1/chat/completions",
    guarded("chat", async (req, t0) => {
      const e = ready();
      const r = parseBody(ChatCompletionRequest, await readJson(req));
      checkModel(e, r.model);
      checkCommon(r);
      if (r.logprobs) throw unsupported("logprobs");
      if (r.top_logprobs !== undefined && r.top_logprobs !== null) {
        throw unsupported("top_logprobs");
      }
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
      const ids = chatIds(e, r.messages, specialTokens(r.seap));
      const explicit = r.max_completion_tokens ?? r.max_tokens ?? null;
      const maxParam = r.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
      const limits = { promptParam: "messages", maxParam, defaultMax: e.defaultMaxTokens };
      return await generate(e, "chat", req, t0, r, ids, explicit, limits);
    }),
  );

  app.post(
    "/v1/completions",
    guarded("completions", async (req, t0) => {
      const e = ready();
      const r = parseBody(CompletionRequest, await readJson(req));
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
      const limits = { promptParam: "prompt", maxParam: "max_tokens", defaultMax: 16 };
      return await generate(e, "completions", req, t0, r, ids, r.max_tokens ?? null, limits);
    }),
  );

  // A known path under the wrong method is a 405 naming the allowed ones (HEAD follows GET).
  const allowed: Record<string, string> = {
    "/healthz": "GET, HEAD",
    "/metrics": "GET, HEAD",
    "/openapi.json": "GET, HEAD",
    "/v1/models": "GET, HEAD",
    "/v1/models/:id{.+}": "GET, HEAD",
    "/v1/route": "POST",
    "/v1/chat/completions": "POST",
    "/v1/completions": "POST",
  };
  for (const [path, allow] of Object.entries(allowed)) {
    app.all(path, (c) =>
      new ApiError(
        405,
        "invalid_request_error",
        `Method ${c.req.method.slice(0, 32)} is not allowed on ${
          new URL(c.req.url).pathname.slice(0, 200)
        }; use ${allow}`,
        null,
        "method_not_allowed",
        { allow },
      ).toResponse());
  }

  app.notFound((c) => {
    const err = notFound(
      `Unknown path: ${c.req.method.slice(0, 32)} ${new URL(c.req.url).pathname.slice(0, 200)}`,
      null,
      "unknown_url",
    );
    return err.toResponse();
  });

  app.onError((e) => toApiError(e).toResponse());

  /** Shared by chat and text completions. */
  async function generate(
    e: ServerEngine,
    ep: "chat" | "completions",
    req: Request,
    t0: number,
    r: ChatCompletionRequest | CompletionRequest,
    ids: number[],
    explicitMax: number | null,
    limits: { promptParam: string; maxParam: string; defaultMax: number },
  ): Promise<Response> {
    const maxTokens = checkContext(
      e,
      ids.length,
      explicitMax,
      true,
      limits.promptParam,
      limits.maxParam,
      limits.defaultMax,
    );
    const forced = e.catalog.resolveForced(r.seap as MaskRequest | undefined);
    const stop = r.stop == null ? [] : typeof r.stop === "string" ? [r.stop] : r.stop;
    const id = `${ep === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const stream = r.stream === true;
    const includeUsage = stream && r.stream_options?.include_usage === true;
    const abort = new AbortController();
    const onReqAbort = () => abort.abort();
    req.signal.addEventListener("abort", onReqAbort, { once: true });
    const cleanup = () => req.signal.removeEventListener("abort", onReqAbort);

    let routed!: (info: SeapInfo) => void;
    let failed!: (e: ApiError) => void;
    const routedP = new Promise<SeapInfo>((res, rej) => {
      routed = res;
      failed = rej;
    });
    routedP.catch(() => {});
    let text = "";
    let sse: SseStream | null = null;
    let info: SeapInfo | null = null;
    let finish: (v: { reason: FinishReason; usage: Usage }) => void;
    let fail: (e: ApiError) => void;
    const doneP = new Promise<{ reason: FinishReason; usage: Usage }>((res, rej) => {
      finish = res;
      fail = rej;
    });
    doneP.catch(() => {});

    const base = { id, created, model: e.modelId, system_fingerprint: fingerprint(e) };
    const chunk = (delta: string | null, reason: FinishReason | null, first = false) =>
      ep === "chat"
        ? {
          ...base,
          object: "chat.completion.chunk",
          choices: [{
            index: 0,
            delta: first
              ? { role: "assistant", content: "" }
              : delta === null
              ? {}
              : { content: delta },
            logprobs: null,
            finish_reason: reason,
          }],
          ...(includeUsage ? { usage: null } : {}),
          ...(first || reason ? { seap: info } : {}),
        }
        : {
          ...base,
          object: "text_completion",
          choices: [{ index: 0, text: delta ?? "", logprobs: null, finish_reason: reason }],
          ...(includeUsage ? { usage: null } : {}),
          ...(first || reason ? { seap: info } : {}),
        };

    const job = new GenerationJob(
      e,
      {
        promptIds: ids,
        maxTokens,
        temperature: r.temperature ?? 1,
        topP: r.top_p ?? 1,
        seed: r.seed ?? Math.floor(Math.random() * 2 ** 32),
        stop,
        seap: r.seap as MaskRequest | undefined,
        forced,
        timeoutMs: opts.timeoutMs,
        prefillChunk: opts.prefillChunk,
      },
      {
        onRouted: (i) => {
          info = i;
          routed(i);
        },
        onText: (d) => {
          if (sse) sse.send(chunk(d, null));
          else text += d;
        },
        onDone: (d) => {
          const usage = {
            prompt_tokens: d.promptTokens,
            completion_tokens: d.completionTokens,
            total_tokens: d.promptTokens + d.completionTokens,
          };
          finish({ reason: d.finishReason, usage });
        },
        onError: (err, reason) => {
          if (reason === "error") probe(e);
          failed(err);
          fail(err);
        },
      },
      metrics,
    );
    try {
      scheduler.submit(job, abort.signal);
    } catch (err) {
      cleanup();
      throw err;
    }

    if (!stream) {
      try {
        const d = await doneP;
        record(ep, 200, info!.mask, t0);
        const body = ep === "chat"
          ? {
            ...base,
            object: "chat.completion",
            choices: [{
              index: 0,
              message: { role: "assistant", content: text, refusal: null },
              logprobs: null,
              finish_reason: d.reason,
            }],
            usage: d.usage,
            seap: info,
          }
          : {
            ...base,
            object: "text_completion",
            choices: [{ index: 0, text, logprobs: null, finish_reason: d.reason }],
            usage: d.usage,
            seap: info,
          };
        return Response.json(body, { headers: seapHeaders(info!) });
      } finally {
        cleanup();
      }
    }

    // Streaming: headers carry the mask, so answer once routing is done.
    try {
      await routedP;
    } catch (err) {
      cleanup();
      throw err;
    }
    sse = new SseStream(() => abort.abort());
    sse.send(chunk(null, null, true));
    if (text) {
      sse.send(chunk(text, null));
      text = "";
    }
    doneP.then(
      (d) => {
        sse!.send(chunk(null, d.reason));
        if (includeUsage) {
          sse!.send({ ...base, object: chunk(null, null).object, choices: [], usage: d.usage });
        }
        sse!.done();
        record(ep, 200, info!.mask, t0);
      },
      (err: ApiError) => {
        if (!sse!.isClosed) sse!.send(err.body());
        sse!.close();
        record(ep, err.status, info?.mask ?? "none", t0);
      },
    ).finally(cleanup);
    return new Response(sse.body, {
      headers: { ...SSE_HEADERS, ...seapHeaders(info!) },
    });
  }

  /** The request body under this app's limits. */
  function readJson(req: Request): Promise<unknown> {
    return readJsonBody(req, {
      maxBodyBytes: opts.maxBodyBytes,
      readTimeoutMs: opts.readTimeoutMs,
    });
  }

  /** Whether the request's chat content is parsed for special tokens (trusted callers only). */
  function specialTokens(seap: { special_tokens?: boolean } | undefined): boolean {
    if (seap?.special_tokens !== true) return false;
    if (!opts.allowSpecialTokens) {
      throw badRequest(
        "seap.special_tokens is disabled on this server (SEAP_ALLOW_SPECIAL_TOKENS); message content is encoded as plain text",
        "seap.special_tokens",
        "special_tokens_disabled",
      );
    }
    return true;
  }

  return app;
}

function fingerprint(e: ServerEngine): string {
  return `seap-${e.model.fingerprint.slice(0, 12)}`;
}

/** The /v1/models card of the loaded model. */
function modelCard(e: ServerEngine, admission: Admission | null | undefined) {
  const c = e.catalog;
  return {
    id: e.modelId,
    object: "model",
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

/** x-seap-* headers. */
export function seapHeaders(info: SeapInfo): Record<string, string> {
  return {
    "x-seap-mask": info.mask,
    "x-seap-task": info.task ?? "none",
    "x-seap-confidence": info.confidence === null ? "none" : info.confidence.toFixed(4),
    "x-seap-sparsity": String(info.sparsity),
    "x-seap-selection": info.selection,
  };
}

function unsupported(param: string, what = param): ApiError {
  return badRequest(`'${what}' is not supported by this server`, param, "unsupported_parameter");
}

function checkModel(e: ServerEngine, model: string): void {
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
  defaultMax = 16,
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
