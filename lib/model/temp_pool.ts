/**
 * The temporaries of a sequence's forward pass, with the small ones of one-token steps kept
 * between steps: decoding allocates and frees the same few `[1, c]` tensors (the hidden state,
 * its norm, q, k, v, the attention output) in every layer of every token, and handing them back
 * to the backend's allocator and taking them again cost more than the small kernels that use
 * them on a model whose token takes a millisecond (docs/design.md, Per-token fixed costs).
 *
 * A kept tensor is handed out again only once given back, and only to a caller that writes
 * every value before reading one: unlike `Backend.tensor` it is not zero-filled.
 */

import type { Backend, Tensor } from "../backends/backend.ts";
import type { ModelConfig } from "./config.ts";

/**
 * The most bytes (f32 values x 4) of idle tensors a sequence keeps between steps for `cfg`:
 * room for every width a one-token step of any mask can use once over, i.e. three hidden-state
 * rows `[1, H]`, q and attention output `[1, S d_h]` for each kept-head count S in 1..n_h, k and
 * v `[1, S_kv d_h]` for each S_kv in 1..n_kv. The WASM allocator rounds each block up to a power
 * of two, so the memory held is at most twice this (lib/server/memory_fit.ts charges that).
 */
export function idleTempBudgetBytes(
  cfg: Pick<ModelConfig, "hiddenSize" | "numHeads" | "numKvHeads" | "headDim">,
): number {
  const { hiddenSize: H, numHeads: nh, numKvHeads: nkv, headDim: d } = cfg;
  return 4 * (3 * H + nh * (nh + 1) * d + nkv * (nkv + 1) * d);
}

/**
 * A sequence's temporaries: every live one is tracked (so {@link TempPool.freeAll} releases a
 * failed step's), and one-row tensors given back under {@link TempPool.keep} wait for the next
 * request of the same shape instead of going back to the backend, up to `budgetBytes` in all.
 */
export class TempPool {
  #be: Backend;
  #budget: number;
  #maxCols: number;
  /**
   * Handed out and not yet given back: a plain list, as a step holds only a few at once (the
   * last taken is searched first and usually the one given back).
   */
  #live: Tensor[] = [];
  /** Given back and kept: index `cols` -> idle `[1, cols]` tensors (never also in #live). */
  #idle: (Tensor[] | undefined)[];
  #idleBytes = 0;

  /**
   * A pool over `be` keeping at most `budgetBytes` (f32 values x 4) of idle tensors, each at
   * most `maxCols` wide.
   */
  constructor(be: Backend, budgetBytes: number, maxCols: number) {
    this.#be = be;
    this.#budget = budgetBytes;
    this.#maxCols = maxCols;
    this.#idle = new Array(maxCols + 1);
  }

  /** Tensors handed out and not given back (a failed step's, until {@link freeAll}). */
  get liveCount(): number {
    return this.#live.length;
  }

  /** Bytes (f32 values x 4) of idle tensors kept for the next one-token step. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  /**
   * A tensor `[rows, cols]`: a kept one of that shape when `reuse` (its values are stale: the
   * caller overwrites them all), else a new zero-filled one from the backend.
   */
  take(rows: number, cols: number, reuse: boolean): Tensor {
    let t: Tensor | undefined;
    if (reuse && rows === 1 && cols <= this.#maxCols) {
      t = this.#idle[cols]?.pop();
      if (t) this.#idleBytes -= cols * 4;
    }
    t ??= this.#be.tensor(rows, cols);
    this.#live.push(t);
    return t;
  }

  /**
   * Give back a tensor from {@link take}: kept when `keep`, it is one row no wider than
   * `maxCols` and the budget has room; else freed. Giving back one that is not live throws (so
   * a tensor is never kept twice).
   */
  give(t: Tensor, keep: boolean): void {
    const live = this.#live;
    let i = live.length - 1;
    while (i >= 0 && live[i] !== t) i--;
    if (i < 0) throw new Error("TempPool: tensor given back twice or not taken");
    live[i] = live[live.length - 1];
    live.pop();
    const bytes = t.cols * 4;
    if (
      keep && t.rows === 1 && t.cols <= this.#maxCols && this.#idleBytes + bytes <= this.#budget
    ) {
      (this.#idle[t.cols] ??= []).push(t);
      this.#idleBytes += bytes;
      return;
    }
    this.#be.free(t);
  }

  /** Free every tensor, live or idle (the pool stays usable). */
  freeAll(): void {
    for (const t of this.#live) this.#be.free(t);
    this.#live.length = 0;
    for (const list of this.#idle) for (const t of list ?? []) this.#be.free(t);
    this.#idle = new Array(this.#maxCols + 1);
    this.#idleBytes = 0;
  }
}
