/**
 * One completion request from its checked spec to the HTTP answer: plan the mask (forced, or
 * routed inside the job before any token), queue a {@link GenerationJob}, and read its event
 * stream: into one JSON body, or into SSE chunks once the mask is known (the headers name it).
 */

import { planMask } from "../masks/resolve.ts";
import type { ServerEngine } from "./engine_handle.ts";
import { toApiError } from "./errors.ts";
import { type GenerationEvent, GenerationJob } from "./generation.ts";
import {
  completionBody,
  completionChunk,
  responseBase,
  seapHeaders,
  usageChunk,
} from "./openai_responses.ts";
import type { CompletionJobSpec } from "./request_checks.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { Scheduler } from "./scheduler.ts";
import { SSE_HEADERS, SseStream } from "./sse.ts";

/** What answering needs from the app. */
export interface AnswerContext {
  scheduler: Scheduler;
  metrics: ServerMetrics;
  /** The per-request timeout (for the error message). */
  timeoutMs: number;
  /** Prompts longer than this prefill in chunks (0 = off). */
  prefillChunk: number;
  /** Count an answer of this endpoint with its status and mask. */
  record(status: number, mask: string): void;
  /** Check the engine after a request failed inside it. */
  probe(): void;
}

/** Answer one chat or text completion (`spec`) of the HTTP request `req`. */
export async function answerCompletion(
  ctx: AnswerContext,
  e: ServerEngine,
  req: Request,
  spec: CompletionJobSpec,
): Promise<Response> {
  const plan = planMask(e.catalog, spec.seap);
  const abort = new AbortController();
  const onReqAbort = () => abort.abort();
  req.signal.addEventListener("abort", onReqAbort, { once: true });
  const cleanup = () => req.signal.removeEventListener("abort", onReqAbort);
  const job = new GenerationJob(e, {
    promptIds: spec.promptIds,
    maxTokens: spec.maxTokens,
    temperature: spec.temperature,
    topP: spec.topP,
    seed: spec.seed,
    stop: spec.stop,
    plan,
    timeoutMs: ctx.timeoutMs,
    prefillChunk: ctx.prefillChunk,
  }, ctx.metrics);
  try {
    ctx.scheduler.submit(job, abort.signal);
  } catch (err) {
    cleanup();
    throw err;
  }
  const events = job.events[Symbol.asyncIterator]();
  /** The next event; an error event is thrown (after probing the engine when it failed). */
  const next = async (): Promise<Exclude<GenerationEvent, { type: "error" }>> => {
    const { value: ev, done } = await events.next();
    if (done) throw new Error("generation ended without a result");
    if (ev.type === "error") {
      if (ev.reason === "error") ctx.probe();
      throw ev.error;
    }
    return ev;
  };

  const base = responseBase(spec.kind, e);
  let first;
  try {
    first = await next();
  } catch (err) {
    cleanup();
    throw err;
  }
  if (first.type !== "mask") {
    cleanup();
    throw new Error(`generation began with ${first.type}, not its mask`);
  }
  const info = first.info;

  if (!spec.stream) {
    try {
      let text = "";
      for (;;) {
        const ev = await next();
        if (ev.type === "text") text += ev.delta;
        else if (ev.type === "done") {
          ctx.record(200, info.mask);
          const body = completionBody(spec.kind, base, text, ev, info);
          return Response.json(body, { headers: seapHeaders(info) });
        }
      }
    } finally {
      cleanup();
    }
  }

  // Streaming: the headers carry the mask, known now; the rest follows as it comes.
  const sse = new SseStream(() => abort.abort());
  const chunk = (delta: string | null, finish: "stop" | "length" | null, first = false) =>
    completionChunk(spec.kind, base, { delta, finish, first }, info, spec.includeUsage);
  sse.send(chunk(null, null, true));
  (async () => {
    try {
      for (;;) {
        const ev = await next();
        if (ev.type === "text") sse.send(chunk(ev.delta, null));
        else if (ev.type === "done") {
          sse.send(chunk(null, ev.finishReason));
          if (spec.includeUsage) sse.send(usageChunk(spec.kind, base, ev));
          sse.done();
          ctx.record(200, info.mask);
          return;
        }
      }
    } catch (err) {
      const apiErr = toApiError(err);
      if (!sse.isClosed) sse.send(apiErr.body());
      sse.close();
      ctx.record(apiErr.status, info.mask);
    } finally {
      cleanup();
    }
  })();
  return new Response(sse.body, { headers: { ...SSE_HEADERS, ...seapHeaders(info) } });
}
