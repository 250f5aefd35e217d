/** The OpenAPI 3 document of the server, generated from the zod schemas in schemas.ts. */

import { z } from "zod";
import { apiRegistry } from "./schemas.ts";

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ "application/json": { schema: ref(id) } });
/** A JSON request body with named examples (every example is sent to the server in a test). */
const jsonIn = (id: string, examples: Record<string, { summary: string; value: unknown }>) => ({
  "application/json": { schema: ref(id), examples },
});
const errors = {
  "400": { description: "Invalid request", content: json("ErrorResponse") },
  "404": { description: "Unknown model or mask", content: json("ErrorResponse") },
  "405": { description: "Wrong method (see Allow)", content: json("ErrorResponse") },
  "408": { description: "The body did not arrive in time", content: json("ErrorResponse") },
  "413": { description: "Body or prompt too large", content: json("ErrorResponse") },
  "415": {
    description: "Not application/json, or a Content-Encoding other than gzip / deflate",
    content: json("ErrorResponse"),
  },
  "429": { description: "Queue full (see Retry-After)", content: json("ErrorResponse") },
  "503": {
    description: "Model not loaded yet, draining, engine broken, or not enough memory",
    content: json("ErrorResponse"),
  },
  "504": { description: "Per-request timeout", content: json("ErrorResponse") },
};
const seapHeaders = {
  "x-seap-mask": { schema: { type: "string" }, description: "Mask that ran" },
  "x-seap-task": { schema: { type: "string" }, description: 'Routed task ("none" if not routed)' },
  "x-seap-confidence": { schema: { type: "string" }, description: 'Router confidence or "none"' },
  "x-seap-sparsity": { schema: { type: "string" }, description: "Sparsity of the mask" },
  "x-seap-selection": { schema: { type: "string" }, description: "auto | fallback | forced" },
};

const cached = new Map<string, Record<string, unknown>>();

/** Example request bodies per operation, for a server serving `model`. */
function examples(model: string) {
  const user = (content: string) => [{ role: "user", content }];
  return {
    chat: {
      basic: {
        summary: "A chat turn (the router picks the mask)",
        value: { model, messages: user("Reverse the letters: j g t v s"), max_tokens: 16 },
      },
      streamed: {
        summary: "Streamed, with usage, on the generic mask at sparsity 0.5",
        value: {
          model,
          messages: [{ role: "system", content: "Answer briefly." }, ...user("Say hi")],
          stream: true,
          stream_options: { include_usage: true },
          max_completion_tokens: 8,
          seap: { mask: "generic", sparsity: 0.5 },
        },
      },
      seeded: {
        summary: "Sampled with a seed (replays the same tokens), dense",
        value: {
          model,
          messages: user("Count the letter a in banana"),
          temperature: 0.8,
          top_p: 0.9,
          seed: 1234567890123,
          max_tokens: 8,
          stop: ["\n"],
          seap: { mask: "dense" },
        },
      },
    },
    completions: {
      text: {
        summary: "A raw text prompt",
        value: { model, prompt: "The capital of", max_tokens: 8 },
      },
      ids: {
        summary: "A prompt of token ids, greedy",
        value: { model, prompt: [1, 2, 3], max_tokens: 4, temperature: 0 },
      },
    },
    route: {
      prompt: { summary: "Route a text prompt", value: { prompt: "Sort the digits 3 1 2" } },
      messages: {
        summary: "Route a chat at sparsity 0.5",
        value: { model, messages: user("Uppercase the word hello"), seap: { sparsity: 0.5 } },
      },
    },
  };
}

/**
 * The OpenAPI 3.0.3 document (built once per model id; `model` fills the examples' `model`
 * field so that every example is a request this server accepts).
 */
export function openApiDocument(model = "seap-tiny-skills"): Record<string, unknown> {
  const hit = cached.get(model);
  if (hit) return hit;
  const ex = examples(model);
  const { schemas } = z.toJSONSchema(apiRegistry, {
    target: "openapi-3.0",
    uri: (id) => `#/components/schemas/${id}`,
    io: "input",
    unrepresentable: "any",
  }) as { schemas: Record<string, Record<string, unknown>> };
  // OpenAPI 3.0's Schema Object has no $schema / $id (JSON Schema keywords zod emits).
  for (const s of Object.values(schemas)) {
    delete s.$schema;
    delete s.$id;
  }
  const gen = (
    req: string,
    res: string,
    chunk: string,
    summary: string,
    reqExamples: Record<string, { summary: string; value: unknown }>,
  ) => ({
    post: {
      summary,
      requestBody: { required: true, content: jsonIn(req, reqExamples) },
      responses: {
        "200": {
          description: "Completion (JSON), or SSE chunks when stream is true",
          headers: seapHeaders,
          content: { ...json(res), "text/event-stream": { schema: ref(chunk) } },
        },
        ...errors,
      },
    },
  });
  const doc = {
    openapi: "3.0.3",
    info: {
      title: "SEAP edge inference",
      version: "1.0.0",
      description: "OpenAI-compatible completions with task-routed structured pruning masks. " +
        "Every generation reports the mask it ran in a `seap` body field and x-seap-* headers.",
    },
    paths: {
      "/v1/chat/completions": gen(
        "ChatCompletionRequest",
        "ChatCompletion",
        "ChatCompletionChunk",
        "Chat completion through the model's chat template (content is plain text)",
        ex.chat,
      ),
      "/v1/completions": gen(
        "CompletionRequest",
        "Completion",
        "Completion",
        "Text completion",
        ex.completions,
      ),
      "/v1/route": {
        post: {
          summary: "The router's decision for a prompt, without generating",
          requestBody: { required: true, content: jsonIn("RouteRequest", ex.route) },
          responses: {
            "200": { description: "Decision", content: json("RouteResponse") },
            ...errors,
          },
        },
      },
      "/v1/models": {
        get: {
          summary: "The model and its masks",
          responses: { "200": { description: "Models", content: json("ModelList") } },
        },
      },
      "/v1/models/{id}": {
        get: {
          summary: "One model (404 for another id)",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            "200": { description: "Model", content: { "application/json": { schema: {} } } },
            "404": errors["404"],
          },
        },
      },
      "/healthz": {
        get: {
          summary: "Readiness: 200 once the model and masks are loaded, else 503",
          responses: { "200": { description: "Ready" }, "503": { description: "Not ready" } },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          responses: {
            "200": {
              description: "Text exposition",
              content: { "text/plain": { schema: { type: "string" } } },
            },
          },
        },
      },
    },
    components: { schemas },
  };
  cached.set(model, doc);
  return doc;
}
