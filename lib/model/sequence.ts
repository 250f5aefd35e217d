/**
 * One sequence: its KV cache and the forward pass (prefill and incremental decode) under a
 * prepared mask, written as llama2.c's `forward()` is: embed, then per layer an attention step
 * and an MLP step on the residual stream, then the final norm and the LM head. All heavy work
 * goes through the model's {@link Backend}; pruned neurons and heads are never touched, and a kv
 * head whose whole query group is pruned is neither computed nor cached. Activation capture
 * (calibration) is an observer called at named points (lib/model/activation_capture.ts), the
 * fused/unfused MLP fork lives in lib/model/swiglu.ts, the KV cache grows in pages
 * (lib/model/kv_cache.ts), and a one-token step's small temporaries are kept for the next step
 * (lib/model/temp_pool.ts).
 */

import type { Backend, Tensor } from "../backends/backend.ts";
import {
  type ActivationCapture,
  captureObserver,
  type ForwardObserver,
} from "./activation_capture.ts";
import { KvCache } from "./kv_cache.ts";
import type { LayerWeights, Model } from "./model.ts";
import { denseFor, type PreparedLayer, type PreparedMask } from "./prepared_mask.ts";
import { swigluAdd } from "./swiglu.ts";
import { idleTempBudgetBytes, TempPool } from "./temp_pool.ts";

export type { ActivationCapture, LayerActivations } from "./activation_capture.ts";

/** Options of {@link Sequence.prefill}. */
export interface PrefillOptions {
  capture?: ActivationCapture;
  /** Return logits of every prompt position `[T * V]` instead of the last `[V]`. */
  allLogits?: boolean;
}

/** Error for a sequence that would exceed its context. */
export class ContextError extends Error {
  override name = "ContextError";
}

/** Options of the {@link Sequence} constructor. */
export interface SequenceOptions {
  /** The most tokens the sequence may hold (default and cap: the model's context). */
  maxTokens?: number;
  /** Mask to run under (default: dense). */
  mask?: PreparedMask | null;
  /**
   * KV positions allocated at a time (default `KV_PAGE_TOKENS`, 64); the cache starts with one
   * page and doubles as the sequence grows. `maxTokens` reserves the whole context up front.
   */
  pageTokens?: number;
}

/** A sequence being generated: a paged KV cache (lib/model/kv_cache.ts) plus its mask. */
export class Sequence {
  readonly maxTokens: number;
  #model: Model;
  #be: Backend;
  #mask: PreparedMask;
  #kv: KvCache;
  #length = 0;
  #pending: { x: Tensor; ids: Int32Array; m: number; mask: PreparedMask } | null = null;
  #freed = false;
  /**
   * Temporaries of the forward pass: those in flight are freed with the sequence if a step
   * fails; a one-token step's small ones are kept for the next (lib/model/temp_pool.ts).
   */
  #temps: TempPool;
  /** The step in flight feeds one token: its temporaries are kept for the next step. */
  #oneToken = false;
  /** Temporaries for the MLP step's unfused path, tracked like the others. */
  #scratch = {
    tensor: (rows: number, cols: number) => this.#tensor(rows, cols),
    drop: (t: Tensor) => this.#drop(t),
  };

  constructor(model: Model, opts: SequenceOptions = {}) {
    this.#model = model;
    this.#be = model.backend;
    this.maxTokens = Math.min(
      opts.maxTokens ?? model.config.maxPositionEmbeddings,
      model.config.maxPositionEmbeddings,
    );
    this.#mask = opts.mask ?? denseFor(model);
    const { numKvHeads, headDim, numLayers, hiddenSize, numHeads } = model.config;
    this.#temps = new TempPool(
      this.#be,
      idleTempBudgetBytes(model.config),
      Math.max(hiddenSize, numHeads * headDim),
    );
    this.#kv = new KvCache(
      this.#be,
      { layers: numLayers, nKv: numKvHeads, headDim },
      this.maxTokens,
      opts.pageTokens,
    );
  }

  /** Tokens in the cache. */
  get length(): number {
    return this.#length;
  }

  /** The mask in use. */
  get mask(): PreparedMask {
    return this.#mask;
  }

  /** KV positions per kv head allocated now (grows in pages up to {@link maxTokens}). */
  get kvCapacity(): number {
    return this.#kv.capacity(0);
  }

  /**
   * Use another mask from now on. Allowed before the first prefill or between
   * {@link prefillHead} and {@link prefillTail}; a mask cannot change mid-sequence because the
   * cache of skipped kv heads would be missing.
   */
  setMask(mask: PreparedMask | null): void {
    if (this.#length > 0 && !this.#pending) {
      throw new Error("setMask: the sequence already has cached tokens under another mask");
    }
    this.#mask = mask ?? denseFor(this.#model);
  }

  /** Prefill a prompt; returns logits of its last token `[V]` (or all `[T * V]`). */
  async prefill(ids: Int32Array, opts: PrefillOptions = {}): Promise<Float32Array> {
    const x = this.#start(ids); // [T, H]
    const observer = opts.capture
      ? captureObserver(this.#model, opts.capture, ids.length)
      : undefined;
    const L = this.#model.config.numLayers;
    if (observer) await this.#layersObserved(x, 0, L, this.#mask, observer);
    else this.#layers(x, 0, L, this.#mask);
    return this.#finish(x, ids.length, opts.allLogits ?? false);
  }

  /**
   * Prefill layers [0, m) only (with the current mask, dense by default) and return the
   * router feature `[H]`: the mean over tokens of the hidden state after layer m-1 (the
   * embedding output if m = 0). Continue with {@link prefillTail}.
   */
  async prefillHead(ids: Int32Array, m: number): Promise<Float32Array> {
    const x = this.#start(ids);
    this.#layers(x, 0, m, this.#mask);
    this.#pending = { x, ids, m, mask: this.#mask };
    const h = await this.#be.read(x); // [T, H]
    const H = this.#model.config.hiddenSize;
    const feat = new Float32Array(H);
    for (let t = 0; t < ids.length; t++) {
      for (let i = 0; i < H; i++) feat[i] += h[t * H + i];
    }
    for (let i = 0; i < H; i++) feat[i] /= ids.length;
    return feat;
  }

  /** Finish a prefill begun by {@link prefillHead} under the current mask; last logits `[V]`. */
  async prefillTail(): Promise<Float32Array> {
    const p = this.#pending;
    if (!p) throw new Error("prefillTail without prefillHead");
    this.#pending = null;
    let x = p.x;
    let from = p.m;
    // Layers computed under another mask must be recomputed when the new mask prunes them.
    const changed = p.mask !== this.#mask &&
      this.#mask.layers.slice(0, p.m).some((l, i) => !(l.dense && p.mask.layers[i].dense));
    if (changed) {
      this.#drop(x);
      this.#length -= p.ids.length;
      x = this.#start(p.ids);
      from = 0;
    }
    this.#layers(x, from, this.#model.config.numLayers, this.#mask);
    return await this.#finish(x, p.ids.length, false);
  }

  /** Feed one token; returns the next-token logits `[V]`. */
  decode(id: number): Promise<Float32Array> {
    return this.prefill(Int32Array.of(id));
  }

  /**
   * A copy of this sequence (its cached tokens and its mask) that continues independently:
   * scoring several continuations of one prefilled context (multiple choice) prefills the
   * context once and forks per continuation. The cache is copied with the backend's
   * `copyRows`, the first `length` positions of each kv head, so it works on every backend.
   * `maxTokens` (default this sequence's) may differ but must hold the cached tokens.
   */
  fork(opts: { maxTokens?: number } = {}): Sequence {
    if (this.#freed) throw new Error("fork: sequence was freed");
    if (this.#pending) throw new Error("fork: a routed prefill is pending (call prefillTail)");
    const child = new Sequence(this.#model, {
      maxTokens: opts.maxTokens ?? this.maxTokens,
      mask: this.#mask,
      pageTokens: this.#kv.pageTokens,
    });
    if (child.maxTokens < this.#length) {
      child.free();
      throw new ContextError(
        `fork: ${this.#length} cached tokens do not fit maxTokens ${child.maxTokens}`,
      );
    }
    try {
      this.#kv.copyInto(child.#kv, this.#length);
    } catch (e) {
      child.free();
      throw e;
    }
    child.#length = this.#length;
    return child;
  }

  /** Release the KV cache. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#kv.free();
    this.#temps.freeAll(); // kept ones and a failed step's (incl. a pending x)
    this.#pending = null;
  }

  /**
   * A temporary `[rows, cols]` of the forward pass, released by {@link free} if a step fails.
   * In a one-token step it may be one kept from the last step, holding stale values: every
   * caller writes all of it before reading it.
   */
  #tensor(rows: number, cols: number): Tensor {
    return this.#temps.take(rows, cols, this.#oneToken);
  }

  /** Give a temporary back (kept for the next step in a one-token step, else freed). */
  #drop(t: Tensor): void {
    this.#temps.give(t, this.#oneToken);
  }

  /** Room in the cache and the embedded tokens `[T, H]`; the tokens count as cached from now. */
  #start(ids: Int32Array): Tensor {
    if (this.#freed) throw new Error("sequence was freed");
    if (ids.length === 0) throw new Error("prefill: no tokens");
    if (this.#length + ids.length > this.maxTokens) {
      throw new ContextError(
        `context overflow: ${this.#length} cached + ${ids.length} new tokens > ${this.maxTokens}`,
      );
    }
    this.#kv.reserve(this.#length + ids.length, this.#length);
    this.#oneToken = ids.length === 1;
    const x = this.#tensor(ids.length, this.#model.config.hiddenSize); // [T, H]
    this.#be.embed(this.#model.embed, ids, x);
    this.#length += ids.length;
    return x;
  }

  /** Final norm and LM head over the last row of x `[T, H]` (every row when `all`). */
  async #finish(x: Tensor, T: number, all: boolean): Promise<Float32Array> {
    const be = this.#be;
    const m = this.#model;
    const rows = all ? T : 1;
    const last = this.#tensor(rows, m.config.hiddenSize); // [rows, H]
    if (rows === T) {
      be.rmsNorm(x, m.finalNorm, m.config.rmsNormEps, last); // every row: no copy first
    } else {
      be.copyRows(x, T - rows, rows, last, 0);
      be.rmsNorm(last, m.finalNorm, m.config.rmsNormEps, last);
    }
    this.#drop(x);
    const logits = this.#tensor(rows, m.config.vocabSize); // [rows, V]
    be.matmul(last, m.lmHead, null, null, logits);
    const out = await be.read(logits);
    this.#drop(last);
    this.#drop(logits);
    return out;
  }

  /**
   * Run layers [from, to) on the residual stream x `[T, H]` in place, synchronously: no promise
   * per layer (a decode step of a small model takes well under a millisecond, docs/design.md,
   * Per-token fixed costs).
   */
  #layers(x: Tensor, from: number, to: number, mask: PreparedMask): void {
    const layers = this.#model.layers;
    for (let l = from; l < to; l++) {
      const w = layers[l];
      const pm = mask.layers[l];
      this.#attention(x, l, w, pm);
      this.#mlp(x, w, pm);
    }
  }

  /** {@link #layers} with the observer's named points awaited between the same steps. */
  async #layersObserved(
    x: Tensor,
    from: number,
    to: number,
    mask: PreparedMask,
    obs: ForwardObserver,
  ): Promise<void> {
    for (let l = from; l < to; l++) {
      const w = this.#model.layers[l];
      const pm = mask.layers[l];
      await this.#attentionObserved(x, l, w, pm, obs);
      await this.#mlpObserved(x, l, w, pm, obs);
      await obs.layerDone(l, x);
    }
  }

  /**
   * x += o_proj(attention(rmsNorm(x))) over the kept heads (plus the mask's attention bias);
   * the new tokens' keys and values go into the cache at positions `length - T ..`.
   */
  #attention(x: Tensor, l: number, w: LayerWeights, pm: PreparedLayer): void {
    const h = this.#norm(x, w.attnNorm); // [T, H]
    if (pm.kvOf.length > 0) this.#attnAdd(x, this.#heads(h, l, w, pm), w, pm);
    if (pm.biasAttn) this.#be.addRow(x, pm.biasAttn);
    this.#drop(h);
  }

  /** {@link #attention} with the observer called on its input and its heads' output. */
  async #attentionObserved(
    x: Tensor,
    l: number,
    w: LayerWeights,
    pm: PreparedLayer,
    obs: ForwardObserver,
  ): Promise<void> {
    const h = this.#norm(x, w.attnNorm); // [T, H]
    await obs.attnIn(l, h);
    if (pm.kvOf.length > 0) {
      const att = this.#heads(h, l, w, pm); // [T, S * d_h]
      await obs.attnOut(l, att);
      this.#attnAdd(x, att, w, pm);
    } else {
      await obs.attnOut(l, null);
    }
    if (pm.biasAttn) this.#be.addRow(x, pm.biasAttn);
    this.#drop(h);
  }

  /** A temporary `[T, H]` holding rmsNorm(x) with `weight`. */
  #norm(x: Tensor, weight: LayerWeights["attnNorm"]): Tensor {
    const h = this.#tensor(x.rows, this.#model.config.hiddenSize); // [T, H]
    this.#be.rmsNorm(x, weight, this.#model.config.rmsNormEps, h);
    return h;
  }

  /**
   * The kept heads' attention output `[T, S * d_h]` (slot s = kept head s, S > 0) for the
   * normed input h `[T, H]`, its keys and values written to the cache on the way.
   */
  #heads(h: Tensor, l: number, w: LayerWeights, pm: PreparedLayer): Tensor {
    const be = this.#be;
    const cfg = this.#model.config;
    const T = h.rows;
    const pos0 = this.#length - T;
    const d = cfg.headDim;
    const S = pm.kvOf.length; // kept query heads
    const q = this.#tensor(T, S * d); // [T, S * d_h] slot s = kept head s
    const k = this.#tensor(T, pm.kvHeads.length * d); // [T, S_kv * d_h]
    const v = this.#tensor(T, pm.kvHeads.length * d);
    be.matmul(h, w.q, pm.qRows, w.qBias, q);
    be.matmul(h, w.k, pm.kvRows, w.kBias, k);
    be.matmul(h, w.v, pm.kvRows, w.vBias, v);
    if (w.qNorm && w.kNorm) {
      be.rmsNorm(q, w.qNorm, cfg.rmsNormEps, q);
      be.rmsNorm(k, w.kNorm, cfg.rmsNormEps, k);
    }
    be.rope(q, d, pos0, this.#model.invFreq);
    be.rope(k, d, pos0, this.#model.invFreq);
    const kc = this.#kv.k(l); // [n_kv * cap, d_h]
    const vc = this.#kv.v(l);
    const cap = this.#kv.capacity(l);
    be.kvWrite(kc, k, pm.kvHeads, cap, pos0);
    be.kvWrite(vc, v, pm.kvHeads, cap, pos0);
    const att = this.#tensor(T, S * d); // [T, S * d_h]
    be.attention(q, kc, vc, pm.kvOf, cap, pos0, 1 / Math.sqrt(d), att);
    this.#drop(q);
    this.#drop(k);
    this.#drop(v);
    return att;
  }

  /** x += o_proj(att) over the kept heads' rows; gives att `[T, S * d_h]` back. */
  #attnAdd(x: Tensor, att: Tensor, w: LayerWeights, pm: PreparedLayer): void {
    this.#be.matmulTAdd(att, w.oT, pm.qRows, x);
    this.#drop(att);
  }

  /** x += down(silu(gate(h)) * up(h)) over the kept neurons, h = rmsNorm(x) (plus the bias). */
  #mlp(x: Tensor, w: LayerWeights, pm: PreparedLayer): void {
    const h = this.#norm(x, w.mlpNorm); // [T, H]
    if (pm.neurons.length > 0) swigluAdd(this.#be, h, w, pm.neurons, x, null, this.#scratch);
    if (pm.biasFfn) this.#be.addRow(x, pm.biasFfn);
    this.#drop(h);
  }

  /** {@link #mlp} with the observer called on its input and its activations. */
  async #mlpObserved(
    x: Tensor,
    l: number,
    w: LayerWeights,
    pm: PreparedLayer,
    obs: ForwardObserver,
  ): Promise<void> {
    const h = this.#norm(x, w.mlpNorm); // [T, H]
    await obs.mlpIn(l, h);
    const n = pm.neurons.length;
    if (n > 0) {
      const act = this.#tensor(x.rows, n); // [T, n_kept]
      swigluAdd(this.#be, h, w, pm.neurons, x, act, this.#scratch);
      await obs.mlpAct(l, act, pm);
      this.#drop(act);
    } else {
      await obs.mlpAct(l, null, pm);
    }
    if (pm.biasFfn) this.#be.addRow(x, pm.biasFfn);
    this.#drop(h);
  }
}
