/**
 * The HTTP layer: a Hono app over one loaded engine, routes only. Tests drive it with
 * `app.request()` or a real `Deno.serve`; production serves it from main.ts. Request checks
 * live in request_checks.ts, the mask plan in lib/masks/resolve.ts, generation in
 * completion_answer.ts and generation.ts, response bodies in openai_responses.ts.
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models(/:id),
 * POST /v1/route, GET /healthz, GET /metrics, GET /openapi.json.
 */

import { Hono } from "hono";
import { planMask } from "../masks/resolve.ts";
import { type Admission, admitByMemory } from "./admission.ts";
import { answerCompletion, type AnswerContext } from "./completion_answer.ts";
import { DEFAULT_CONFIG, type ServerConfig } from "./config.ts";
import { EngineHandle, type ServerEngine } from "./engine_handle.ts";
import { ApiError, notFound, notReady, toApiError } from "./errors.ts";
import { HealthProbeJob, RouteJob } from "./generation.ts";
import { ServerMetrics } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";
import { modelCard, routeBody, seapHeaders } from "./openai_responses.ts";
import { readJsonBody } from "./read_body.ts";
import { chatSpec, completionSpec, routeSpec } from "./request_checks.ts";
import { Scheduler } from "./scheduler.ts";
import { ChatCompletionRequest, CompletionRequest, parseBody, RouteRequest } from "./schemas.ts";

/** Limits of the app: the server settings it uses (defaults and env vars: config.ts). */
export type AppOptions =
  & Pick<
    ServerConfig,
    | "maxConcurrent"
    | "queueSize"
    | "timeoutMs"
    | "maxBodyBytes"
    | "readTimeoutMs"
    | "allowSpecialTokens"
    | "prefillChunk"
  >
  & {
    /** Metrics sink (one is created when omitted). */
    metrics?: ServerMetrics;
    /** Scheduler (one is created from the limits when omitted; tests pass theirs to hold it). */
    scheduler?: Scheduler;
  };

type Endpoint = "chat" | "completions" | "route" | "models";

/**
 * Build the app over a loaded engine, or over an {@link EngineHandle} still loading (then
 * every /v1 endpoint answers 503 until it is ready).
 */
export function createApp(
  engine: ServerEngine | EngineHandle,
  options: Partial<AppOptions> = {},
): Hono {
  const opts: AppOptions = { ...DEFAULT_CONFIG, ...options };
  const handle = engine instanceof EngineHandle ? engine : new EngineHandle(engine);
  const metrics = opts.metrics ?? new ServerMetrics();
  const scheduler = opts.scheduler ?? new Scheduler(opts, metrics);
  metrics.ready.set(handle.status === "ready" ? 1 : 0);
  handle.settled.then(() => metrics.ready.set(handle.status === "ready" ? 1 : 0));
  const app = new Hono();

  // Sized once, at the first request after loading (no sequence is live yet).
  let admission: Admission | null | undefined;
  const ready = (): ServerEngine => {
    if (handle.status === "ready" && handle.engine) {
      if (admission === undefined) {
        admission = admitByMemory(handle.engine, opts);
        if (handle.engine.contextLimit) {
          console.log(
            `seap: context capped at ${handle.engine.maxContext} tokens (${handle.engine.contextLimit})`,
          );
        }
      }
      return handle.engine;
    }
    if (handle.status === "failed") throw notReady(`The model failed to load: ${handle.error}`);
    if (handle.status === "draining") throw notReady("The server is shutting down.");
    if (handle.status === "broken") throw notReady(`The engine is broken: ${handle.error}`);
    throw notReady();
  };

  /**
   * After a request failed inside the engine, check that the engine still works (one probe at
   * a time, through the scheduler so it never overlaps a step); a failed probe marks the
   * engine broken so /healthz stops saying "ready" and the orchestrator replaces it.
   */
  let probing = false;
  const probe = (e: ServerEngine) => {
    if (probing || handle.status !== "ready") return;
    probing = true;
    try {
      scheduler.submit(
        new HealthProbeJob(e, (error) => {
          probing = false;
          if (error) {
            handle.markBroken(error);
            metrics.ready.set(0);
          }
        }),
      );
    } catch {
      probing = false; // queue full: the next failure probes again
    }
  };

  const record = (ep: Endpoint, status: number, mask: string, t0: number) => {
    metrics.requests.inc({ endpoint: ep, status: String(status), mask });
    metrics.latency.observe((performance.now() - t0) / 1000, { endpoint: ep });
  };

  /** Run a handler; any throw becomes an OpenAI-shaped error, and every answer is counted. */
  const guarded = (ep: Endpoint, fn: (req: Request, t0: number) => Promise<Response>) => {
    return async (c: { req: { raw: Request } }) => {
      const t0 = performance.now();
      try {
        return await fn(c.req.raw, t0);
      } catch (e) {
        const err = toApiError(e);
        if (err.status >= 500 && err.status !== 503 && err.status !== 504) {
          console.error(`seap: ${ep}: ${e instanceof Error ? e.stack : e}`);
        }
        record(ep, err.status, "none", t0);
        return err.toResponse();
      }
    };
  };

  /** The request body under this app's limits. */
  const readJson = (req: Request): Promise<unknown> =>
    readJsonBody(req, { maxBodyBytes: opts.maxBodyBytes, readTimeoutMs: opts.readTimeoutMs });

  const answering = (ep: Endpoint, e: ServerEngine, t0: number): AnswerContext => ({
    scheduler,
    metrics,
    timeoutMs: opts.timeoutMs,
    prefillChunk: opts.prefillChunk,
    record: (status, mask) => record(ep, status, mask, t0),
    probe: () => probe(e),
  });

  app.get("/healthz", (c) => {
    const body = {
      status: handle.status,
      model: handle.engine?.modelId ?? null,
      masks: handle.engine?.catalog.source ?? null,
      backend: handle.engine?.backendName ?? null,
      f16_path: handle.engine?.f16Path ?? null,
      error: handle.error,
    };
    return c.json(body, handle.status === "ready" ? 200 : 503);
  });

  app.get("/metrics", () => {
    metrics.ready.set(handle.status === "ready" ? 1 : 0);
    return new Response(metrics.render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument(handle.engine?.modelId)));

  app.get(
    "/v1/models",
    guarded("models", (_req, t0) => {
      const e = ready();
      record("models", 200, "none", t0);
      return Promise.resolve(Response.json({ object: "list", data: [modelCard(e, admission)] }));
    }),
  );

  app.get("/v1/models/:id{.+}", (c) =>
    guarded("models", (_req, t0) => {
      const e = ready();
      // Hono has already percent-decoded the parameter once; decoding it again turned "%25"
      // into a URIError (500) and "seap%252D..." into a match.
      const id = c.req.param("id");
      if (id !== e.modelId) {
        throw notFound(`The model '${id}' does not exist`, "model", "model_not_found");
      }
      record("models", 200, "none", t0);
      return Promise.resolve(Response.json(modelCard(e, admission)));
    })(c));

  app.post(
    "/v1/route",
    guarded("route", async (req, t0) => {
      const e = ready();
      const r = routeSpec(e, parseBody(RouteRequest, await readJson(req)), opts.allowSpecialTokens);
      const plan = planMask(e.catalog, r.seap);
      let info;
      if (plan.kind === "fixed") info = plan.choice.info;
      else {
        const job = new RouteJob(e, r.promptIds, plan, opts.timeoutMs, metrics);
        scheduler.submit(job, req.signal);
        for await (const ev of job.events) {
          if (ev.type === "error") {
            if (ev.error.status >= 500 && ev.error.status !== 504) probe(e);
            throw ev.error;
          }
          info = ev.info;
        }
        if (!info) throw new Error("routing ended without a decision");
      }
      record("route", 200, info.mask, t0);
      return Response.json(routeBody(e, r.promptIds.length, info), {
        headers: seapHeaders(info),
      });
    }),
  );

  app.post(
    "/v1/chat/completions",
    guarded("chat", async (req, t0) => {
      const e = ready();
      const r = parseBody(ChatCompletionRequest, await readJson(req));
      const spec = chatSpec(e, r, opts.allowSpecialTokens);
      return await answerCompletion(answering("chat", e, t0), e, req, spec);
    }),
  );

  app.post(
    "/v1/completions",
    guarded("completions", async (req, t0) => {
      const e = ready();
      const spec = completionSpec(e, parseBody(CompletionRequest, await readJson(req)));
      return await answerCompletion(answering("completions", e, t0), e, req, spec);
    }),
  );

  // A known path under the wrong method is a 405 naming the allowed ones (HEAD follows GET).
  const allowed: Record<string, string> = {
    "/healthz": "GET, HEAD",
    "/metrics": "GET, HEAD",
    "/openapi.json": "GET, HEAD",
    "/v1/models": "GET, HEAD",
    "/v1/models/:id{.+}": "GET, HEAD",
    "/v1/route": "POST",
    "/v1/chat/completions": "POST",
    "/v1/completions": "POST",
  };
  for (const [path, allow] of Object.entries(allowed)) {
    app.all(path, (c) =>
      new ApiError(
        405,
        "invalid_request_error",
        `Method ${c.req.method.slice(0, 32)} is not allowed on ${
          new URL(c.req.url).pathname.slice(0, 200)
        }; use ${allow}`,
        null,
        "method_not_allowed",
        { allow },
      ).toResponse());
  }

  app.notFound((c) => {
    const err = notFound(
      `Unknown path: ${c.req.method.slice(0, 32)} ${new URL(c.req.url).pathname.slice(0, 200)}`,
      null,
      "unknown_url",
    );
    return err.toResponse();
  });

  app.onError((e) => toApiError(e).toResponse());

  return app;
}
