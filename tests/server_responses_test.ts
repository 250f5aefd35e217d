/**
 * What the server actually sends matches the zod response schemas of lib/server/schemas.ts
 * (the ones /openapi.json publishes): every body and every streamed chunk of chat and text
 * completions, usage chunks, /v1/models, /v1/route and error bodies. A schema parse strips
 * keys it does not know, so each body must equal its own parse: a field the schema lacks
 * fails as surely as a field of the wrong type.
 */

import assert from "node:assert/strict";
import type { z } from "zod";
import {
  ChatCompletion,
  ChatCompletionChunk,
  Completion,
  ErrorResponse,
  ModelList,
  RouteResponse,
} from "../lib/server/schemas.ts";
import { post, tinyApp } from "./server_helpers.ts";

/** Parse `body` with `schema` and require nothing to be stripped or changed. */
function conforms(schema: z.ZodType, body: unknown, what: string): void {
  const r = schema.safeParse(body);
  assert.ok(r.success, `${what}: ${r.success ? "" : JSON.stringify(r.error.issues)}`);
  assert.deepEqual(r.data, body, `${what}: fields outside the schema`);
}

/** The `data:` events of an SSE body, JSON-parsed, with the final `[DONE]`. */
async function events(res: Response): Promise<unknown[]> {
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  const frames = (await res.text()).split("\n\n").filter((f) => f.startsWith("data: "));
  return frames.map((f) => f.slice(6)).map((d) => d === "[DONE]" ? d : JSON.parse(d));
}

Deno.test("responses: completions, chunks, usage, models, route and errors match their schemas", async () => {
  const { app, engine } = await tinyApp();
  const model = engine.modelId;
  const messages = [{ role: "user", content: "reverse: cat" }];

  for (const seap of [undefined, { mask: "beta" }, { mask: "dense" }]) {
    const chat = await post(app, "/v1/chat/completions", { model, messages, max_tokens: 4, seap });
    assert.equal(chat.status, 200);
    conforms(ChatCompletion, await chat.json(), `chat (${JSON.stringify(seap)})`);
    const text = await post(app, "/v1/completions", { model, prompt: "abc", max_tokens: 4, seap });
    assert.equal(text.status, 200);
    conforms(Completion, await text.json(), `completion (${JSON.stringify(seap)})`);
  }

  for (const include_usage of [true, false]) {
    const opts = include_usage ? { stream_options: { include_usage } } : {};
    const chat = await events(
      await post(app, "/v1/chat/completions", {
        model,
        messages,
        max_tokens: 6,
        stream: true,
        ...opts,
      }),
    );
    assert.equal(chat.at(-1), "[DONE]");
    const chunks = chat.slice(0, -1);
    assert.ok(chunks.length >= 2 + (include_usage ? 1 : 0), `${chunks.length} chunks`);
    chunks.forEach((c, i) => conforms(ChatCompletionChunk, c, `chat chunk ${i}`));
    if (include_usage) {
      const last = chunks.at(-1) as { choices: unknown[]; usage: unknown };
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage !== null);
    }
    const text = await events(
      await post(app, "/v1/completions", {
        model,
        prompt: "abc",
        max_tokens: 6,
        stream: true,
        ...opts,
      }),
    );
    assert.equal(text.at(-1), "[DONE]");
    text.slice(0, -1).forEach((c, i) => conforms(Completion, c, `completion chunk ${i}`));
  }

  const list = await app.request("/v1/models");
  conforms(ModelList, await list.json(), "/v1/models");
  const card = await app.request(`/v1/models/${model}`);
  conforms(ModelList.shape.data.element, await card.json(), "/v1/models/{id}");

  for (const seap of [undefined, { mask: "gamma" }]) {
    const route = await post(app, "/v1/route", { messages, seap });
    assert.equal(route.status, 200);
    conforms(RouteResponse, await route.json(), `route (${JSON.stringify(seap)})`);
  }

  const errors = [
    await post(app, "/v1/chat/completions", { model: "nope", messages }),
    await post(app, "/v1/chat/completions", { model, messages, seap: { mask: "nope" } }),
    await post(app, "/v1/chat/completions", { model, messages, seap: { sparsity: 0.9 } }),
    await post(app, "/v1/chat/completions", {
      model,
      messages,
      seap: { mask: "beta@0.5", sparsity: 0.25 },
    }),
    await post(app, "/v1/completions", { model, prompt: "x", n: 2 }),
    await app.request("/v1/nowhere"),
  ];
  assert.deepEqual(errors.map((r) => r.status), [404, 404, 404, 400, 400, 404]);
  for (const [i, r] of errors.entries()) conforms(ErrorResponse, await r.json(), `error ${i}`);
});
