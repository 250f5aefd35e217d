/**
 * The real `openai` npm client, unmodified, against a real Deno.serve on a random loopback
 * port: chat and text completions, non-streaming and streaming (with usage), seed
 * reproducibility, an explicit mask and auto routing.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { serveLoopback, tinyApp } from "./server_helpers.ts";

const JSON_HEADERS = { "content-type": "application/json" };

// deno-lint-ignore no-explicit-any
type Any = any;

async function withServer(
  fn: (client: OpenAI, model: string, base: string) => Promise<void>,
  threshold = 0,
) {
  const { app, engine } = await tinyApp({ threshold });
  const srv = serveLoopback(app.fetch);
  const client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: "test", maxRetries: 0 });
  try {
    await fn(client, engine.modelId, srv.base);
  } finally {
    await srv.close();
  }
}

Deno.test("openai client: chat completion, non-streaming, auto routing", async () => {
  await withServer(async (client, model) => {
    const { data, response } = await client.chat.completions.create({
      model,
      messages: [{ role: "system", content: "Be brief." }, {
        role: "user",
        content: "reverse: cat",
      }],
      max_tokens: 8,
      temperature: 0,
    }).withResponse();
    assert.equal(data.object, "chat.completion");
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].message.role, "assistant");
    assert.equal(typeof data.choices[0].message.content, "string");
    assert.ok(["stop", "length"].includes(data.choices[0].finish_reason));
    assert.equal(
      data.usage!.total_tokens,
      data.usage!.prompt_tokens + data.usage!.completion_tokens,
    );
    assert.ok(data.usage!.completion_tokens <= 8);
    const seap = (data as Any).seap;
    assert.equal(seap.selection, "auto");
    assert.ok(["alpha", "beta", "gamma"].includes(seap.task));
    assert.ok(seap.confidence > 0 && seap.confidence <= 1);
    assert.equal(seap.mask, `${seap.task}@0.5`);
    assert.equal(response.headers.get("x-seap-mask"), seap.mask);
    assert.equal(response.headers.get("x-seap-task"), seap.task);
    assert.equal(
      Number(response.headers.get("x-seap-confidence")).toFixed(3),
      seap.confidence.toFixed(3),
    );
  });
});

Deno.test("openai client: text completion with an explicit mask and sparsity", async () => {
  await withServer(async (client, model) => {
    const { data, response } = await client.completions.create({
      model,
      prompt: "Once upon a time",
      max_tokens: 6,
      temperature: 0,
      seap: { mask: "gamma", sparsity: 0.25 },
    } as Any).withResponse();
    assert.equal(data.object, "text_completion");
    assert.equal(
      data.usage!.completion_tokens,
      data.choices[0].finish_reason === "length" ? 6 : data.usage!.completion_tokens,
    );
    const seap = (data as Any).seap;
    assert.deepEqual(
      { mask: seap.mask, task: seap.task, selection: seap.selection, sparsity: seap.sparsity },
      { mask: "gamma@0.25", task: "gamma", selection: "forced", sparsity: 0.25 },
    );
    assert.equal(response.headers.get("x-seap-mask"), "gamma@0.25");
    assert.equal(response.headers.get("x-seap-selection"), "forced");
    // dense and generic too
    for (const [mask, want] of [["dense", "dense"], ["generic", "generic@0.5"]]) {
      const r = await client.completions.create(
        { model, prompt: "x", max_tokens: 2, seap: { mask } } as Any,
      );
      assert.equal((r as Any).seap.mask, want);
    }
  });
});

Deno.test("openai client: streaming chat with include_usage equals the non-streaming answer", async () => {
  await withServer(async (client, model) => {
    const req = {
      model,
      messages: [{ role: "user" as const, content: "count: 1 2 3" }],
      max_tokens: 12,
      temperature: 0,
    };
    const full = await client.chat.completions.create(req);
    const stream = await client.chat.completions.create({
      ...req,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: Any = null;
    let chunks = 0;
    let seap: Any = null;
    for await (const chunk of stream) {
      chunks++;
      if ((chunk as Any).seap) seap = (chunk as Any).seap;
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) {
        text += ch.delta.content ?? "";
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.ok(chunks >= 3);
    assert.equal(text, full.choices[0].message.content);
    assert.equal(finish, full.choices[0].finish_reason);
    assert.deepEqual(usage, full.usage);
    assert.equal(seap.mask, (full as Any).seap.mask);
  });
});

Deno.test("openai client: streaming text completion with usage", async () => {
  await withServer(async (client, model) => {
    const req = { model, prompt: "abc", max_tokens: 7, temperature: 0, seap: { mask: "alpha" } };
    const full = await client.completions.create(req as Any);
    const stream = await client.completions.create({
      ...req,
      stream: true,
      stream_options: { include_usage: true },
    } as Any) as unknown as AsyncIterable<Any>;
    let text = "";
    let usage: Any = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) text += ch.text;
    }
    assert.equal(text, full.choices[0].text);
    assert.deepEqual(usage, full.usage);
  });
});

Deno.test("openai client: a seed reproduces a sampled completion; another seed differs", async () => {
  await withServer(async (client, model) => {
    const ask = (seed: number) =>
      client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "tell me something" }],
        max_tokens: 24,
        temperature: 1.3,
        top_p: 0.95,
        seed,
      });
    const a = await ask(42);
    const b = await ask(42);
    const c = await ask(43);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.deepEqual(a.usage, b.usage);
    assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
  });
});

Deno.test("openai client: errors arrive as typed APIErrors (404 unknown model, 400 n>1, 404 mask)", async () => {
  await withServer(async (client, model) => {
    await assert.rejects(
      client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] }),
      (e: Any) =>
        e instanceof OpenAI.NotFoundError && e.code === "model_not_found" && e.param === "model",
    );
    await assert.rejects(
      client.chat.completions.create({ model, n: 2, messages: [{ role: "user", content: "x" }] }),
      (e: Any) =>
        e instanceof OpenAI.BadRequestError && e.param === "n" && /not supported/.test(e.message),
    );
    await assert.rejects(
      client.chat.completions.create(
        { model, messages: [{ role: "user", content: "x" }], seap: { mask: "zeta" } } as Any,
      ),
      (e: Any) => e instanceof OpenAI.NotFoundError && e.param === "seap.mask",
    );
    await assert.rejects(
      client.completions.create({ model, prompt: "x", seap: { sparsity: 0.3 } } as Any),
      (e: Any) => e instanceof OpenAI.NotFoundError && e.param === "seap.sparsity",
    );
    const models = await client.models.list();
    assert.equal(models.data[0].id, model);
    assert.ok((models.data[0] as Any).seap.masks.some((m: Any) => m.name === "beta@0.25"));
  });
});

Deno.test("route endpoint agrees with the mask a generation runs; low confidence falls back to generic", async () => {
  for (const threshold of [0, 1.01]) {
    const { app, engine } = await tinyApp({ threshold });
    const messages = [{ role: "user", content: "which task am I?" }];
    const route = await (await app.request("/v1/route", {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ messages }),
    })).json();
    const gen = await (await app.request("/v1/chat/completions", {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ model: engine.modelId, messages, max_tokens: 2 }),
    })).json();
    assert.equal(route.mask, gen.seap.mask);
    assert.equal(route.task, gen.seap.task);
    assert.equal(route.selection, threshold > 1 ? "fallback" : "auto");
    if (threshold > 1) assert.equal(route.mask, "generic@0.5");
  }
});
