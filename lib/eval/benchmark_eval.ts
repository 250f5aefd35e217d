/**
 * Scoring one benchmark set (see lib/eval/datasets.ts for the row shapes) under a mask choice:
 * multiple choice by log-likelihood (acc and acc_norm, the context prefilled once and every
 * choice scored from a fork of its KV cache), WinoGrande partial scoring (acc), GSM8K greedy
 * generation judged on the last number (exact_match), and rolling-window perplexity.
 */

import { argmax } from "../generate/sampler.ts";
import type { Model } from "../model/model.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import type {
  ChoiceRow,
  Dataset,
  GenerationRow,
  PartialRow,
  RowKind,
  TextRow,
} from "./datasets.ts";
import { lastNumberMatches } from "./last_number.ts";
import { argmaxOf, byteLength, encodeChoices, fitContext, scoreForked } from "./loglik.ts";
import { maskFor, type MaskPicker, startSequence } from "./mask_picker.ts";
import {
  type DocumentNll,
  perplexityMetrics,
  rollingNll,
  wordCount,
} from "./rolling_perplexity.ts";

/** Options of {@link evaluateDataset}. */
export interface BenchmarkOptions {
  /** Most tokens one sequence may hold (default: the model's context length). */
  maxTokens?: number;
  /** Most tokens generated per generation row (default 256). */
  maxGen?: number;
  /** Generation stops at the first of these strings (default lm-eval's GSM8K: "Question:", "\n\n"). */
  stop?: string[];
  /** Rolling-perplexity window (default min(maxTokens, 1024)) and stride (default the window). */
  window?: number;
  stride?: number;
  /** Called after every row. */
  onRow?: () => void;
}

/** Result of one set under one mask choice. */
export interface DatasetResult {
  task: string;
  kind: RowKind | "suite";
  n: number;
  /** acc / acc_norm, exact_match, or perplexities. */
  metrics: Record<string, number>;
  /** Rows whose context was cut on the left to fit the window. */
  truncated: number;
  /** Tokens run through the model (prefill and decode), when counted (not for the suite). */
  tokens?: number;
  seconds: number;
  rowsPerSecond: number;
}

/**
 * Token ids per tokenizer and row object, so that evaluating one set under several contenders
 * tokenizes each row once (long passages cost a noticeable share of a small model's time).
 */
const tokenCache = new WeakMap<Tokenizer, WeakMap<object, unknown>>();

function cached<T>(tok: Tokenizer, row: object, key: string, make: () => T): T {
  let m = tokenCache.get(tok);
  if (!m) tokenCache.set(tok, m = new WeakMap());
  let byKey = m.get(row) as Map<string, unknown> | undefined;
  if (!byKey) m.set(row, byKey = new Map());
  if (!byKey.has(key)) byKey.set(key, make());
  return byKey.get(key) as T;
}

interface Ctx {
  model: Model;
  tok: Tokenizer;
  pick: MaskPicker;
  maxTokens: number;
  o: BenchmarkOptions;
}

/**
 * Log-likelihoods of continuations too long for one window next to their context: each is
 * scored by rolling windows over context + continuation (every continuation token sees up to
 * `maxTokens - 1` tokens before it), not from a shared prefill.
 */
async function rollingChoices(c: Ctx, task: string, ctx: number[], conts: number[][]) {
  const mask = await maskFor(c.model, c.pick, task, Int32Array.from(ctx.slice(-c.maxTokens)));
  const out: number[] = [];
  let tokens = 0;
  for (const cont of conts) {
    const ids = [...ctx.slice(1), ...cont];
    const r = await rollingNll(
      c.model,
      mask,
      ctx[0],
      ids,
      c.maxTokens,
      c.maxTokens,
      ctx.length - 1,
    );
    out.push(-r.nll);
    tokens += r.fed;
  }
  return { lp: out, tokens };
}

async function choiceRow(c: Ctx, task: string, r: ChoiceRow) {
  const enc = cached(c.tok, r, "choices", () => encodeChoices(c.tok, r.context, r.choices));
  const longest = Math.max(...enc.continuations.map((x) => x.length));
  if (longest >= c.maxTokens) {
    const { lp, tokens } = await rollingChoices(c, task, enc.context, enc.continuations);
    const norm = lp.map((x, i) => x / byteLength(r.choices[i]));
    return { acc: argmaxOf(lp) === r.gold, accNorm: argmaxOf(norm) === r.gold, dropped: 1, tokens };
  }
  const { ctx, dropped } = fitContext(enc.context, enc.continuations, c.maxTokens);
  const { seq, logits } = await startSequence(
    c.model,
    c.pick,
    task,
    ctx,
    ctx.length + longest - 1,
  );
  try {
    const s = await scoreForked(seq, logits, enc.continuations);
    const lp = s.map((x) => x.logprob);
    const norm = lp.map((x, i) => x / byteLength(r.choices[i]));
    const tokens = ctx.length + enc.continuations.reduce((a, x) => a + x.length - 1, 0);
    return { acc: argmaxOf(lp) === r.gold, accNorm: argmaxOf(norm) === r.gold, dropped, tokens };
  } finally {
    seq.free();
  }
}

async function partialRow(c: Ctx, task: string, r: PartialRow) {
  const lp: number[] = [];
  let dropped = 0, tokens = 0;
  for (const [i, context] of r.contexts.entries()) {
    const enc = cached(
      c.tok,
      r,
      `context ${i}`,
      () => encodeChoices(c.tok, context, [r.continuation]),
    );
    const fit = fitContext(enc.context, enc.continuations, c.maxTokens);
    dropped += fit.dropped;
    const cont = enc.continuations[0];
    tokens += fit.ctx.length + cont.length - 1;
    const { seq, logits } = await startSequence(
      c.model,
      c.pick,
      task,
      fit.ctx,
      fit.ctx.length + cont.length - 1,
    );
    try {
      lp.push((await scoreForked(seq, logits, [cont]))[0].logprob);
    } finally {
      seq.free();
    }
  }
  return { acc: argmaxOf(lp) === r.gold, dropped, tokens };
}

async function generationRow(c: Ctx, task: string, r: GenerationRow) {
  const maxGen = c.o.maxGen ?? 256;
  const stop = c.o.stop ?? ["Question:", "\n\n"];
  const bos = c.tok.bosTokenId !== null ? [c.tok.bosTokenId] : [];
  const all = cached(c.tok, r, "context", () => [
    ...bos,
    ...c.tok.encode(r.context, { addSpecialTokens: false }),
  ]);
  const room = c.maxTokens - maxGen;
  if (room < 1) throw new RangeError(`--max-gen ${maxGen} leaves no room in ${c.maxTokens} tokens`);
  const dropped = Math.max(0, all.length - room);
  const ids = Int32Array.from(all.slice(dropped));
  const eos = new Set(c.tok.eosTokenIds);
  const { seq, logits: first } = await startSequence(
    c.model,
    c.pick,
    task,
    ids,
    ids.length + maxGen,
  );
  const out: number[] = [];
  let text = "";
  try {
    let logits = first;
    for (let i = 0; i < maxGen; i++) {
      const next = argmax(logits);
      if (eos.has(next)) break;
      out.push(next);
      text = c.tok.decode(out, { skipSpecialTokens: true });
      const cut = Math.min(...stop.map((s) => text.indexOf(s)).filter((k) => k >= 0));
      if (Number.isFinite(cut)) {
        text = text.slice(0, cut);
        break;
      }
      if (i + 1 < maxGen) logits = await seq.decode(next);
    }
  } finally {
    seq.free();
  }
  return { ok: lastNumberMatches(text, r.answer), dropped, text, tokens: ids.length + out.length };
}

async function textRow(
  c: Ctx,
  task: string,
  r: TextRow,
): Promise<(DocumentNll & { fed: number }) | null> {
  const ids = cached(c.tok, r, "text", () => c.tok.encode(r.text, { addSpecialTokens: false }));
  if (ids.length === 0) return null;
  const prefix = c.tok.bosTokenId ?? c.tok.eosTokenIds[0];
  if (prefix === undefined) throw new Error("perplexity needs a BOS or EOS token as prefix");
  const window = c.o.window ?? Math.min(c.maxTokens, 1024);
  const first = Int32Array.from([prefix, ...ids.slice(0, window - 1)]);
  const mask = await maskFor(c.model, c.pick, task, first);
  const nll = await rollingNll(c.model, mask, prefix, ids, window, c.o.stride ?? window);
  return {
    nll: nll.nll,
    fed: nll.fed,
    tokens: ids.length,
    bytes: byteLength(r.text),
    words: wordCount(r.text),
  };
}

/**
 * Score every row with `score`, counting the tokens run and the rows whose context was cut; each
 * metric is the share of rows where its flag holds.
 */
async function tally<R, S extends { dropped: number; tokens: number }>(
  rows: R[],
  score: (r: R) => Promise<S>,
  flags: Record<string, (s: S) => boolean>,
  onRow?: () => void,
): Promise<{ metrics: Record<string, number>; truncated: number; tokens: number }> {
  const hits: Record<string, number> = Object.fromEntries(Object.keys(flags).map((k) => [k, 0]));
  let truncated = 0, tokens = 0;
  for (const r of rows) {
    const s = await score(r);
    for (const [k, f] of Object.entries(flags)) hits[k] += f(s) ? 1 : 0;
    truncated += s.dropped > 0 ? 1 : 0;
    tokens += s.tokens;
    onRow?.();
  }
  const metrics = Object.fromEntries(Object.entries(hits).map(([k, v]) => [k, v / rows.length]));
  return { metrics, truncated, tokens };
}

/** Score every row of `ds` under `pick`. */
export async function evaluateDataset(
  model: Model,
  tok: Tokenizer,
  ds: Dataset,
  pick: MaskPicker,
  o: BenchmarkOptions = {},
): Promise<DatasetResult> {
  const c: Ctx = {
    model,
    tok,
    pick,
    maxTokens: Math.min(o.maxTokens ?? Infinity, model.config.maxPositionEmbeddings),
    o,
  };
  const t0 = performance.now();
  let truncated = 0, tokens = 0;
  let metrics: Record<string, number>;
  switch (ds.kind) {
    case "choice":
      ({ metrics, truncated, tokens } = await tally(ds.rows, (r) => choiceRow(c, ds.task, r), {
        acc: (s) => s.acc,
        acc_norm: (s) => s.accNorm,
      }, o.onRow));
      break;
    case "partial":
      ({ metrics, truncated, tokens } = await tally(ds.rows, (r) => partialRow(c, ds.task, r), {
        acc: (s) => s.acc,
      }, o.onRow));
      break;
    case "generation":
      ({ metrics, truncated, tokens } = await tally(ds.rows, (r) => generationRow(c, ds.task, r), {
        exact_match: (s) => s.ok,
      }, o.onRow));
      break;
    case "text": {
      const docs: DocumentNll[] = [];
      for (const r of ds.rows) {
        const d = await textRow(c, ds.task, r);
        if (d) {
          docs.push(d);
          tokens += d.fed;
        }
        o.onRow?.();
      }
      metrics = docs.length ? { ...perplexityMetrics(docs) } : {};
      break;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    task: ds.task,
    kind: ds.kind,
    n: ds.rows.length,
    metrics,
    truncated,
    tokens,
    seconds,
    rowsPerSecond: ds.rows.length / Math.max(seconds, 1e-9),
  };
}
