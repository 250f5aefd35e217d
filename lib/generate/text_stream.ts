/**
 * Incremental detokenizer: token ids in, finished text out. Never emits part of a UTF-8
 * character (a byte-level token can end mid-character) and never emits a stop string or text
 * that may still turn out to start one.
 */

/** Ids → text for a window of ids (e.g. `(ids) => tok.decode(ids, {skipSpecialTokens: true})`). */
export type DecodeFn = (ids: number[]) => string;

/** Options of {@link TextStream}. */
export interface TextStreamOptions {
  /** Generation ends at the first occurrence of any of these; the stop text is not emitted. */
  stop?: string[];
}

const REPLACEMENT = "\uFFFD";

/**
 * Streams text deltas for ids pushed one at a time. Concatenated deltas (plus `finish()`)
 * equal `decode(allIds)` cut before the first stop string.
 */
export class TextStream {
  readonly #decodeFn: DecodeFn;
  readonly #stops: string[];
  readonly #ids: number[] = [];
  /** Window start: ids before it are emitted and never decoded again. */
  #prefixOffset = 0;
  /** Ids in [prefixOffset, readOffset) are already emitted as text. */
  #readOffset = 0;
  /** Detokenized text not yet emitted because it may begin a stop string. */
  #pending = "";
  #stopped: string | null = null;

  /** `decode` turns any window of ids into text; `stop` strings end the stream. */
  constructor(decode: DecodeFn, opts: TextStreamOptions = {}) {
    this.#decodeFn = decode;
    this.#stops = (opts.stop ?? []).filter((s) => s.length > 0);
  }

  /** The stop string that ended the stream, or null. */
  get stopString(): string | null {
    return this.#stopped;
  }

  /** True once a stop string has been seen; later pushes return "". */
  get stopped(): boolean {
    return this.#stopped !== null;
  }

  /** Every id pushed so far. */
  get ids(): readonly number[] {
    return this.#ids;
  }

  /** Adds one token id; returns the newly completed text (possibly ""). */
  push(id: number): string {
    if (this.#stopped !== null) return "";
    this.#ids.push(id);
    const prefix = this.#decode(this.#ids.slice(this.#prefixOffset, this.#readOffset));
    const full = this.#decode(this.#ids.slice(this.#prefixOffset));
    // Hold back while the tail is an incomplete character (decoded as U+FFFD).
    if (full.length <= prefix.length || full.endsWith(REPLACEMENT)) return "";
    const delta = full.slice(prefix.length);
    this.#prefixOffset = this.#readOffset;
    this.#readOffset = this.#ids.length;
    return this.#filter(delta, false);
  }

  /** Ends the stream: flushes held-back text (incomplete bytes become U+FFFD). */
  finish(): string {
    if (this.#stopped !== null) return "";
    let delta = "";
    if (this.#readOffset < this.#ids.length) {
      const prefix = this.#decode(this.#ids.slice(this.#prefixOffset, this.#readOffset));
      const full = this.#decode(this.#ids.slice(this.#prefixOffset));
      delta = full.slice(prefix.length);
      this.#prefixOffset = this.#readOffset = this.#ids.length;
    }
    return this.#filter(delta, true);
  }

  #decode(ids: number[]): string {
    return ids.length === 0 ? "" : this.#decodeFn(ids);
  }

  /** Appends `delta` to the pending text; returns what is safe to emit. */
  #filter(delta: string, final: boolean): string {
    const text = this.#pending + delta;
    if (this.#stops.length === 0) {
      this.#pending = "";
      return text;
    }
    let cut = -1;
    for (const s of this.#stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        this.#stopped = s;
      }
    }
    if (cut >= 0) {
      this.#pending = "";
      return text.slice(0, cut);
    }
    if (final) {
      this.#pending = "";
      return text;
    }
    const hold = longestStopPrefixSuffix(text, this.#stops);
    this.#pending = text.slice(text.length - hold);
    return text.slice(0, text.length - hold);
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function longestStopPrefixSuffix(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) {
    const max = Math.min(s.length - 1, text.length);
    for (let n = max; n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
