/**
 * Fuzz: ≥ 1,000 malformed or hostile requests (bad JSON, wrong types, huge numbers, unknown
 * fields, oversized bodies, invalid UTF-8, empty messages, prompts longer than the context)
 * get only 4xx answers with OpenAI-shaped errors; a normal generation running meanwhile is
 * undisturbed, and the server answers normally afterwards.
 */

import assert from "node:assert/strict";
import { serveLoopback, tinyApp } from "./server_helpers.ts";
import { rng } from "../lib/util/seeded_rng.ts";

const JSON_HEADERS = { "content-type": "application/json" };

// deno-lint-ignore no-explicit-any
type Any = any;

const MAX_BODY = 32 * 1024;
const CONTEXT = 64;

interface Case {
  path: string;
  method?: string;
  body: string | Uint8Array<ArrayBuffer> | null;
  headers?: Record<string, string>;
  what: string;
}

function makeCases(model: string, n: number, seed: number): Case[] {
  const rand = rng(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)];
  const chat = () => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
  const text = () => ({ model, prompt: "hi", max_tokens: 2 });
  const longText = "word ".repeat(CONTEXT * 2);
  const weird = [
    null,
    true,
    false,
    -1,
    0,
    1e308,
    -1e308,
    2 ** 64,
    1.5,
    "",
    "x".repeat(300),
    [],
    [1, 2],
    {},
    { a: 1 },
    "NaN",
    "\u0000",
    "\ud800",
  ];
  const huge = [1e9, 2 ** 53, 1e300, -1e300, 2 ** 31, -(2 ** 31) - 1, 9e15];
  // Each mutation yields an invalid request for sure.
  const mutations: (() => Case)[] = [
    // bad JSON
    () => ({
      path: "/v1/chat/completions",
      body: pick([
        "{",
        "}",
        "[",
        '{"model":',
        "{'a':1}",
        '{"a":1,}',
        "nul",
        "tru",
        "{}}",
        '{"x":"\\u12"}',
        "\u0000",
      ]),
      what: "bad json",
    }),
    () => {
      const s = JSON.stringify(chat());
      return {
        path: "/v1/chat/completions",
        body: s.slice(0, Math.floor(rand() * (s.length - 1))),
        what: "truncated json",
      };
    },
    () => ({
      path: pick(["/v1/completions", "/v1/chat/completions", "/v1/route"]),
      body: "",
      what: "empty body",
    }),
    () => ({
      path: "/v1/completions",
      body: JSON.stringify(pick([[], [text()], 1, "str", null, true])),
      what: "non-object body",
    }),
    // wrong types
    () => {
      const b: Any = chat();
      const k = pick([
        "model",
        "messages",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "stream",
        "n",
        "seap",
        "stream_options",
        "max_completion_tokens",
        "logit_bias",
        "user",
      ]);
      const bad: Record<string, unknown[]> = {
        model: [null, 1, [], {}, "", "x".repeat(300)],
        messages: [
          null,
          "hi",
          1,
          {},
          [],
          [null],
          ["hi"],
          [{}],
          [{ role: "user" }],
          [{ role: 1, content: "x" }],
          [{ role: "user", content: 5 }],
          [{ role: "user", content: [] }],
          [{ role: "user", content: [{ type: "image_url", image_url: "x" }] }],
          [{ role: "tool", content: "x" }],
          [{ role: "wizard", content: "x" }],
        ],
        max_tokens: ["10", 0, -5, 1.5, true, [], {}],
        temperature: ["1", -0.1, 2.5, [], {}],
        top_p: [0, -1, 1.5, "0.5", []],
        stop: [1, [1], ["a", "b", "c", "d", "e"], [""], "", {}, ["x".repeat(600)]],
        seed: ["1", 1.5, 1e300, [], {}],
        stream: ["yes", 1, [], {}],
        n: [0, 2, 5, -1, 1.5, "1"],
        seap: [
          "dense",
          1,
          [],
          { mask: 1 },
          { sparsity: "0.5" },
          { sparsity: -1 },
          { sparsity: 2 },
          { mask: "" },
          { foo: 1 },
        ],
        stream_options: ["x", 1, { include_usage: "yes" }, { other: true }],
        max_completion_tokens: [0, -1, "5", 1.5],
        logit_bias: ["x", 1, { "1": "x" }, { "5": 10 }],
        user: [1, {}, "x".repeat(300)],
      };
      b[k] = pick(bad[k]);
      return { path: "/v1/chat/completions", body: JSON.stringify(b), what: `wrong type ${k}` };
    },
    () => {
      const b: Any = text();
      const k = pick(["prompt", "echo", "best_of", "logprobs", "suffix", "max_tokens"]);
      const bad: Record<string, unknown[]> = {
        prompt: [null, 1, {}, [], [1.5], [-1], [[]], ["a", "b"], [[1], [2]], [true], [999999], [[
          1,
          2,
        ], "x"]],
        echo: [true, "yes"],
        best_of: [2, 0.5, "2"],
        logprobs: [1, 5, "x"],
        suffix: ["tail", 1],
        max_tokens: [0, -1, "x", 1e9],
      };
      b[k] = pick(bad[k]);
      return { path: "/v1/completions", body: JSON.stringify(b), what: `wrong ${k}` };
    },
    // huge numbers
    () => {
      const b: Any = pick([chat, text])();
      const k = pick([
        "max_tokens",
        "temperature",
        "top_p",
        "seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
      ]);
      b[k] = pick(huge);
      if (k === "seed") b[k] = pick([1e300, -1e300, 2 ** 64, 1.5e20]);
      return {
        path: b.messages ? "/v1/chat/completions" : "/v1/completions",
        body: JSON.stringify(b),
        what: `huge ${k}`,
      };
    },
    () => ({
      path: "/v1/completions",
      body: `{"model":"${model}","prompt":"hi","max_tokens":1${"0".repeat(400)}}`,
      what: "huge literal",
    }),
    // unknown fields
    () => {
      const b: Any = pick([chat, text])();
      const where = pick(["top", "seap", "stream_options", "message"]);
      const key = pick([
        "foo",
        "__proto__x",
        "constructor",
        "functions",
        "temperaturee",
        "max_token",
        "stream-options",
      ]);
      const val = pick(weird);
      if (where === "top") b[key] = val;
      else if (where === "seap") b.seap = { mask: "dense", [key]: val };
      else if (where === "stream_options") {
        b.stream = true;
        b.stream_options = { include_usage: true, [key]: val };
      } else if (b.messages) b.messages[0][key] = val;
      else b[key] = val;
      return {
        path: b.messages ? "/v1/chat/completions" : "/v1/completions",
        body: JSON.stringify(b),
        what: `unknown ${where}.${key}`,
      };
    },
    // unsupported options
    () => {
      const b: Any = chat();
      const [k, v] = pick<[string, unknown]>([
        ["n", 3],
        ["logprobs", true],
        ["top_logprobs", 2],
        ["tools", [{ type: "function", function: { name: "f" } }]],
        ["tool_choice", "auto"],
        ["response_format", { type: "json_object" }],
        ["presence_penalty", 0.5],
        ["frequency_penalty", -0.5],
        ["logit_bias", { "3": 5 }],
        ["stream_options", { include_usage: true }],
      ]);
      b[k] = v;
      return { path: "/v1/chat/completions", body: JSON.stringify(b), what: `unsupported ${k}` };
    },
    // unknown model or mask
    () => {
      const b: Any = pick([chat, text])();
      if (rand() < 0.5) b.model = pick(["gpt-4o", "tiny_chat2", "../../etc/passwd", "x"]);
      else {b.seap = pick([{ mask: "zeta" }, { mask: "beta", sparsity: 0.3 }, {
          mask: "dense",
          sparsity: 0.5,
        }, { sparsity: 0.9 }]);}
      return {
        path: b.messages ? "/v1/chat/completions" : "/v1/completions",
        body: JSON.stringify(b),
        what: "unknown model/mask",
      };
    },
    // oversized bodies
    () => {
      const b: Any = chat();
      b.messages[0].content = "a".repeat(MAX_BODY + Math.floor(rand() * 1000));
      return { path: "/v1/chat/completions", body: JSON.stringify(b), what: "oversized body" };
    },
    // invalid UTF-8
    () => {
      const enc = new TextEncoder().encode(JSON.stringify(chat()));
      const bad = pick([[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xf0, 0x28, 0x8c, 0xbc], [
        0xed,
        0xa0,
        0x80,
      ], [0x80]]);
      const at = enc.indexOf(0x68); // the "h" of "hi"
      const out = new Uint8Array(enc.length + bad.length);
      out.set(enc.subarray(0, at));
      out.set(bad, at);
      out.set(enc.subarray(at), at + bad.length);
      return { path: "/v1/chat/completions", body: out, what: "invalid utf-8" };
    },
    // empty messages / content parts
    () => ({
      path: "/v1/chat/completions",
      body: JSON.stringify({ model, messages: pick([[], [{ role: "user", content: [] }], [{}]]) }),
      what: "empty messages",
    }),
    // prompt longer than the context, or max_tokens beyond it
    () => {
      const b: Any = pick([chat, text])();
      if (rand() < 0.7) {
        if (b.messages) b.messages[0].content = longText;
        else {b.prompt = rand() < 0.5
            ? longText
            : Array.from({ length: CONTEXT + 5 }, (_, i) => i % 200);}
        delete b.max_tokens;
      } else b.max_tokens = CONTEXT;
      return {
        path: b.messages ? "/v1/chat/completions" : "/v1/completions",
        body: JSON.stringify(b),
        what: "context",
      };
    },
    // route endpoint
    () => ({
      path: "/v1/route",
      body: JSON.stringify(
        pick([
          {},
          { prompt: "a", messages: [{ role: "user", content: "b" }] },
          { prompt: 1 },
          { prompt: longText },
          { messages: [] },
          { prompt: "a", model: "nope" },
          { prompt: "a", x: 1 },
          { prompt: "a", seap: { mask: "zeta" } },
        ]),
      ),
      what: "route",
    }),
    // wrong method, unknown path
    () => ({
      path: pick([
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/route",
        "/v1/nothing",
        "/",
        "/v2/models",
        "/v1/models/nope",
      ]),
      method: pick(["GET", "PUT", "DELETE", "PATCH"]),
      body: null,
      what: "method/path",
    }),
    // deep nesting
    () => ({
      path: "/v1/chat/completions",
      body: "[".repeat(20000) + "]".repeat(20000),
      what: "deep nesting",
    }),
    () => {
      const depth = 50 + Math.floor(rand() * 500);
      return {
        path: "/v1/completions",
        body: `{"model":"${model}","prompt":"hi","seap":${'{"mask":'.repeat(depth)}1${
          "}".repeat(depth)
        }}`,
        what: "deep object",
      };
    },
  ];
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) cases.push(mutations[i % mutations.length]());
  return cases;
}

function checkErrorShape(status: number, body: Any, what: string) {
  assert.ok(status >= 400 && status < 500, `${what}: status ${status} ${JSON.stringify(body)}`);
  assert.ok(body && typeof body === "object" && body.error, `${what}: no error object`);
  const e = body.error;
  assert.equal(typeof e.message, "string", what);
  assert.ok(e.message.length > 0, what);
  assert.equal(typeof e.type, "string", what);
  assert.ok(e.param === null || typeof e.param === "string", what);
  assert.ok(e.code === null || typeof e.code === "string", what);
}

Deno.test("fuzz: 1,200 malformed or hostile requests get only OpenAI-shaped 4xx, in process", async () => {
  const { app, engine, metrics } = await tinyApp({ maxBodyBytes: MAX_BODY, maxContext: CONTEXT });
  const normal = {
    model: engine.modelId,
    prompt: "a normal request",
    max_tokens: 40,
    temperature: 0,
    seap: { mask: "beta" },
  };
  const solo = await (await app.request("/v1/completions", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(normal),
  }))
    .json();
  // A normal generation runs throughout the fuzzing and must come out unchanged.
  const during = app.request("/v1/completions", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(normal),
  });
  const cases = makeCases(engine.modelId, 1200, 1234);
  const byStatus = new Map<number, number>();
  for (let i = 0; i < cases.length; i += 20) {
    await Promise.all(
      cases.slice(i, i + 20).map(async (c) => {
        const r = await app.request(c.path, {
          method: c.method ?? "POST",
          body: c.body ?? undefined,
          headers: c.headers ?? { "content-type": "application/json" },
        });
        const text = await r.text();
        let body: Any;
        try {
          body = JSON.parse(text);
        } catch {
          assert.fail(`${c.what}: non-JSON answer ${r.status}: ${text.slice(0, 200)}`);
        }
        checkErrorShape(r.status, body, c.what);
        byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
      }),
    );
  }
  const got = await (await during).json();
  assert.equal(got.choices[0].text, solo.choices[0].text);
  assert.deepEqual(got.usage, solo.usage);
  for (const s of [400, 404, 413]) assert.ok((byStatus.get(s) ?? 0) > 0, `no ${s} seen`);
  console.log("fuzz statuses:", Object.fromEntries([...byStatus].sort()));
  // Still healthy afterwards.
  const after = await app.request("/v1/completions", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(normal),
  });
  assert.equal(after.status, 200);
  assert.equal((await after.json()).choices[0].text, solo.choices[0].text);
  assert.equal(metrics.rejected.get(), 0);
});

Deno.test("fuzz: hostile requests over real sockets (oversized, invalid UTF-8, bad JSON) on loopback", async () => {
  const { app, engine } = await tinyApp({ maxBodyBytes: MAX_BODY, maxContext: CONTEXT });
  const srv = serveLoopback(app.fetch);
  try {
    const cases = makeCases(engine.modelId, 200, 99);
    for (let i = 0; i < cases.length; i += 10) {
      await Promise.all(
        cases.slice(i, i + 10).map(async (c) => {
          const r = await fetch(srv.base + c.path, {
            method: c.method ?? "POST",
            body: c.body ?? undefined,
            headers: c.headers ?? { "content-type": "application/json" },
          });
          checkErrorShape(r.status, await r.json(), c.what);
        }),
      );
    }
    // A body far over the limit, streamed without a content-length.
    const big = new ReadableStream<Uint8Array>({
      start(ctrl) {
        for (let i = 0; i < 16; i++) ctrl.enqueue(new Uint8Array(16 * 1024).fill(0x61));
        ctrl.close();
      },
    });
    const r = await fetch(srv.base + "/v1/completions", { method: "POST", body: big });
    assert.equal(r.status, 413);
    checkErrorShape(r.status, await r.json(), "chunked oversized");
    const ok = await fetch(srv.base + "/v1/completions", {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ model: engine.modelId, prompt: "fine", max_tokens: 3 }),
    });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).usage.completion_tokens <= 3, true);
  } finally {
    await srv.close();
  }
});

Deno.test("a huge prompt under the body limit is refused before tokenizing (no stall for others)", async () => {
  const { app, engine } = await tinyApp({ maxBodyBytes: 4 << 20 });
  for (
    const body of [
      { model: engine.modelId, prompt: "hello world ".repeat(80_000) },
      {
        model: engine.modelId,
        messages: [{ role: "user", content: "hello world ".repeat(80_000) }],
      },
    ]
  ) {
    const t0 = performance.now();
    const r = await app.request(body.prompt ? "/v1/completions" : "/v1/chat/completions", {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify(body),
    });
    const ms = performance.now() - t0;
    const j = await r.json();
    assert.equal(r.status, 413);
    assert.equal(j.error.code, "context_length_exceeded");
    assert.equal(j.error.param, body.prompt ? "prompt" : "messages");
    assert.ok(ms < 300, `took ${ms.toFixed(0)} ms`);
  }
});
