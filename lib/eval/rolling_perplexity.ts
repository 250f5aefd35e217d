/**
 * Rolling-window perplexity of plain text (lm-eval-harness `loglikelihood_rolling`): a
 * document's tokens, after a prefix token (BOS, else EOS), are predicted window by window;
 * each window feeds at most `window` tokens and predicts the next `stride` tokens not yet
 * scored, using the tokens before them as context. With `stride = window` (the default) the
 * predicted spans are disjoint and the last window is topped up with earlier tokens as context,
 * as lm-eval's rolling windows do; a smaller stride gives every prediction more context at more
 * compute.
 */

import type { Model } from "../model/model.ts";
import type { PreparedMask } from "../model/prepared_mask.ts";
import { Sequence } from "../model/sequence.ts";
import { logSoftmaxAt } from "./loglik.ts";

/** Summed negative log-likelihood of a document and what it was counted over. */
export interface DocumentNll {
  nll: number;
  tokens: number;
  bytes: number;
  words: number;
}

/**
 * Negative log-likelihood (nats) of every token of `ids` (the document, without the prefix
 * token) from `ids[scoreFrom]` on, given `prefix` and the tokens before it, in windows of at
 * most `window` inputs; `fed` counts the tokens run through the model.
 */
export async function rollingNll(
  model: Model,
  mask: PreparedMask | null,
  prefix: number,
  ids: number[],
  window: number,
  stride = window,
  scoreFrom = 0,
): Promise<{ nll: number; fed: number }> {
  if (window < 1 || stride < 1 || stride > window) {
    throw new RangeError(`rolling window ${window}, stride ${stride}: need 1 <= stride <= window`);
  }
  const all = [prefix, ...ids]; // all[j + 1] = ids[j]
  const V = model.config.vocabSize;
  let nll = 0, fed = 0;
  for (let scored = scoreFrom; scored < ids.length;) {
    const end = Math.min(ids.length, scored + stride); // predict all[scored+1 ..= end]
    const begin = Math.max(0, end - window); // feed all[begin .. end)
    const input = Int32Array.from(all.slice(begin, end));
    fed += input.length;
    const seq = new Sequence(model, { maxTokens: input.length, mask });
    try {
      const logits = await seq.prefill(input, { allLogits: true }); // row r predicts all[begin+r+1]
      for (let p = scored + 1; p <= end; p++) {
        nll -= logSoftmaxAt(logits, (p - 1 - begin) * V, V, all[p]);
      }
    } finally {
      seq.free();
    }
    scored = end;
  }
  return { nll, fed };
}

/** Perplexities over a corpus of documents (lm-eval's wikitext metrics plus token perplexity). */
export interface PerplexityMetrics {
  /** exp(nll / tokens): a uniform model scores its vocabulary size. */
  token_perplexity: number;
  word_perplexity: number;
  byte_perplexity: number;
  bits_per_byte: number;
}

/** Aggregate documents' NLLs into {@link PerplexityMetrics}. */
export function perplexityMetrics(docs: DocumentNll[]): PerplexityMetrics {
  const sum = (k: keyof DocumentNll) => docs.reduce((a, d) => a + d[k], 0);
  const nll = sum("nll");
  return {
    token_perplexity: Math.exp(nll / sum("tokens")),
    word_perplexity: Math.exp(nll / sum("words")),
    byte_perplexity: Math.exp(nll / sum("bytes")),
    bits_per_byte: nll / sum("bytes") / Math.LN2,
  };
}

/** Words of a document as lm-eval counts them (split on whitespace runs). */
export function wordCount(text: string): number {
  return text.split(/\s+/).length;
}
