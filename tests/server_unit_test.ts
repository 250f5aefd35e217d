/** Unit tests of the server's parts: settings, metrics text, OpenAPI document, schemas. */

import assert from "node:assert/strict";
import { DEFAULT_CONFIG, readServerConfig, ServerConfigError } from "../lib/server/config.ts";
import { Counter, Histogram, ServerMetrics } from "../lib/server/metrics.ts";
import { openApiDocument } from "../lib/server/openapi.ts";
import { ChatCompletionRequest, parseBody } from "../lib/server/schemas.ts";
import { ApiError } from "../lib/server/errors.ts";
import { post, tinyApp } from "./server_helpers.ts";

Deno.test("config: defaults, env, flags (flags win), clear errors", () => {
  assert.deepEqual(readServerConfig(() => undefined, []), DEFAULT_CONFIG);
  const env: Record<string, string> = {
    SEAP_MODEL: "/m",
    SEAP_MASKS: "/k",
    SEAP_BACKEND: "reference",
    SEAP_MAX_CONCURRENT: "8",
    SEAP_QUEUE: "0",
    SEAP_TIMEOUT_MS: "5000",
    SEAP_MAX_CONTEXT: "1024",
  };
  const c = readServerConfig((k) => env[k], ["--max-concurrent=2", "--queue", "7"]);
  assert.equal(c.modelDir, "/m");
  assert.equal(c.masksDir, "/k");
  assert.equal(c.backend, "reference");
  assert.equal(c.maxConcurrent, 2);
  assert.equal(c.queueSize, 7);
  assert.equal(c.timeoutMs, 5000);
  assert.equal(c.maxContext, 1024);
  assert.throws(
    () => readServerConfig((k) => (k === "SEAP_QUEUE" ? "lots" : undefined), []),
    ServerConfigError,
  );
  assert.throws(() => readServerConfig(() => undefined, ["--max-concurrent=0"]), /must be ≥ 1/);
  assert.throws(() => readServerConfig(() => undefined, ["--backend=cuda"]), /unknown backend/);
});

Deno.test("metrics: Prometheus text with labels, escaping and cumulative buckets", () => {
  const c = new Counter("x_total", "help");
  c.inc({ a: 'q"b' });
  c.inc({ a: 'q"b' }, 2);
  assert.match(c.render(), /x_total\{a="q\\"b"\} 3/);
  const h = new Histogram("lat", "help", [0.1, 1]);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const t = h.render();
  assert.match(t, /lat_bucket\{le="0.1"\} 1/);
  assert.match(t, /lat_bucket\{le="1"\} 2/);
  assert.match(t, /lat_bucket\{le="\+Inf"\} 3/);
  assert.match(t, /lat_count 3/);
  const all = new ServerMetrics().render();
  for (
    const name of [
      "seap_ready",
      "seap_requests_total",
      "seap_tokens_total",
      "seap_router_decisions_total",
    ]
  ) {
    assert.match(all, new RegExp(`# TYPE ${name} `));
  }
});

Deno.test("openapi: generated from the zod schemas, every $ref resolves", async () => {
  const { app } = await tinyApp();
  const doc = await (await app.request("/openapi.json")).json();
  assert.equal(doc.openapi, "3.0.3");
  for (
    const p of [
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/models",
      "/v1/route",
      "/healthz",
      "/metrics",
    ]
  ) {
    assert.ok(doc.paths[p], p);
  }
  const schemas = doc.components.schemas;
  assert.ok(schemas.ChatCompletionRequest.properties.seap);
  assert.equal(schemas.ChatCompletionRequest.additionalProperties, false);
  const refs = JSON.stringify(openApiDocument()).match(/#\/components\/schemas\/\w+/g)!;
  for (const r of refs) assert.ok(schemas[r.split("/").pop()!], `dangling ${r}`);
});

Deno.test("schemas: unknown fields and bad values name the parameter", () => {
  const base = { model: "m", messages: [{ role: "user", content: "x" }] };
  assert.doesNotThrow(() => parseBody(ChatCompletionRequest, base));
  const err = (b: unknown) => {
    try {
      parseBody(ChatCompletionRequest, b);
    } catch (e) {
      return e as ApiError;
    }
    throw new Error("accepted");
  };
  assert.equal(err({ ...base, foo: 1 }).param, "foo");
  assert.equal(err({ ...base, seap: { mask: "x", bar: 1 } }).param, "seap.bar");
  assert.equal(err({ ...base, temperature: 3 }).param, "temperature");
  assert.equal(
    err({ ...base, messages: [{ role: "user", content: 1 }] }).param,
    "messages.0.content",
  );
  assert.equal(err({ ...base, max_tokens: 0 }).status, 400);
});

Deno.test("chat: developer role maps to system; text parts are joined; stop strings end text", async () => {
  const { app, engine } = await tinyApp();
  const ask = (messages: unknown, extra = {}) =>
    post(app, "/v1/chat/completions", {
      model: engine.modelId,
      messages,
      max_tokens: 20,
      temperature: 0,
      ...extra,
    })
      .then((r) => r.json());
  const a = await ask([{ role: "developer", content: "rules" }, {
    role: "user",
    content: "hi there",
  }]);
  const b = await ask([{ role: "system", content: "rules" }, {
    role: "user",
    content: [{ type: "text", text: "hi " }, { type: "text", text: "there" }],
  }]);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
  const full: string = a.choices[0].message.content;
  if (full.length >= 4) {
    const stop = full.slice(2, 4);
    const s = await ask([{ role: "developer", content: "rules" }, {
      role: "user",
      content: "hi there",
    }], { stop });
    assert.equal(s.choices[0].finish_reason, "stop");
    assert.equal(s.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  }
});

Deno.test("models/:id, and a dense-only server (no mask set): auto runs dense, generic is a 404", async () => {
  const { makeEngine } = await import("../lib/server/engine_handle.ts");
  const { MaskCatalog } = await import("../lib/masks/catalog.ts");
  const { createApp } = await import("../lib/server/app.ts");
  const { tinyParts } = await import("./server_helpers.ts");
  const { model, tokenizer } = await tinyParts();
  const app = createApp(
    makeEngine(model, tokenizer, new MaskCatalog(model, [], null, { source: "none" })),
  );
  assert.equal((await app.request(`/v1/models/${model.name}`)).status, 200);
  assert.equal((await app.request("/v1/models/other")).status, 404);
  const r = await post(app, "/v1/completions", { model: model.name, prompt: "x", max_tokens: 2 });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-seap-mask"), "dense");
  assert.equal(r.headers.get("x-seap-selection"), "fallback");
  const g = await post(app, "/v1/completions", {
    model: model.name,
    prompt: "x",
    seap: { mask: "generic" },
  });
  assert.equal(g.status, 404);
  const route = await (await post(app, "/v1/route", { prompt: "x" })).json();
  assert.equal(route.mask, "dense");
  assert.equal(route.task, null);
});
