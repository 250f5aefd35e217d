/**
 * Next-token choice from logits: greedy, or temperature + top-k + top-p sampling driven by a
 * seeded PRNG so that a seed replays the same tokens.
 */

/** Sampling settings; `topK` 0 and `topP` 1 disable those filters. */
export interface SamplerOptions {
  /** 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 (default) keeps all. */
  topK?: number;
  /** Keep the smallest set whose probability mass reaches p; 1 (default) keeps all. */
  topP?: number;
  /** PRNG seed (any safe integer; distinct seeds give distinct streams); default 0. */
  seed?: number;
}

/** Error for invalid sampler options or logits with no finite entry. */
export class SamplerError extends Error {
  override name = "SamplerError";
}

/** splitmix32: spreads a 32-bit seed into well-mixed state words. */
function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128** PRNG: deterministic, uniform floats in [0, 1). */
export class Rng {
  #s = new Uint32Array(4);

  /**
   * Seeds the four state words from `seed`, any safe integer: its low 32 bits (two's
   * complement) go through splitmix32, and its high 32 bits are XORed into the first word.
   * splitmix32's mixer is a bijection, so word 1 determines the low half and word 0 then the
   * high half: distinct seeds (0 and -1, 1 and 2^32) give distinct streams, and seeds in
   * [0, 2^32) give the same streams as before.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new SamplerError(`seed must be a safe integer, got ${seed}`);
    }
    const u = BigInt.asUintN(64, BigInt(seed));
    const sm = splitmix32(Number(u & 0xffffffffn));
    for (let i = 0; i < 4; i++) this.#s[i] = sm();
    this.#s[0] ^= Number(u >> 32n);
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextU32() / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Index of the largest logit; NaN counts as -Infinity; ties go to the lowest index. */
export function argmax(logits: Float32Array): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  if (best < 0) {
    if (logits.length === 0) throw new SamplerError("empty logits");
    throw new SamplerError("no finite logit (all -Infinity or NaN)");
  }
  return best;
}

/** Picks the next token id from a logits vector. One instance per sequence. */
export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
  readonly #rng: Rng;

  /** Validates options; throws {@link SamplerError} on out-of-range values. */
  constructor(opts: SamplerOptions = {}) {
    this.temperature = opts.temperature ?? 1;
    this.topK = opts.topK ?? 0;
    this.topP = opts.topP ?? 1;
    this.seed = opts.seed ?? 0;
    if (!(this.temperature >= 0) || !Number.isFinite(this.temperature)) {
      throw new SamplerError(`temperature must be a finite number ≥ 0, got ${this.temperature}`);
    }
    if (!Number.isInteger(this.topK) || this.topK < 0) {
      throw new SamplerError(`topK must be an integer ≥ 0, got ${this.topK}`);
    }
    if (!(this.topP > 0 && this.topP <= 1)) {
      throw new SamplerError(`topP must be in (0, 1], got ${this.topP}`);
    }
    this.#rng = new Rng(this.seed);
  }

  /** True when every call is a plain argmax (temperature 0 or top-k 1). */
  get greedy(): boolean {
    return this.temperature === 0 || this.topK === 1;
  }

  /** Returns the next token id for `logits` [V]. */
  sample(logits: Float32Array): number {
    if (this.greedy) return argmax(logits);
    const probs = this.probabilities(logits);
    const { ids, mass } = this.#keep(probs);
    // Draw in the kept (descending) order over the kept mass.
    let u = this.#rng.next() * mass;
    for (let i = 0; i < ids.length; i++) {
      u -= probs[ids[i]];
      if (u < 0) return ids[i];
    }
    return ids[ids.length - 1];
  }

  /**
   * softmax(logits / T) with top-k then top-p applied and renormalised, as a dense [V]
   * vector (zeros outside the kept set). Exposed for tests and diagnostics.
   */
  filteredProbabilities(logits: Float32Array): Float32Array {
    const out = new Float32Array(logits.length);
    if (this.greedy) {
      out[argmax(logits)] = 1;
      return out;
    }
    const probs = this.probabilities(logits);
    const { ids, mass } = this.#keep(probs);
    for (const id of ids) out[id] = probs[id] / mass;
    return out;
  }

  /** softmax(logits / T) over all tokens; -Infinity and NaN logits get probability 0. */
  probabilities(logits: Float32Array): Float64Array {
    const t = this.temperature === 0 ? 1 : this.temperature;
    const max = logits[argmax(logits)];
    const p = new Float64Array(logits.length);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i];
      // v > -Infinity is false for NaN too.
      const e = v > -Infinity ? Math.exp((v - max) / t) : 0;
      p[i] = e;
      sum += e;
    }
    for (let i = 0; i < p.length; i++) p[i] /= sum;
    return p;
  }

  /** Kept ids in descending probability order and their total mass (top-k, then top-p). */
  #keep(probs: Float64Array): { ids: Int32Array; mass: number } {
    let n = 0;
    const cand = new Int32Array(probs.length);
    for (let i = 0; i < probs.length; i++) if (probs[i] > 0) cand[n++] = i;
    let ids = cand.subarray(0, n);
    const k = this.topK > 0 ? Math.min(this.topK, n) : n;
    const needSort = k < n || this.topP < 1;
    if (needSort) {
      ids.sort((a, b) => probs[b] - probs[a] || a - b);
      ids = ids.subarray(0, k);
    }
    let mass = 0;
    for (let i = 0; i < ids.length; i++) mass += probs[ids[i]];
    if (this.topP < 1) {
      // Smallest prefix whose share of the (top-k renormalised) mass reaches p; ≥ 1 token.
      const target = this.topP * mass;
      let cum = 0;
      let cut = ids.length;
      for (let i = 0; i < ids.length; i++) {
        cum += probs[ids[i]];
        if (cum >= target) {
          cut = i + 1;
          break;
        }
      }
      ids = ids.subarray(0, cut);
      mass = 0;
      for (let i = 0; i < ids.length; i++) mass += probs[ids[i]];
    }
    return { ids, mass };
  }
}
