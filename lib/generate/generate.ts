/**
 * Token-by-token generation on one {@link Sequence}: sampling, EOS, stop strings, max tokens,
 * and UTF-8-safe text deltas. {@link Generation.step} advances by exactly one token so a
 * scheduler can interleave many sequences; {@link generate} wraps it as an async iterator.
 */

import type { Sequence } from "../model/sequence.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";
import { TextStream } from "./text_stream.ts";

/** Decodes ids to text (e.g. a bound `Tokenizer.decode` with special tokens skipped). */
export type Detokenize = (ids: number[]) => string;

/** Options of one generation. */
export interface GenerationOptions extends SamplerOptions {
  /** Most tokens to generate. */
  maxTokens: number;
  /** Stop strings; generation ends before the first one, which is not emitted. */
  stop?: string[];
  /** Token ids that end generation (the model's EOS). */
  eosTokenIds: number[];
}

/** Why a generation ended, in OpenAI's terms. */
export type FinishReason = "stop" | "length";

/** Result of one {@link Generation.step}. */
export interface StepResult {
  /** New text (may be empty while a character or a possible stop string is incomplete). */
  text: string;
  /** The token sampled in this step, or null when the step only flushed. */
  tokenId: number | null;
  /** Set on the last step. */
  finishReason: FinishReason | null;
}

/** A generation in progress on a prefilled sequence. */
export class Generation {
  #seq: Sequence;
  #sampler: Sampler;
  #stream: TextStream;
  #eos: Set<number>;
  #maxTokens: number;
  #logits: Float32Array | null;
  #finish: FinishReason | null = null;
  /** Tokens generated so far (EOS included: it was computed). */
  completionTokens = 0;

  /** `logits` are the prefill's last-token logits `[V]`. */
  constructor(
    seq: Sequence,
    logits: Float32Array,
    detokenize: Detokenize,
    opts: GenerationOptions,
  ) {
    this.#seq = seq;
    this.#logits = logits;
    this.#sampler = new Sampler(opts);
    this.#stream = new TextStream(detokenize, { stop: opts.stop });
    this.#eos = new Set(opts.eosTokenIds);
    this.#maxTokens = opts.maxTokens;
    if (opts.maxTokens <= 0) this.#finish = "length";
  }

  /** Why it ended, or null while running. */
  get finishReason(): FinishReason | null {
    return this.#finish;
  }

  /** True once finished. */
  get done(): boolean {
    return this.#finish !== null;
  }

  /** Sample one token, feed it back (one decode step), and return the new text. */
  async step(): Promise<StepResult> {
    if (this.#finish || !this.#logits) {
      return { text: "", tokenId: null, finishReason: this.#finish ?? "length" };
    }
    const id = this.#sampler.sample(this.#logits);
    this.#logits = null;
    this.completionTokens++;
    if (this.#eos.has(id)) {
      this.#finish = "stop";
      return { text: this.#stream.finish(), tokenId: id, finishReason: "stop" };
    }
    let text = this.#stream.push(id);
    if (this.#stream.stopped) {
      this.#finish = "stop";
    } else if (
      this.completionTokens >= this.#maxTokens || this.#seq.length >= this.#seq.maxTokens
    ) {
      this.#finish = "length";
      text += this.#stream.finish();
    } else {
      this.#logits = await this.#seq.decode(id);
    }
    return { text, tokenId: id, finishReason: this.#finish };
  }
}

/**
 * Generate on a prefilled sequence, yielding non-empty text deltas until EOS, a stop string,
 * `maxTokens` or the context limit; stops early when `signal` aborts.
 */
export async function* generate(
  seq: Sequence,
  logits: Float32Array,
  detokenize: Detokenize,
  opts: GenerationOptions,
  signal?: AbortSignal,
): AsyncGenerator<string, FinishReason> {
  const g = new Generation(seq, logits, detokenize, opts);
  while (!g.done) {
    if (signal?.aborted) break;
    const r = await g.step();
    if (r.text) yield r.text;
  }
  return g.finishReason ?? "stop";
}
