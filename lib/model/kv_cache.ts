/**
 * A sequence's KV cache that grows in pages as the sequence grows instead of reserving its whole
 * context up front, so a short request holds a page or two however long it could get. Each
 * layer keeps one K and one V tensor `[n_kv * cap, d_h]` (kv head h, position p at row
 * `h * cap + p`, the layout `Backend.kvWrite` and `Backend.attention` take with `maxT = cap`).
 * Growing a layer allocates tensors of the new capacity, copies the cached positions of each kv
 * head with `copyRows` and frees the old ones, one layer at a time: every backend runs it
 * unchanged, and at any moment at most one layer holds both sizes. Capacity doubles (in whole
 * pages, never past the sequence's limit), so the copies cost O(length) in total.
 */

import type { Backend, Tensor } from "../backends/backend.ts";

/** Default page: positions per kv head allocated at a time. */
export const KV_PAGE_TOKENS = 64;

/** The K and V caches of every layer of one sequence. */
export class KvCache {
  /** The most positions the cache may grow to. */
  readonly maxTokens: number;
  /** Positions allocated at a time (the first allocation and the rounding of every growth). */
  readonly pageTokens: number;
  #be: Backend;
  #nKv: number;
  #d: number;
  #k: Tensor[] = []; // per layer [n_kv * cap[l], d_h], row h * cap[l] + p
  #v: Tensor[] = [];
  #cap: number[] = []; // per layer: positions allocated per kv head
  #freed = false;

  /**
   * Caches for `layers` layers of `nKv` kv heads of `headDim` values, first `min(pageTokens,
   * maxTokens)` positions allocated. Throws the backend's error (after giving back what it
   * took) when even that does not fit.
   */
  constructor(
    be: Backend,
    dims: { layers: number; nKv: number; headDim: number },
    maxTokens: number,
    pageTokens = KV_PAGE_TOKENS,
  ) {
    if (!(Number.isInteger(pageTokens) && pageTokens > 0)) {
      throw new RangeError(`KvCache: pageTokens must be a positive integer, got ${pageTokens}`);
    }
    this.#be = be;
    this.#nKv = dims.nKv;
    this.#d = dims.headDim;
    this.maxTokens = maxTokens;
    this.pageTokens = pageTokens;
    const first = Math.min(pageTokens, maxTokens);
    try {
      for (let l = 0; l < dims.layers; l++) {
        this.#k.push(be.tensor(this.#nKv * first, this.#d));
        this.#v.push(be.tensor(this.#nKv * first, this.#d));
        this.#cap.push(first);
      }
    } catch (e) {
      // Out of memory part-way: give back the layers already allocated before failing.
      this.free();
      throw e;
    }
  }

  /** K cache of layer l `[n_kv * capacity(l), d_h]`. */
  k(l: number): Tensor {
    return this.#k[l];
  }

  /** V cache of layer l `[n_kv * capacity(l), d_h]`. */
  v(l: number): Tensor {
    return this.#v[l];
  }

  /** Positions per kv head allocated for layer l (the `maxT` of its kvWrite and attention). */
  capacity(l: number): number {
    return this.#cap[l];
  }

  /**
   * Make room for `tokens` positions in every layer, keeping the first `cached` of each kv
   * head. The new capacity is at least twice the old, rounded up to whole pages, at most
   * {@link maxTokens}. A layer that cannot grow throws the backend's error with the layers
   * before it grown and itself unchanged: the cache stays consistent and can be freed.
   */
  reserve(tokens: number, cached: number): void {
    if (this.#freed) throw new Error("KvCache: used after free");
    if (tokens > this.maxTokens) {
      throw new RangeError(`KvCache: ${tokens} positions > the limit of ${this.maxTokens}`);
    }
    const P = this.pageTokens;
    for (let l = 0; l < this.#cap.length; l++) {
      const cap = this.#cap[l];
      if (cap >= tokens) continue;
      const want = Math.min(this.maxTokens, Math.ceil(Math.max(tokens, 2 * cap) / P) * P);
      const k = this.#grown(this.#k[l], cap, want, cached);
      let v: Tensor;
      try {
        v = this.#grown(this.#v[l], cap, want, cached);
      } catch (e) {
        this.#be.free(k);
        throw e;
      }
      this.#be.free(this.#k[l]);
      this.#be.free(this.#v[l]);
      this.#k[l] = k;
      this.#v[l] = v;
      this.#cap[l] = want;
    }
  }

  /** A `[n_kv * want, d_h]` copy of `t` (`[n_kv * cap, d_h]`) holding its first `n` positions. */
  #grown(t: Tensor, cap: number, want: number, n: number): Tensor {
    const out = this.#be.tensor(this.#nKv * want, this.#d);
    try {
      this.copyPositions(t, cap, out, want, n);
    } catch (e) {
      this.#be.free(out);
      throw e;
    }
    return out;
  }

  /** Copy positions `[0, n)` of every kv head from `src` (capacity `sCap`) to `dst` (`dCap`). */
  copyPositions(src: Tensor, sCap: number, dst: Tensor, dCap: number, n: number): void {
    if (n <= 0) return;
    for (let h = 0; h < this.#nKv; h++) this.#be.copyRows(src, h * sCap, n, dst, h * dCap);
  }

  /** Copy the first `n` positions of every layer into `into` (which must hold them). */
  copyInto(into: KvCache, n: number): void {
    into.reserve(n, 0);
    for (let l = 0; l < this.#cap.length; l++) {
      this.copyPositions(this.#k[l], this.#cap[l], into.#k[l], into.#cap[l], n);
      this.copyPositions(this.#v[l], this.#cap[l], into.#v[l], into.#cap[l], n);
    }
  }

  /** Release every tensor; later use throws. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    for (const t of [...this.#k, ...this.#v]) this.#be.free(t);
    this.#k = [];
    this.#v = [];
    this.#cap = [];
  }
}
