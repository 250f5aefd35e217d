/**
 * What routing costs a request, measured the way the server serves one (lib/server/
 * generation.ts): prefill the protected leading layers, route on their mean hidden state,
 * finish the prefill, decode. The head prefill is work the request needs anyway (those layers
 * are dense in every SEAP mask), so the extra cost is the router itself; the head's share is
 * reported too, as the bound for a prompt too long to share the head pass.
 */

import type { Model } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { encodeSample } from "./collect_stats.ts";
import { route, type Router } from "../masks/router.ts";
import { argmax } from "../generate/sampler.ts";

/** Routing cost over a set of prompts (seconds are totals over the prompts). */
export interface RoutingCost {
  prompts: number;
  /** Tokens decoded per request (greedy, EOS ignored: a fixed-length reply). */
  newTokens: number;
  /** The router's decision alone (standardise, C + 1 dot products, softmax). */
  routerSeconds: number;
  /** Prefill of the protected leading layers (shared with the request's own prefill). */
  headSeconds: number;
  /** Whole requests: head + route + rest of the prefill + decode. */
  requestSeconds: number;
  /** routerSeconds / requestSeconds: the extra cost of routing. */
  routerShare: number;
  /** (headSeconds + routerSeconds) / requestSeconds: the cost were the head pass not reused. */
  headAndRouterShare: number;
}

/** Time `prompts` (chat-rendered) as requests of `newTokens` decoded tokens, dense weights. */
export async function measureRoutingCost(
  model: Model,
  tok: Tokenizer,
  router: Router,
  prompts: string[],
  opts: { newTokens?: number; maxTokens?: number } = {},
): Promise<RoutingCost> {
  const newTokens = opts.newTokens ?? 32;
  let routerMs = 0, headMs = 0, totalMs = 0;
  for (const p of prompts) {
    const ids = encodeSample(tok, p, opts.maxTokens ?? 256);
    const seq = new Sequence(model, { maxTokens: ids.length + newTokens });
    try {
      const t0 = performance.now();
      const feat = await seq.prefillHead(ids, router.layer);
      const t1 = performance.now();
      route(router, feat);
      const t2 = performance.now();
      let logits = await seq.prefillTail();
      for (let i = 0; i + 1 < newTokens; i++) logits = await seq.decode(argmax(logits));
      const t3 = performance.now();
      headMs += t1 - t0;
      routerMs += t2 - t1;
      totalMs += t3 - t0;
    } finally {
      seq.free();
    }
  }
  return {
    prompts: prompts.length,
    newTokens,
    routerSeconds: routerMs / 1000,
    headSeconds: headMs / 1000,
    requestSeconds: totalMs / 1000,
    routerShare: routerMs / totalMs,
    headAndRouterShare: (headMs + routerMs) / totalMs,
  };
}
