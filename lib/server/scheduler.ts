/**
 * One engine, many requests: a bounded waiting queue in front of a capped set of active jobs,
 * stepped one engine step at a time in round-robin order (token-level interleaving). Each job
 * owns its own sequence (KV cache) and mask, so switching between them costs nothing and a
 * long generation never blocks a short one.
 *
 * Cancellation (client disconnect or per-request timeout) is checked before every engine step
 * of any job, so a cancelled sequence is freed after at most the one step already in flight.
 */

import { overloaded } from "./errors.ts";
import { Gauge, type ServerMetrics } from "./metrics.ts";

/** Why a job left the scheduler early. */
export type CancelReason = "disconnect" | "timeout" | "shutdown";

/** Work the scheduler drives. */
export interface SchedulerJob {
  /** Run one engine step (a prefill or one decode token). Resolve true when the job is done. */
  step(): Promise<boolean>;
  /**
   * Called exactly once when the job leaves the scheduler, after its last step: `outcome` is
   * "done", a {@link CancelReason}, or "error" (with the thrown value). Free resources here.
   */
  finish(outcome: "done" | "error" | CancelReason, error?: unknown): void;
}

/** Scheduler limits. */
export interface SchedulerOptions {
  /** Most jobs stepped concurrently (each holds a KV cache). */
  maxConcurrent: number;
  /** Most jobs waiting for a slot; beyond that, submit throws a 429. */
  queueSize: number;
  /** Per-request timeout in ms, from submission (0 = none). */
  timeoutMs: number;
  /** Yield to the event loop at least this often (ms) so I/O is served between steps. */
  yieldEveryMs?: number;
}

interface Entry {
  job: SchedulerJob;
  cancel: CancelReason | null;
  /** Global step count when the cancellation was signalled. */
  cancelAtStep: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** performance.now() at submission. */
  submittedAt: number;
  detach: () => void;
  state: "waiting" | "active" | "gone";
}

/** Bounded queue + token-level round-robin over active jobs. */
export class Scheduler {
  private waiting: Entry[] = [];
  private active: Entry[] = [];
  /** The entry whose step is running (it is out of `active` meanwhile). */
  private current: Entry | null = null;
  private running = false;
  private stepsStarted = 0;
  private holds = 0;
  private resumeHold: (() => void) | null = null;
  private lastYield = 0;
  private avgJobS = 1;
  private readonly yieldEveryMs: number;

  /** @param opts limits @param metrics metric sink (gauges are attached here) */
  constructor(readonly opts: SchedulerOptions, private metrics?: ServerMetrics) {
    this.yieldEveryMs = opts.yieldEveryMs ?? 4;
    metrics?.gauges.push(
      new Gauge(
        "seap_queue_depth",
        "Requests waiting for a sequence slot",
        () => this.waiting.length,
      ),
      new Gauge("seap_active_sequences", "Sequences holding a KV cache", () => this.activeCount),
      new Gauge("seap_max_concurrent", "Cap on concurrent sequences", () => opts.maxConcurrent),
      new Gauge("seap_queue_capacity", "Cap on waiting requests", () => opts.queueSize),
    );
  }

  /** Requests waiting for a slot. */
  get queueDepth(): number {
    return this.waiting.length;
  }

  /** Jobs currently holding a slot. */
  get activeCount(): number {
    return this.active.length + (this.current ? 1 : 0);
  }

  /**
   * Admit a job or throw a 429 {@link ApiError} when the queue is full. Admission is
   * synchronous: with C free slots and Q queue places, exactly C + Q simultaneous submissions
   * are accepted. `signal` aborting cancels the job ("disconnect").
   */
  submit(job: SchedulerJob, signal?: AbortSignal): void {
    const slotFree = this.activeCount < this.opts.maxConcurrent && this.waiting.length === 0;
    if (!slotFree && this.waiting.length >= this.opts.queueSize) {
      this.metrics?.rejected.inc();
      const estimate = this.avgJobS * (1 + this.waiting.length / this.opts.maxConcurrent);
      throw overloaded(estimate);
    }
    const e: Entry = {
      job,
      cancel: null,
      cancelAtStep: 0,
      timer: undefined,
      submittedAt: performance.now(),
      detach: () => {},
      state: slotFree ? "active" : "waiting",
    };
    if (signal) {
      const onAbort = () => this.cancel(e, "disconnect");
      if (signal.aborted) {
        e.state = "gone";
        job.finish("disconnect");
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      e.detach = () => signal.removeEventListener("abort", onAbort);
    }
    if (this.opts.timeoutMs > 0) {
      e.timer = setTimeout(() => this.cancel(e, "timeout"), this.opts.timeoutMs);
    }
    (slotFree ? this.active : this.waiting).push(e);
    this.kick();
  }

  /**
   * Test hook: stop stepping until the returned function is called (submissions are still
   * admitted or rejected as usual). Used to make overload tests deterministic.
   */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0) {
        this.resumeHold?.();
        this.resumeHold = null;
      }
    };
  }

  /** Cancel every job (used at shutdown). */
  shutdown(): void {
    for (const e of [...this.waiting, ...this.active]) this.cancel(e, "shutdown");
  }

  private cancel(e: Entry, reason: CancelReason): void {
    if (e.state === "gone" || e.cancel) return;
    e.cancel = reason;
    e.cancelAtStep = this.stepsStarted;
    if (e.state === "waiting") {
      this.waiting.splice(this.waiting.indexOf(e), 1);
      this.leave(e, reason);
    }
    // Active: freed by the loop before the next engine step (of any job).
  }

  private leave(e: Entry, outcome: "done" | "error" | CancelReason, error?: unknown): void {
    e.state = "gone";
    clearTimeout(e.timer);
    e.detach();
    if (outcome !== "done" && outcome !== "error") {
      this.metrics?.cancelled.inc({ reason: outcome });
      this.metrics?.cancelLagSteps.observe(this.stepsStarted - e.cancelAtStep);
    }
    try {
      e.job.finish(outcome, error);
    } catch {
      // A job's cleanup must never stop the loop.
    }
  }

  private sweepCancelled(): void {
    for (let i = this.active.length - 1; i >= 0; i--) {
      const e = this.active[i];
      if (e.cancel) {
        this.active.splice(i, 1);
        this.leave(e, e.cancel);
      }
    }
    this.admit();
  }

  private admit(): void {
    while (this.activeCount < this.opts.maxConcurrent && this.waiting.length > 0) {
      const e = this.waiting.shift()!;
      e.state = "active";
      this.active.push(e);
    }
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    this.loop().finally(() => {
      this.running = false;
      if (this.active.length > 0) this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (true) {
      if (this.holds > 0) await new Promise<void>((r) => (this.resumeHold = r));
      if (performance.now() - this.lastYield >= this.yieldEveryMs) {
        // Let I/O (new requests, disconnects, stream writes) run between engine steps.
        await new Promise((r) => setTimeout(r, 0));
        this.lastYield = performance.now();
      }
      this.sweepCancelled();
      const e = this.active.shift();
      if (!e) return;
      this.stepsStarted++;
      this.current = e;
      let done = false;
      try {
        done = await e.job.step();
      } catch (err) {
        this.current = null;
        this.leave(e, "error", err);
        this.admit();
        continue;
      }
      this.current = null;
      if (e.cancel) {
        this.leave(e, e.cancel);
      } else if (done) {
        this.leave(e, "done");
        this.avgJobS = 0.8 * this.avgJobS +
          0.2 * Math.max(0.001, (performance.now() - e.submittedAt) / 1000);
      } else {
        this.active.push(e);
      }
      this.admit();
    }
  }
}
