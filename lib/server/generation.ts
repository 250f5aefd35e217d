/**
 * Scheduler jobs: one generation (mask → prefill → decode loop → text deltas), one
 * routing-only decision, and the health probe. Each job owns its Sequence (KV cache) and frees
 * it whatever happens. A generation reports through {@link GenerationJob.events}, an async
 * stream that the HTTP layer reads the same way for streaming and non-streaming answers.
 */

import { type Pushable, pushable } from "it-pushable";
import { type FinishReason, Generation, type GenerationOptions } from "../generate/generate.ts";
import { Sequence } from "../model/sequence.ts";
import { BackendMemoryError } from "../backends/backend.ts";
import { decideRouted, type MaskChoice, type MaskInfo, type MaskPlan } from "../masks/resolve.ts";
import { ApiError, notReady, timedOut, toApiError } from "./errors.ts";
import type { ServerEngine } from "./engine_handle.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { CancelReason, SchedulerJob } from "./scheduler.ts";

export type { FinishReason };

/** Settings of one generation. */
export interface GenerationParams {
  promptIds: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  /** The request's mask, planned before the job was queued (lib/masks/resolve.ts). */
  plan: MaskPlan;
  /** The server's per-request timeout (for the error message). */
  timeoutMs: number;
  /** Prompts longer than this prefill in chunks of this many tokens (0 = one step). */
  prefillChunk?: number;
}

/** Token counts and why a generation stopped. */
export interface GenerationResult {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

/**
 * What a job reports, in order: `mask` once (before any text), `text` zero or more times, then
 * exactly one of `done` or `error` (an error may also come first: queue, timeout, disconnect).
 */
export type GenerationEvent =
  | { type: "mask"; info: MaskInfo }
  | { type: "text"; delta: string }
  | ({ type: "done" } & GenerationResult)
  | { type: "error"; error: ApiError; reason: "error" | CancelReason };

/**
 * The one place a request's mask is decided once its job runs: a fixed plan at once, a routed
 * plan by the router on the feature after the protected layers, prefilled (dense) on `head`,
 * whose cache then holds those layers for {@link Sequence.prefillTail}.
 */
async function decideMask(
  engine: ServerEngine,
  plan: MaskPlan,
  head: Sequence,
  ids: Int32Array,
  metrics?: ServerMetrics,
): Promise<MaskChoice> {
  if (plan.kind === "fixed") return plan.choice;
  const feature = await head.prefillHead(ids, plan.layer);
  metrics?.steps.inc({ kind: "route" });
  return decideRouted(engine.catalog, plan, feature);
}

function countDecision(info: MaskInfo, metrics?: ServerMetrics): void {
  metrics?.routerDecisions.inc({ task: info.task ?? "none", selection: info.selection });
}

/**
 * One generation as a {@link SchedulerJob}: step 1 decides the mask (prefilling the protected
 * head to route, when routed), step 2 prefills the tail under the chosen mask (or several steps
 * of `prefillChunk` tokens for a long prompt), then one step per generated token
 * ({@link Generation.step}: sampling, EOS, stop strings, max tokens and UTF-8-safe text).
 */
export class GenerationJob implements SchedulerJob {
  /** The job's events (see {@link GenerationEvent}); ends after `done` or `error`. */
  readonly events: AsyncIterable<GenerationEvent>;
  readonly #events: Pushable<GenerationEvent>;
  private seq: Sequence | null = null;
  private gen: Generation | null = null;
  private readonly opts: GenerationOptions;
  private phase: "head" | "tail" | "chunks" | "decode" = "head";
  private prefilled = 0;
  private choice: MaskChoice | null = null;
  private readonly startedAt = performance.now();

  /** @param engine loaded engine @param p settings @param metrics metric sink */
  constructor(
    private engine: ServerEngine,
    private p: GenerationParams,
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
    this.#events = pushable<GenerationEvent>({ objectMode: true });
    this.events = this.#events;
  }

  async step(): Promise<boolean> {
    const { model } = this.engine;
    const ids = Int32Array.from(this.p.promptIds);
    const chunk = this.p.prefillChunk ?? 0;
    const chunked = chunk > 0 && ids.length > chunk;
    if (this.phase === "head") {
      this.seq = new Sequence(model, { maxTokens: ids.length + this.p.maxTokens });
      // Long prompt: route on a scratch head pass, then prefill in chunks under the mask
      // (m/L extra work, so that other sequences keep decoding between chunks).
      const scratch = chunked && this.p.plan.kind === "routed"
        ? new Sequence(model, { maxTokens: ids.length })
        : null;
      try {
        this.choice = await decideMask(
          this.engine,
          this.p.plan,
          scratch ?? this.seq,
          ids,
          this.metrics,
        );
      } finally {
        scratch?.free();
      }
      this.phase = chunked ? "chunks" : "tail";
      if (this.phase === "chunks") this.seq.setMask(this.choice.entry.prepared);
      countDecision(this.choice.info, this.metrics);
      this.#events.push({ type: "mask", info: this.choice.info });
      return false;
    }
    const seq = this.seq!;
    if (this.phase === "decode") {
      const r = await this.gen!.step();
      this.metrics?.steps.inc({ kind: "decode" });
      if (this.gen!.completionTokens === 1 && r.tokenId !== null) {
        this.metrics?.ttft.observe((performance.now() - this.startedAt) / 1000);
      }
      if (r.text) this.#events.push({ type: "text", delta: r.text });
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
      logits = this.p.plan.kind === "fixed" ? await seq.prefill(ids) : await seq.prefillTail();
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
      this.#events.push({
        type: "done",
        finishReason: this.gen?.finishReason ?? "length",
        promptTokens: this.p.promptIds.length,
        completionTokens: generated,
      });
    } else {
      const err = cancelError(outcome, error, this.p.timeoutMs);
      this.#events.push({ type: "error", error: err, reason: outcome });
    }
    this.#events.end();
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

/**
 * Routing only (POST /v1/route): one dense head prefill and the router's decision, reported
 * as a `mask` event, or an `error` event when the job fails or is cancelled.
 */
export class RouteJob implements SchedulerJob {
  /** One `mask` or `error` event, then the end. */
  readonly events: AsyncIterable<Extract<GenerationEvent, { type: "mask" | "error" }>>;
  readonly #events = pushable<Extract<GenerationEvent, { type: "mask" | "error" }>>({
    objectMode: true,
  });
  private choice: MaskChoice | null = null;

  /** @param engine loaded engine @param ids prompt ids @param plan a routed plan */
  constructor(
    private engine: ServerEngine,
    private ids: number[],
    private plan: MaskPlan,
    private timeoutMs: number,
    private metrics?: ServerMetrics,
  ) {
    this.events = this.#events;
  }

  async step(): Promise<boolean> {
    const seq = new Sequence(this.engine.model, { maxTokens: this.ids.length });
    try {
      const ids = Int32Array.from(this.ids);
      this.choice = await decideMask(this.engine, this.plan, seq, ids, this.metrics);
    } finally {
      seq.free();
    }
    return true;
  }

  finish(outcome: "done" | "error" | CancelReason, error?: unknown): void {
    if (outcome === "done" && this.choice) {
      countDecision(this.choice.info, this.metrics);
      this.#events.push({ type: "mask", info: this.choice.info });
    } else {
      const reason = outcome === "done" ? "error" : outcome;
      const err = cancelError(reason, error ?? "no result", this.timeoutMs);
      this.#events.push({ type: "error", error: err, reason });
    }
    this.#events.end();
  }
}
