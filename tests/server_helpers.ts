/**
 * Test fixtures for the server tests: the tiny chat model with a random fixture mask set
 * (task and generic masks at two sparsities, first layers protected) and a random linear
 * router, plus a real Deno.serve on a random loopback port.
 */

import type { Backend } from "../lib/backends/backend.ts";
import type { Mask } from "../lib/model/mask.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { type AppOptions, createApp } from "../lib/server/app.ts";
import { makeEngine, type ServerEngine } from "../lib/server/engine_handle.ts";
import { MaskCatalog } from "../lib/masks/catalog.ts";
import type { Router } from "../lib/masks/router.ts";
import { ServerMetrics } from "../lib/server/metrics.ts";
import { Scheduler } from "../lib/server/scheduler.ts";
import { rng, subset } from "./helpers/seeded.ts";

/** Folder of the tiny chat fixture model. */
export const TINY_CHAT = new URL("./fixtures/tiny_chat", import.meta.url).pathname;

/** Fixture task names. */
export const FIXTURE_TASKS = ["alpha", "beta", "gamma"];

/** A random mask: layers [0, m) dense, the rest keep (1 - sparsity) of neurons and heads. */
export function randomMask(
  model: Model,
  name: string,
  sparsity: number,
  m: number,
  seed: number,
): Mask {
  const c = model.config;
  const rand = rng(seed);
  return {
    name,
    layers: Array.from({ length: c.numLayers }, (_, l) => {
      const s = l < m ? 0 : sparsity;
      return {
        neurons: subset(
          c.intermediateSize,
          Math.max(1, Math.round(c.intermediateSize * (1 - s))),
          rand,
        ),
        heads: subset(c.numHeads, Math.max(1, Math.round(c.numHeads * (1 - s))), rand),
        biasAttn: null,
        biasFfn: s > 0
          ? Float32Array.from({ length: c.hiddenSize }, () => (rand() - 0.5) * 0.01)
          : null,
      };
    }),
  };
}

/**
 * A random linear router over the hidden size (raw features, no standardisation), softmax
 * confidence, no out-of-distribution test; served by lib/masks/router.ts like a trained one.
 */
export function randomRouter(H: number, layer: number, threshold: number, seed = 7): Router {
  const rand = rng(seed);
  const C = FIXTURE_TASKS.length;
  return {
    tasks: FIXTURE_TASKS,
    layer,
    threshold,
    mean: new Float32Array(H), // [H] zeros: features as they are
    std: new Float32Array(H).fill(1), // [H]
    weight: Float32Array.from({ length: C * H }, () => 4 * (rand() - 0.5)), // [C, H]
    bias: new Float32Array(C), // [C]
    ood: null,
  };
}

let cached: Promise<{ model: Model; tokenizer: Tokenizer }> | null = null;

/** Load the tiny chat model once per test process. */
export function tinyParts(): Promise<{ model: Model; tokenizer: Tokenizer }> {
  cached ??= (async () => ({
    model: await loadModel(TINY_CHAT),
    tokenizer: await Tokenizer.load(TINY_CHAT),
  }))();
  return cached;
}

/** The tiny model with a fixture mask set (tasks × {0.25, 0.5} + generic) and router. */
export async function tinyEngine(
  opts: {
    threshold?: number;
    maxContext?: number;
    defaultMaxTokens?: number;
    /** Load a fresh copy of the model on this backend (default: the shared reference one). */
    backend?: Backend;
  } = {},
): Promise<ServerEngine> {
  const { model, tokenizer } = opts.backend
    ? {
      model: await loadModel(TINY_CHAT, { backend: opts.backend }),
      tokenizer: await Tokenizer.load(TINY_CHAT),
    }
    : await tinyParts();
  const m = 2;
  const masks = [];
  let seed = 1;
  for (const s of [0.25, 0.5]) {
    masks.push({
      mask: randomMask(model, `generic@${s}`, s, m, seed++),
      kind: "generic" as const,
      task: null,
      sparsity: s,
    });
    for (const t of FIXTURE_TASKS) {
      masks.push({
        mask: randomMask(model, `${t}@${s}`, s, m, seed++),
        kind: "task" as const,
        task: t,
        sparsity: s,
      });
    }
  }
  const router = randomRouter(model.config.hiddenSize, m, opts.threshold ?? 0.0);
  const catalog = new MaskCatalog(model, masks, router, {
    defaultSparsity: 0.5,
    source: "fixture",
  });
  return makeEngine(model, tokenizer, catalog, {
    maxContext: opts.maxContext ?? null,
    defaultMaxTokens: opts.defaultMaxTokens ?? 32,
  });
}

/** An app over the tiny engine with its scheduler and metrics exposed. */
export async function tinyApp(
  opts: Partial<AppOptions> & { threshold?: number; maxContext?: number; backend?: Backend } = {},
) {
  const engine = await tinyEngine(opts);
  const metrics = new ServerMetrics();
  const scheduler = new Scheduler({
    maxConcurrent: opts.maxConcurrent ?? 4,
    queueSize: opts.queueSize ?? 32,
    timeoutMs: opts.timeoutMs ?? 60_000,
  }, metrics);
  const app = createApp(engine, { ...opts, metrics, scheduler });
  return { app, engine, metrics, scheduler };
}

/** Serve `app` on 127.0.0.1 at a random port; returns its base URL and a shutdown. */
export function serveLoopback(fetch: (req: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, fetch);
  const addr = server.addr as Deno.NetAddr;
  return { base: `http://127.0.0.1:${addr.port}`, close: () => server.shutdown(), server };
}

/** POST JSON to the app in-process. */
export async function post(
  app: { request: (p: string, init?: RequestInit) => Response | Promise<Response> },
  path: string,
  body: unknown,
): Promise<Response> {
  return await app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
