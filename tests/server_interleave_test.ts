/**
 * Token-level interleaving changes nothing: N concurrent greedy requests with different masks
 * return exactly what each returns alone, and a short request is not blocked by a long one.
 */

import assert from "node:assert/strict";
import { post, tinyApp } from "./server_helpers.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const CASES = [
  { seap: { mask: "dense" }, prompt: "The first story", max_tokens: 40 },
  { seap: { mask: "generic", sparsity: 0.25 }, prompt: "A second prompt", max_tokens: 17 },
  { seap: { mask: "alpha", sparsity: 0.25 }, prompt: "alpha alpha", max_tokens: 23 },
  { seap: { mask: "beta" }, prompt: "beta beta beta", max_tokens: 9 },
  { seap: { mask: "auto" }, prompt: "route me please", max_tokens: 31 },
  { seap: { mask: "gamma", sparsity: 0.5 }, prompt: "gamma", max_tokens: 12 },
  { seap: { mask: "auto", sparsity: 0.25 }, prompt: "another routed one", max_tokens: 5 },
  { seap: { mask: "dense" }, prompt: "short", max_tokens: 3 },
];

Deno.test("interleaving: concurrent requests with different masks equal their solo runs (greedy)", async () => {
  const { app, engine, metrics } = await tinyApp({ maxConcurrent: CASES.length });
  const body = (c: typeof CASES[number], chat: boolean) =>
    chat
      ? {
        model: engine.modelId,
        messages: [{ role: "user", content: c.prompt }],
        max_tokens: c.max_tokens,
        temperature: 0,
        seap: c.seap,
      }
      : {
        model: engine.modelId,
        prompt: c.prompt,
        max_tokens: c.max_tokens,
        temperature: 0,
        seap: c.seap,
      };
  for (const chat of [false, true]) {
    const path = chat ? "/v1/chat/completions" : "/v1/completions";
    const solo: Any[] = [];
    for (const c of CASES) {
      const r = await post(app, path, body(c, chat));
      assert.equal(r.status, 200);
      solo.push(await r.json());
    }
    const masks = new Set(solo.map((s) => s.seap.mask));
    assert.ok(masks.size >= 5, `want several distinct masks, got ${[...masks]}`);
    const stepsBefore = metrics.steps.get({ kind: "decode" });
    const together: Any[] = await Promise.all(
      CASES.map((c) => post(app, path, body(c, chat)).then((r) => r.json())),
    );
    assert.ok(metrics.steps.get({ kind: "decode" }) > stepsBefore);
    for (let i = 0; i < CASES.length; i++) {
      const a = solo[i];
      const b = together[i];
      const text = (x: Any): string => chat ? x.choices[0].message.content : x.choices[0].text;
      assert.equal(text(b), text(a), `case ${i} (${a.seap.mask}) text differs when interleaved`);
      assert.deepEqual(b.usage, a.usage);
      assert.equal(b.choices[0].finish_reason, a.choices[0].finish_reason);
      assert.deepEqual(b.seap, a.seap);
    }
  }
});

Deno.test("interleaving: a short request started after a long one finishes first", async () => {
  const { app, engine } = await tinyApp({ maxConcurrent: 4 });
  const order: string[] = [];
  const long = post(app, "/v1/completions", {
    model: engine.modelId,
    prompt: "long",
    max_tokens: 300,
    temperature: 0,
    stop: null,
  }).then(async (r) => {
    const j = await r.json();
    order.push("long");
    return j;
  });
  await new Promise((r) => setTimeout(r, 5));
  const short = post(app, "/v1/completions", {
    model: engine.modelId,
    prompt: "short",
    max_tokens: 3,
    temperature: 0,
  }).then(async (r) => {
    await r.json();
    order.push("short");
  });
  await Promise.all([long, short]);
  assert.deepEqual(order, ["short", "long"]);
});

Deno.test("long prompts prefill in chunks: same output as one step, and a short request overtakes", async () => {
  const long = "one two three four five six seven eight nine ten ".repeat(8);
  const results: Any[] = [];
  for (const prefillChunk of [0, 16]) {
    const { app, engine, metrics } = await tinyApp({ prefillChunk, maxConcurrent: 4 });
    const out: Any[] = [];
    for (const mask of ["auto", "beta", "dense"]) {
      const r = await post(app, "/v1/completions", {
        model: engine.modelId,
        prompt: long,
        max_tokens: 12,
        temperature: 0,
        seap: { mask },
      });
      const j = await r.json();
      assert.ok(j.usage.prompt_tokens > 64, `prompt has ${j.usage.prompt_tokens} tokens`);
      out.push([j.choices[0].text, j.seap.mask, j.seap.confidence]);
    }
    results.push(out);
    if (prefillChunk > 0) {
      assert.ok(metrics.steps.get({ kind: "prefill" }) >= 3 * 5, "prefill was not chunked");
      const order: string[] = [];
      const a = post(app, "/v1/completions", {
        model: engine.modelId,
        prompt: long,
        max_tokens: 1,
        temperature: 0,
        seap: { mask: "dense" },
      }).then(() => order.push("long"));
      await new Promise((r) => setTimeout(r, 1));
      const b = post(app, "/v1/completions", {
        model: engine.modelId,
        prompt: "hi",
        max_tokens: 2,
        temperature: 0,
      }).then(() => order.push("short"));
      await Promise.all([a, b]);
      assert.deepEqual(order, ["short", "long"]);
    }
  }
  assert.deepEqual(results[1], results[0]);
});
