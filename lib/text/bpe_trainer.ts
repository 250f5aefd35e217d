/**
 * A byte-level BPE trainer (GPT-2 style ByteLevel pre-tokenizer and decoder) that writes a
 * standard Hugging Face `tokenizer.json`. Digits are never merged, so every number is read
 * one digit per token (numeric skills stay token-level).
 */

/** GPT-2 pre-tokenizer split pattern (as in the Rust `tokenizers` ByteLevel). */
export const GPT2_SPLIT =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's reversible byte -> printable unicode character map. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/** Options of {@link trainBpe}. */
export interface BpeOptions {
  /** Total vocabulary size including special tokens and the 256 byte symbols. */
  vocabSize: number;
  /** Special tokens, given ids 0..n-1, split out of the text before training. */
  specialTokens: readonly string[];
  /** Stop merging when the best pair occurs fewer times than this (default 2). */
  minFrequency?: number;
}

/** A trained tokenizer: the vocabulary and the ordered merges. */
export interface BpeModel {
  vocab: Map<string, number>;
  merges: [string, string][];
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Count byte-level pre-tokens of the texts, with special tokens removed. */
export function countWords(
  texts: Iterable<string>,
  specialTokens: readonly string[],
): Map<string, number> {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const special = specialTokens.length
    ? new RegExp(specialTokens.map(escapeRegex).join("|"), "g")
    : null;
  const counts = new Map<string, number>();
  for (const text of texts) {
    const parts = special ? text.split(special) : [text];
    for (const part of parts) {
      for (const m of part.matchAll(GPT2_SPLIT)) {
        counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
      }
    }
  }
  const out = new Map<string, number>();
  for (const [w, c] of counts) {
    const u = Array.from(enc.encode(w), (b) => b2u[b]).join("");
    out.set(u, (out.get(u) ?? 0) + c);
  }
  return out;
}

const DIGIT = /[0-9]/;

/** Train byte-level BPE on the texts. Deterministic: ties break on the pair's text. */
export function trainBpe(texts: Iterable<string>, opts: BpeOptions): BpeModel {
  const minFreq = opts.minFrequency ?? 2;
  const vocab = new Map<string, number>();
  for (const s of opts.specialTokens) vocab.set(s, vocab.size);
  for (const u of bytesToUnicode()) vocab.set(u, vocab.size);
  const words = [...countWords(texts, opts.specialTokens)].map(([w, c]) => ({
    syms: Array.from(w),
    count: c,
  }));
  const merges: [string, string][] = [];
  while (vocab.size < opts.vocabSize) {
    const pairs = new Map<string, number>();
    for (const { syms, count } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const a = syms[i], b = syms[i + 1];
        if (DIGIT.test(a) || DIGIT.test(b)) continue;
        const key = a + "\u0000" + b;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best = "", bestCount = 0;
    for (const [k, c] of pairs) {
      if (c > bestCount || (c === bestCount && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (bestCount < minFreq) break;
    const [a, b] = best.split("\u0000");
    const merged = a + b;
    merges.push([a, b]);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const w of words) {
      const s = w.syms;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === a && s[i + 1] === b) s.splice(i, 2, merged);
      }
    }
  }
  return { vocab, merges };
}

/** A Hugging Face `tokenizer.json` object for a trained model. */
export function toTokenizerJson(
  model: BpeModel,
  specialTokens: readonly string[],
): Record<string, unknown> {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content) => ({
      id: model.vocab.get(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: "ByteLevel",
      add_prefix_space: true,
      trim_offsets: false,
      use_regex: true,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(model.vocab),
      merges: model.merges,
    },
  };
}
