/**
 * Scheduler jobs: one generation (route → mask → prefill → decode loop → text deltas) and one
 * routing-only decision. Each job owns its Sequence (KV cache) and frees it whatever happens.
 */

import { type FinishReason, Generation, type GenerationOptions } from "../generate/generate.ts";
import { Sequence } from "../model/sequence.ts";
import { BackendMemoryError } from "../backends/backend.ts";
import { ApiError, notReady, timedOut, toApiError } from "./errors.ts";
import type { ServerEngine } from "./engine_handle.ts";
import type { MaskChoice, MaskRequest } from "./mask_catalog.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { CancelReason, SchedulerJob } from "./scheduler.ts";
import type { SeapInfo } from "./schemas.ts";

export type { FinishReason };

/** Settings of one generation. */
export interface GenerationParams {
  promptIds: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  /** The request's `seap` field. */
  seap: MaskRequest | undefined;
  /** Pre-resolved forced mask (null: route first). */
  forced: MaskChoice | null;
  /** The server's per-request timeout (for the error message). */
  timeoutMs: number;
  /** Prompts longer than this prefill in chunks of this many tokens (0 = one step). */
  prefillChunk?: number;
}

/** Receives a generation's progress. Exactly one of onDone / onError ends it. */
export interface GenerationSink {
  /** Mask chosen (before any text). */
  onRouted(info: SeapInfo): void;
  /** New text. */
  onText(delta: string): void;
  /** Finished normally. */
  onDone(r: { finishReason: FinishReason; promptTokens: number; completionTokens: number }): void;
  /** Failed, timed out or cancelled. */
  onError(e: ApiError, reason: "error" | CancelReason): void;
}

/**
 * One generation as a {@link SchedulerJob}: step 1 prefills the protected head and routes,
 * step 2 prefills the tail under the chosen mask (or several steps of `prefillChunk` tokens
 * for a long prompt), then one step per generated token ({@link Generation.step}: sampling,
 * EOS, stop strings, max tokens and UTF-8-safe text).
 */
export class GenerationJob implements SchedulerJob {
  private seq: Sequence | null = null;
  private gen: Generation | null = null;
  private readonly opts: GenerationOptions;
  private phase: "head" | "tail" | "chunks" | "decode" = "head";
  private prefilled = 0;
  private choice: MaskChoice | null;
  private readonly startedAt = performance.now();

  /** @param engine loaded engine @param p settings @param sink progress receiver */
  constructor(
    private engine: ServerEngine,
    private p: GenerationParams,
    private sink: GenerationSink,
    private metrics?: ServerMetrics,
  ) {
    const tok = engine.tokenizer;
    this.opts = {
      temperature: p.temperature,
      topP: p.topP,
      seed: p.seed, // any safe integer: the sampler keeps all its bits
      maxTokens: p.maxTokens,
      stop: p.stop,
      eosTokenIds: [...new Set([...tok.eosTokenIds, ...engine.model.config.eosTokenIds])],
    };
    this.choice = p.forced;
  }

  async step(): Promise<boolean> {
    const { model, catalog } = this.engine;
    const ids = Int32Array.from(this.p.promptIds);
    const chunk = this.p.prefillChunk ?? 0;
    const chunked = chunk > 0 && ids.length > chunk;
    if (this.phase === "head") {
      this.seq = new Sequence(model, { maxTokens: ids.length + this.p.maxTokens });
      if (!this.choice) {
        let feature: Float32Array;
        if (chunked) {
          // Long prompt: route on a scratch head pass, then prefill in chunks under the mask
          // (m/L extra work, so that other sequences keep decoding between chunks).
          const scratch = new Sequence(model, { maxTokens: ids.length });
          try {
            feature = await scratch.prefillHead(ids, catalog.protectedLayers);
          } finally {
            scratch.free();
          }
        } else {
          feature = await this.seq.prefillHead(ids, catalog.protectedLayers);
        }
        this.metrics?.steps.inc({ kind: "route" });
        this.choice = catalog.resolveRouted(this.p.seap, catalog.router!.route(feature));
        this.phase = chunked ? "chunks" : "tail";
      } else {
        this.phase = chunked ? "chunks" : "tail";
      }
      if (this.phase === "chunks") this.seq.setMask(this.choice.entry.prepared);
      const info = this.choice.info;
      this.metrics?.routerDecisions.inc({ task: info.task ?? "none", selection: info.selection });
      this.sink.onRouted(info);
      return false;
    }
    const seq = this.seq!;
    if (this.phase === "decode") {
      const r = await this.gen!.step();
      this.metrics?.steps.inc({ kind: "decode" });
      if (this.gen!.completionTokens === 1 && r.tokenId !== null) {
        this.metrics?.ttft.observe((performance.now() - this.startedAt) / 1000);
      }
      if (r.text) this.sink.onText(r.text);
      return this.gen!.done;
    }
    let logits: Float32Array;
    if (this.phase === "chunks") {
      const end = Math.min(ids.length, this.prefilled + chunk);
      logits = await seq.prefill(ids.subarray(this.prefilled, end));
      this.prefilled = end;
      if (end < ids.length) {
        this.metrics?.steps.inc({ kind: "prefill" });
        return false;
      }
    } else {
      seq.setMask(this.choice!.entry.prepared);
      logits = this.p.forced ? await seq.prefill(ids) : await seq.prefillTail();
    }
    this.metrics?.steps.inc({ kind: "prefill" });
    const tok = this.engine.tokenizer;
    this.gen = new Generation(
      seq,
      logits,
      (ids) => tok.decode(ids, { skipSpecialTokens: true }),
      this.opts,
    );
    this.phase = "decode";
    return this.gen.done;
  }

  finish(outcome: "done" | "error" | CancelReason, error?: unknown): void {
    this.seq?.free();
    this.seq = null;
    if (outcome === "done") {
      const generated = this.gen?.completionTokens ?? 0;
      const mask = this.choice?.info.mask ?? "none";
      this.metrics?.tokens.inc({ kind: "prompt", mask }, this.p.promptIds.length);
      this.metrics?.tokens.inc({ kind: "completion", mask }, generated);
      this.sink.onDone({
        finishReason: this.gen?.finishReason ?? "length",
        promptTokens: this.p.promptIds.length,
        completionTokens: generated,
      });
      return;
    }
    this.sink.onError(cancelError(outcome, error, this.p.timeoutMs), outcome);
  }
}

/** The error reported for a job that did not finish normally. */
function cancelError(outcome: "error" | CancelReason, error: unknown, timeoutMs: number): ApiError {
  switch (outcome) {
    case "timeout":
      return timedOut(timeoutMs);
    case "shutdown":
      return notReady("The server is shutting down.");
    case "disconnect":
      return new ApiError(
        499,
        "invalid_request_error",
        "Client closed the request.",
        null,
        "client_closed",
      );
    default:
      return isOutOfMemory(error) ? insufficientMemory(error) : toApiError(error);
  }
}

/** Whether `e` is a failed allocation (the backend's, or the host's for an ArrayBuffer). */
export function isOutOfMemory(e: unknown): boolean {
  return e instanceof BackendMemoryError ||
    (e instanceof RangeError && /allocation failed|out of memory/i.test(e.message));
}

/** 503 for a request whose KV cache or activations did not fit in memory. */
export function insufficientMemory(e: unknown): ApiError {
  return new ApiError(
    503,
    "service_unavailable",
    "Not enough memory for this request (its KV cache grows with prompt + max_tokens): " +
      `${(e as Error).message}. Lower max_tokens, or retry when fewer requests are running.`,
    null,
    "insufficient_memory",
    { "retry-after": "5" },
  );
}

/**
 * A health probe: one dense token through a fresh two-token sequence. Run after a request
 * failed inside the engine; `done(null)` when the engine still works, else the error text.
 */
export class HealthProbeJob implements SchedulerJob {
  private error: string | null = "probe did not run";

  /** @param engine loaded engine @param done receives null (healthy) or the failure */
  constructor(private engine: ServerEngine, private done: (error: string | null) => void) {}

  async step(): Promise<boolean> {
    const { model, tokenizer } = this.engine;
    const seq = new Sequence(model, { maxTokens: 2 });
    try {
      const id = tokenizer.bosTokenId ?? tokenizer.eosTokenIds[0] ?? 0;
      const logits = await seq.prefill(Int32Array.of(id));
      if (!logits.some(Number.isFinite)) throw new Error("the probe's logits are not finite");
      this.error = null;
    } finally {
      seq.free();
    }
    return true;
  }

  finish(outcome: "done" | "error" | CancelReason, error?: unknown): void {
    if (outcome === "done") this.done(this.error);
    else if (outcome === "error") {
      this.done(`health probe failed: ${error instanceof Error ? error.message : String(error)}`);
    } else this.done(null); // cancelled (shutdown, timeout): no verdict
  }
}

/** Routing only (POST /v1/route): one dense head prefill, then the router. */
export class RouteJob implements SchedulerJob {
  /** @param engine loaded engine @param ids prompt ids @param done receives the result */
  constructor(
    private engine: ServerEngine,
    private ids: number[],
    private seap: MaskRequest | undefined,
    private done: (r: MaskChoice | ApiError) => void,
    private timeoutMs: number,
    private metrics?: ServerMetrics,
  ) {}

  async step(): Promise<boolean> {
    const { model, catalog } = this.engine;
    const seq = new Sequence(model, { maxTokens: this.ids.length });
    try {
      const feature = await seq.prefillHead(Int32Array.from(this.ids), catalog.protectedLayers);
      this.metrics?.steps.inc({ kind: "route" });
      this.result = catalog.resolveRouted(this.seap, catalog.router!.route(feature));
    } finally {
      seq.free();
    }
    return true;
  }

  private result: MaskChoice | null = null;

  finish(outcome: "done" | "error" | CancelReason, error?: unknown): void {
    if (outcome === "done" && this.result) {
      const info = this.result.info;
      this.metrics?.routerDecisions.inc({ task: info.task ?? "none", selection: info.selection });
      this.done(this.result);
    } else {
      this.done(
        cancelError(outcome === "done" ? "error" : outcome, error ?? "no result", this.timeoutMs),
      );
    }
  }
}
