/**
 * Log-likelihood of continuations, lm-eval-harness style: the context is tokenized alone, the
 * continuation is the rest of the tokenized `context + continuation`, a context's trailing
 * spaces move to the continuation, and the context is truncated on the left to fit the window.
 * Several continuations of one context share one prefill: each is scored from a fork (a copy)
 * of the context's KV cache.
 */

import type { Model } from "../model/model.ts";
import type { PreparedMask } from "../model/prepared_mask.ts";
import { Sequence } from "../model/sequence.ts";
import type { Tokenizer } from "../text/tokenizer.ts";

/** `log softmax(x[off .. off + V))[target]`, computed stably in float64. */
export function logSoftmaxAt(x: Float32Array, off: number, V: number, target: number): number {
  let m = -Infinity;
  for (let i = 0; i < V; i++) if (x[off + i] > m) m = x[off + i];
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(x[off + i] - m);
  return x[off + target] - m - Math.log(s);
}

/** Whether `target` is the (first) argmax of `x[off .. off + V)`. */
function isArgmax(x: Float32Array, off: number, V: number, target: number): boolean {
  const t = x[off + target];
  for (let i = 0; i < V; i++) if (x[off + i] > t) return false;
  return true;
}

/** Score of one continuation. */
export interface ContinuationScore {
  /** Sum of the continuation tokens' log-probabilities (natural log). */
  logprob: number;
  /** Whether every continuation token is the greedy (argmax) choice. */
  greedy: boolean;
  tokens: number;
}

/** Token ids of a context (BOS first when the tokenizer has one) and of its continuations. */
export interface EncodedChoices {
  context: number[];
  continuations: number[][];
}

/**
 * Tokenize a context and its continuations the lm-eval-harness way: trailing spaces of the
 * context move to each continuation; a continuation's tokens are those of
 * `context + continuation` after the context's own tokens (falling back to the continuation
 * tokenized alone when that would leave nothing).
 */
export function encodeChoices(tok: Tokenizer, context: string, conts: string[]): EncodedChoices {
  const trimmed = context.replace(/\s+$/, "");
  const moved = context.slice(trimmed.length);
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  const ctx = enc(trimmed);
  // BOS first when the tokenizer has one; an empty context without BOS becomes EOS, as in
  // lm-eval (a first continuation token needs something to be predicted from).
  const bos = tok.bosTokenId !== null
    ? [tok.bosTokenId]
    : ctx.length === 0 && tok.eosTokenIds.length
    ? [tok.eosTokenIds[0]]
    : [];
  const continuations = conts.map((c0) => {
    const c = moved + c0;
    const whole = enc(trimmed + c);
    const same = ctx.every((id, i) => whole[i] === id);
    const rest = same ? whole.slice(ctx.length) : [];
    return rest.length > 0 ? rest : enc(c);
  });
  return { context: [...bos, ...ctx], continuations };
}

/**
 * Left-truncate a context so that the context plus the longest continuation (all but its last
 * token is fed) fits `maxTokens`. Returns the kept context and how many tokens were dropped.
 */
export function fitContext(
  ctx: number[],
  conts: number[][],
  maxTokens: number,
): { ctx: Int32Array; dropped: number } {
  if (ctx.length === 0) {
    throw new RangeError("empty context, and the tokenizer has no BOS or EOS to stand in for it");
  }
  const longest = Math.max(...conts.map((c) => c.length));
  const room = maxTokens - (longest - 1);
  if (room < 1) {
    throw new RangeError(
      `a continuation of ${longest} tokens does not fit a ${maxTokens}-token window`,
    );
  }
  const dropped = Math.max(0, ctx.length - room);
  return { ctx: Int32Array.from(ctx.slice(dropped)), dropped };
}

/**
 * Score continuations of a prefilled context: `lastLogits` `[V]` are the context's last logits
 * (they predict each continuation's first token); each longer continuation is fed to a fork of
 * `seq`, which is left untouched. `seq` needs room for the longest continuation.
 */
export async function scoreForked(
  seq: Sequence,
  lastLogits: Float32Array,
  conts: number[][],
): Promise<ContinuationScore[]> {
  const V = lastLogits.length;
  const out: ContinuationScore[] = [];
  for (const c of conts) {
    let logprob = logSoftmaxAt(lastLogits, 0, V, c[0]);
    let greedy = isArgmax(lastLogits, 0, V, c[0]);
    if (c.length > 1) {
      const child = seq.fork();
      try {
        // Row t of [n-1, V] predicts c[t + 1].
        const logits = await child.prefill(Int32Array.from(c.slice(0, -1)), { allLogits: true });
        for (let t = 1; t < c.length; t++) {
          logprob += logSoftmaxAt(logits, (t - 1) * V, V, c[t]);
          greedy &&= isArgmax(logits, (t - 1) * V, V, c[t]);
        }
      } finally {
        child.free();
      }
    }
    out.push({ logprob, greedy, tokens: c.length });
  }
  return out;
}

/**
 * Score one continuation from scratch: a fresh sequence prefills `context + continuation` (all
 * but the last token) at once. The independent check of {@link scoreForked}.
 */
export async function scoreFromScratch(
  model: Model,
  mask: PreparedMask | null,
  ctx: ArrayLike<number>,
  cont: number[],
): Promise<ContinuationScore> {
  const ids = Int32Array.from([...Array.from(ctx), ...cont.slice(0, -1)]);
  const seq = new Sequence(model, { maxTokens: ids.length, mask });
  try {
    const logits = await seq.prefill(ids, { allLogits: true }); // [T, V]
    const V = model.config.vocabSize;
    let logprob = 0, greedy = true;
    for (let t = 0; t < cont.length; t++) {
      const row = ctx.length - 1 + t; // predicts cont[t]
      logprob += logSoftmaxAt(logits, row * V, V, cont[t]);
      greedy &&= isArgmax(logits, row * V, V, cont[t]);
    }
    return { logprob, greedy, tokens: cont.length };
  } finally {
    seq.free();
  }
}

/** UTF-8 length of a string in bytes (acc_norm's normaliser). */
export function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Index of the largest value (first on ties). */
export function argmaxOf(xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}
