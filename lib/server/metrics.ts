/**
 * A minimal Prometheus text-format registry (counters, gauges, histograms with labels) and the
 * server's metric set.
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",");
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function fmt(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, "");
}

/** A monotonically increasing labelled counter. */
export class Counter {
  private values = new Map<string, number>();
  /** @param name metric name @param help HELP text */
  constructor(readonly name: string, readonly help: string) {}
  /** Add `v` (default 1) to the series with `labels`. */
  inc(labels: Labels = {}, v = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + v);
  }
  /** Current value of a series (0 if never incremented). */
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  /** Prometheus text lines. */
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${fmt(v)}`);
    return lines.join("\n");
  }
}

/** A gauge whose value is read from a callback or set directly. */
export class Gauge {
  private values = new Map<string, number>();
  /** @param name metric name @param help HELP text @param read optional live reader */
  constructor(readonly name: string, readonly help: string, private read?: () => number) {}
  /** Set the series with `labels` to `v`. */
  set(v: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), v);
  }
  /** Current value of the unlabelled series. */
  get(): number {
    return this.read ? this.read() : (this.values.get("") ?? 0);
  }
  /** Prometheus text lines. */
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    if (this.read) lines.push(`${this.name} ${fmt(this.read())}`);
    else for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${fmt(v)}`);
    return lines.join("\n");
  }
}

/** A labelled histogram with fixed buckets. */
export class Histogram {
  private series = new Map<string, { counts: number[]; sum: number; count: number }>();
  /** @param name metric name @param help HELP text @param buckets ascending upper bounds */
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}
  /** Record one observation. */
  observe(v: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) s.counts[i]++;
    s.sum += v;
    s.count++;
  }
  /** Number of observations of a series. */
  count(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.count ?? 0;
  }
  /** Prometheus text lines. */
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const pre = k ? `${k},` : "";
      this.buckets.forEach((b, i) =>
        lines.push(`${this.name}_bucket{${pre}le="${fmt(b)}"} ${s.counts[i]}`)
      );
      lines.push(`${this.name}_bucket{${pre}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${k ? `{${k}}` : ""} ${fmt(s.sum)}`);
      lines.push(`${this.name}_count${k ? `{${k}}` : ""} ${s.count}`);
    }
    return lines.join("\n");
  }
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Every metric the server exports. */
export class ServerMetrics {
  /** Requests by endpoint, HTTP status and mask used ("none" when no mask ran). */
  readonly requests = new Counter(
    "seap_requests_total",
    "HTTP requests by endpoint, status and mask",
  );
  /** Prompt and completion tokens. */
  readonly tokens = new Counter("seap_tokens_total", "Tokens processed, by kind and mask");
  /** End-to-end request latency. */
  readonly latency = new Histogram(
    "seap_request_duration_seconds",
    "Request latency in seconds, by endpoint",
    LATENCY_BUCKETS,
  );
  /** Time to first generated token. */
  readonly ttft = new Histogram(
    "seap_time_to_first_token_seconds",
    "Time from admission to the first generated token",
    LATENCY_BUCKETS,
  );
  /** Router decisions by task and outcome (auto / fallback / forced). */
  readonly routerDecisions = new Counter(
    "seap_router_decisions_total",
    "Router decisions by task and selection (auto, fallback to generic, forced by request)",
  );
  /** Requests rejected with 429. */
  readonly rejected = new Counter(
    "seap_rejected_total",
    "Requests rejected because the queue was full",
  );
  /** Sequences cancelled (client gone or timeout). */
  readonly cancelled = new Counter(
    "seap_sequences_cancelled_total",
    "Sequences stopped early, by reason (disconnect, timeout)",
  );
  /** Engine steps (prefill or decode) executed after a cancellation was requested. */
  readonly cancelLagSteps = new Histogram(
    "seap_cancel_lag_steps",
    "Engine steps a sequence ran after its cancellation was signalled",
    [0, 1, 2, 4, 8],
  );
  /** Engine steps, by kind. */
  readonly steps = new Counter(
    "seap_engine_steps_total",
    "Engine steps by kind (prefill, decode, route)",
  );
  /** Live gauges, attached by the scheduler. */
  readonly gauges: Gauge[] = [];
  /** Ready flag. */
  readonly ready = new Gauge("seap_ready", "1 when the model and masks are loaded");

  /** The whole Prometheus exposition text. */
  render(): string {
    const parts = [
      this.ready,
      ...this.gauges,
      this.requests,
      this.rejected,
      this.cancelled,
      this.cancelLagSteps,
      this.steps,
      this.tokens,
      this.routerDecisions,
      this.latency,
      this.ttft,
    ].map((m) => m.render());
    return parts.join("\n") + "\n";
  }
}
