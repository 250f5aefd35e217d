/**
 * Scheduling under load: a full queue answers 429 (exactly the accepted requests complete,
 * none lost or duplicated), a client that disconnects mid-stream frees its sequence within one
 * engine step (seen in /metrics), per-request timeouts, and 503 until the engine is loaded.
 */

import assert from "node:assert/strict";
import { createApp } from "../lib/server/app.ts";
import { EngineHandle, type ServerEngine } from "../lib/server/engine_handle.ts";
import { post, serveLoopback, tinyApp, tinyEngine } from "./server_helpers.ts";

const JSON_HEADERS = { "content-type": "application/json" };

// deno-lint-ignore no-explicit-any
type Any = any;

/** Make every backend read take at least `ms` (so generations last long enough to observe). */
function slowDown(engine: ServerEngine, ms: number): () => void {
  const be = engine.model.backend;
  const orig = be.read.bind(be);
  be.read = async (t) => {
    await new Promise((r) => setTimeout(r, ms));
    return orig(t);
  };
  return () => {
    be.read = orig;
  };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

function metricValue(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(" ").pop()) : 0;
}

Deno.test("overload: C + Q of C + Q + K simultaneous requests complete, exactly K get 429", async () => {
  const C = 2, Q = 3, K = 4;
  const { app, engine, scheduler, metrics } = await tinyApp({ maxConcurrent: C, queueSize: Q });
  const body = (i: number) => ({
    model: engine.modelId,
    prompt: `request number ${i}`,
    max_tokens: 6 + i,
    temperature: 0,
    seap: { mask: ["dense", "alpha", "generic", "beta"][i % 4] },
  });
  const N = C + Q + K;
  const solo: Any[] = [];
  for (let i = 0; i < N; i++) solo.push(await (await post(app, "/v1/completions", body(i))).json());
  const release = scheduler.hold();
  const pending = Array.from({ length: N }, (_, i) => post(app, "/v1/completions", body(i)));
  await until(() => metrics.rejected.get() === K && scheduler.queueDepth === Q);
  assert.equal(scheduler.activeCount, C);
  release();
  const res = await Promise.all(pending);
  const ok = res.filter((r) => r.status === 200);
  const busy = res.filter((r) => r.status === 429);
  assert.equal(ok.length, C + Q);
  assert.equal(busy.length, K);
  const ids = new Set<string>();
  for (let i = 0; i < N; i++) {
    const r = res[i];
    const j = await r.json();
    if (r.status === 429) {
      assert.equal(j.error.type, "rate_limit_error");
      assert.equal(j.error.code, "queue_full");
      assert.ok(Number(r.headers.get("retry-after")) >= 1);
    } else {
      ids.add(j.id);
      assert.equal(j.choices[0].text, solo[i].choices[0].text, `request ${i} got another's text`);
      assert.deepEqual(j.usage, solo[i].usage);
    }
  }
  assert.equal(ids.size, C + Q, "duplicated responses");
  assert.equal(scheduler.activeCount + scheduler.queueDepth, 0);
  // The server still takes work.
  assert.equal((await post(app, "/v1/completions", body(0))).status, 200);
});

Deno.test("disconnect mid-stream: the sequence leaves the scheduler within one engine step", async () => {
  const { app, engine } = await tinyApp({ maxConcurrent: 4 });
  const restore = slowDown(engine, 3);
  const srv = serveLoopback(app.fetch);
  try {
    const ctrl = new AbortController();
    const r = await fetch(`${srv.base}/v1/chat/completions`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({
        model: engine.modelId,
        messages: [{ role: "user", content: "go on forever" }],
        max_tokens: 400,
        temperature: 0.8,
        seed: 1,
        stream: true,
      }),
      signal: ctrl.signal,
    });
    assert.equal(r.status, 200);
    const reader = r.body!.getReader();
    let frames = 0;
    while (frames < 4) {
      const { value, done } = await reader.read();
      if (done) break;
      frames += new TextDecoder().decode(value).split("\n\n").filter((f) =>
        f.startsWith("data:")
      ).length;
    }
    const m0 = await (await fetch(`${srv.base}/metrics`)).text();
    assert.equal(metricValue(m0, "seap_active_sequences"), 1);
    ctrl.abort();
    await until(async () => {
      const m = await (await fetch(`${srv.base}/metrics`)).text();
      return metricValue(m, "seap_active_sequences") === 0;
    });
    const m = await (await fetch(`${srv.base}/metrics`)).text();
    assert.equal(metricValue(m, "seap_sequences_cancelled_total", '{reason="disconnect"}'), 1);
    // Histogram of engine steps run after the cancellation was signalled: all ≤ 1.
    assert.equal(metricValue(m, "seap_cancel_lag_steps_bucket", '{le="1"}'), 1);
    assert.ok(
      metricValue(m, "seap_engine_steps_total", '{kind="decode"}') < 100,
      "generation kept running",
    );
  } finally {
    restore();
    await srv.close();
  }
});

Deno.test("disconnect while queued or waiting for a non-streaming answer frees the slot", async () => {
  const { app, engine, scheduler, metrics } = await tinyApp({ maxConcurrent: 1, queueSize: 4 });
  const restore = slowDown(engine, 2);
  try {
    const ctrls = [new AbortController(), new AbortController()];
    const reqs = ctrls.map((c, i) =>
      app.request("/v1/completions", {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({
          model: engine.modelId,
          prompt: `x${i}`,
          max_tokens: 300,
          temperature: 0,
        }),
        signal: c.signal,
      })
    );
    await until(() => scheduler.activeCount === 1 && scheduler.queueDepth === 1);
    ctrls[1].abort(); // the queued one
    await until(() => scheduler.queueDepth === 0);
    ctrls[0].abort(); // the running one
    await until(() => scheduler.activeCount === 0);
    for (
      const r of await Promise.all(reqs.map((p) => Promise.resolve(p).catch((e: unknown) => e)))
    ) {
      if (r instanceof Response) assert.ok(r.status >= 400);
    }
    assert.equal(metrics.cancelled.get({ reason: "disconnect" }), 2);
  } finally {
    restore();
  }
});

Deno.test("per-request timeout: 504 for JSON, an error event for streams, the slot is freed", async () => {
  const { app, engine, scheduler, metrics } = await tinyApp({ maxConcurrent: 2, timeoutMs: 150 });
  const restore = slowDown(engine, 5);
  try {
    const r = await post(app, "/v1/completions", {
      model: engine.modelId,
      prompt: "slow",
      max_tokens: 400,
      temperature: 0,
    });
    assert.equal(r.status, 504);
    const j = await r.json();
    assert.equal(j.error.code, "timeout");
    const s = await post(app, "/v1/chat/completions", {
      model: engine.modelId,
      messages: [{ role: "user", content: "slow" }],
      max_tokens: 400,
      temperature: 0,
      stream: true,
    });
    assert.equal(s.status, 200);
    const text = await s.text();
    assert.match(text, /"code":"timeout"/);
    assert.equal(scheduler.activeCount, 0);
    assert.equal(metrics.cancelled.get({ reason: "timeout" }), 2);
  } finally {
    restore();
  }
});

Deno.test("readiness: 503 (OpenAI-shaped on /v1) until the engine is loaded, then 200", async () => {
  let resolve!: (e: ServerEngine) => void;
  const handle = new EngineHandle(new Promise<ServerEngine>((r) => (resolve = r)));
  const app = createApp(handle, {});
  const h = await app.request("/healthz");
  assert.equal(h.status, 503);
  assert.equal((await h.json()).status, "loading");
  const m = await app.request("/v1/models");
  assert.equal(m.status, 503);
  assert.equal((await m.json()).error.code, "not_ready");
  const c = await post(app, "/v1/completions", { model: "x", prompt: "x" });
  assert.equal(c.status, 503);
  assert.match(await (await app.request("/metrics")).text(), /seap_ready 0/);
  const engine = await tinyEngine();
  resolve(engine);
  await handle.settled;
  assert.equal((await app.request("/healthz")).status, 200);
  assert.equal((await app.request("/v1/models")).status, 200);
  assert.match(await (await app.request("/metrics")).text(), /seap_ready 1/);
  const failed = createApp(new EngineHandle(Promise.reject(new Error("no weights"))), {});
  await new Promise((r) => setTimeout(r, 0));
  const fh = await failed.request("/healthz");
  assert.equal(fh.status, 503);
  assert.equal((await fh.json()).status, "failed");
});
