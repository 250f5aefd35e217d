/** The OpenAPI 3 document of the server, generated from the zod schemas in schemas.ts. */

import { z } from "zod";
import { apiRegistry } from "./schemas.ts";

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ "application/json": { schema: ref(id) } });
const errors = {
  "400": { description: "Invalid request", content: json("ErrorResponse") },
  "404": { description: "Unknown model or mask", content: json("ErrorResponse") },
  "413": { description: "Body or prompt too large", content: json("ErrorResponse") },
  "429": { description: "Queue full (see Retry-After)", content: json("ErrorResponse") },
  "503": { description: "Model not loaded yet", content: json("ErrorResponse") },
  "504": { description: "Per-request timeout", content: json("ErrorResponse") },
};
const seapHeaders = {
  "x-seap-mask": { schema: { type: "string" }, description: "Mask that ran" },
  "x-seap-task": { schema: { type: "string" }, description: 'Routed task ("none" if not routed)' },
  "x-seap-confidence": { schema: { type: "string" }, description: 'Router confidence or "none"' },
  "x-seap-sparsity": { schema: { type: "string" }, description: "Sparsity of the mask" },
  "x-seap-selection": { schema: { type: "string" }, description: "auto | fallback | forced" },
};

let cached: Record<string, unknown> | null = null;

/** The OpenAPI document (built once). */
export function openApiDocument(): Record<string, unknown> {
  if (cached) return cached;
  const { schemas } = z.toJSONSchema(apiRegistry, {
    target: "openapi-3.0",
    uri: (id) => `#/components/schemas/${id}`,
    io: "input",
    unrepresentable: "any",
  }) as { schemas: Record<string, Record<string, unknown>> };
  for (const s of Object.values(schemas)) delete s.$schema;
  const gen = (req: string, res: string, chunk: string, summary: string) => ({
    post: {
      summary,
      requestBody: { required: true, content: json(req) },
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
  cached = {
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
        "Chat completion through the model's chat template",
      ),
      "/v1/completions": gen("CompletionRequest", "Completion", "Completion", "Text completion"),
      "/v1/route": {
        post: {
          summary: "The router's decision for a prompt, without generating",
          requestBody: { required: true, content: json("RouteRequest") },
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
          responses: { "200": { description: "Model" }, "404": errors["404"] },
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
  return cached;
}
