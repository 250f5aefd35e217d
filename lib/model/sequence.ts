/**
 * One sequence: its KV cache and the forward pass (prefill and incremental decode) under a
 * prepared mask. All heavy work goes through the model's {@link Backend}; pruned neurons and
 * heads are never touched, and a kv head whose whole query group is pruned is neither computed
 * nor cached.
 */

import type { Backend, Tensor } from "../backends/backend.ts";
import type { Model } from "./model.ts";
import { denseFor, type PreparedMask } from "./prepared_mask.ts";

/** Activations of one layer handed to a capture (host copies, dense pass). */
export interface LayerActivations {
  attnIn: Float32Array; // [T, H] post-norm input of attention
  attnOut: Float32Array; // [T, n_h * d_h] input of o_proj
  mlpIn: Float32Array; // [T, H] post-norm input of the MLP
  mlpAct: Float32Array; // [T, I] input of down_proj = silu(gate(x)) * up(x)
}

/** Receives activations during a prefill (calibration). */
export interface ActivationCapture {
  /** Called once per layer per prefill. */
  onLayer(layer: number, a: LayerActivations): void;
  /** Residual stream after each layer `[T, H]`, when wanted. */
  onHidden?(layer: number, h: Float32Array): void;
}

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

/** A sequence being generated: KV cache `[L][n_kv * maxT, d_h]` plus its mask. */
export class Sequence {
  readonly maxTokens: number;
  #model: Model;
  #be: Backend;
  #mask: PreparedMask;
  #kCache: Tensor[] = []; // per layer [n_kv * maxT, d_h], row h*maxT + p
  #vCache: Tensor[] = [];
  #length = 0;
  #pending: { x: Tensor; ids: Int32Array; m: number; mask: PreparedMask } | null = null;
  #freed = false;
  /** Temporaries of the forward pass in flight; freed with the sequence if a step fails. */
  #live = new Set<Tensor>();

  constructor(model: Model, opts: { maxTokens?: number; mask?: PreparedMask | null } = {}) {
    this.#model = model;
    this.#be = model.backend;
    this.maxTokens = Math.min(
      opts.maxTokens ?? model.config.maxPositionEmbeddings,
      model.config.maxPositionEmbeddings,
    );
    this.#mask = opts.mask ?? denseFor(model);
    const { numKvHeads, headDim, numLayers } = model.config;
    try {
      for (let l = 0; l < numLayers; l++) {
        this.#kCache.push(this.#be.tensor(numKvHeads * this.maxTokens, headDim));
        this.#vCache.push(this.#be.tensor(numKvHeads * this.maxTokens, headDim));
      }
    } catch (e) {
      // Out of memory part-way: give back the layers already allocated before failing.
      this.free();
      throw e;
    }
  }

  /** Tokens in the cache. */
  get length(): number {
    return this.#length;
  }

  /** The mask in use. */
  get mask(): PreparedMask {
    return this.#mask;
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
    const x = this.#start(ids);
    await this.#layers(x, 0, this.#model.config.numLayers, this.#mask, opts.capture);
    return this.#finish(x, ids.length, opts.allLogits ?? false);
  }

  /**
   * Prefill layers [0, m) only (with the current mask, dense by default) and return the
   * router feature `[H]`: the mean over tokens of the hidden state after layer m-1 (the
   * embedding output if m = 0). Continue with {@link prefillTail}.
   */
  async prefillHead(ids: Int32Array, m: number): Promise<Float32Array> {
    const x = this.#start(ids);
    await this.#layers(x, 0, m, this.#mask);
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
    await this.#layers(x, from, this.#model.config.numLayers, this.#mask);
    return this.#finish(x, p.ids.length, false);
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
    });
    if (child.maxTokens < this.#length) {
      child.free();
      throw new ContextError(
        `fork: ${this.#length} cached tokens do not fit maxTokens ${child.maxTokens}`,
      );
    }
    const nKv = this.#model.config.numKvHeads;
    const n = this.#length;
    try {
      if (n > 0) {
        for (let l = 0; l < this.#kCache.length; l++) {
          for (let h = 0; h < nKv; h++) {
            // Rows h * maxT + p, p < n, of the [n_kv * maxT, d_h] caches.
            this.#be.copyRows(
              this.#kCache[l],
              h * this.maxTokens,
              n,
              child.#kCache[l],
              h * child.maxTokens,
            );
            this.#be.copyRows(
              this.#vCache[l],
              h * this.maxTokens,
              n,
              child.#vCache[l],
              h * child.maxTokens,
            );
          }
        }
      }
    } catch (e) {
      child.free();
      throw e;
    }
    child.#length = n;
    return child;
  }

  /** Release the KV cache. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    for (const t of [...this.#kCache, ...this.#vCache]) this.#be.free(t);
    this.#kCache = [];
    this.#vCache = [];
    for (const t of this.#live) this.#be.free(t); // a failed step's temporaries (incl. pending x)
    this.#live.clear();
    this.#pending = null;
  }

  /** A temporary `[rows, cols]` of the forward pass, released by {@link free} if a step fails. */
  #tensor(rows: number, cols: number): Tensor {
    const t = this.#be.tensor(rows, cols);
    this.#live.add(t);
    return t;
  }

  /** Free a temporary. */
  #drop(t: Tensor): void {
    this.#live.delete(t);
    this.#be.free(t);
  }

  #start(ids: Int32Array): Tensor {
    if (this.#freed) throw new Error("sequence was freed");
    if (ids.length === 0) throw new Error("prefill: no tokens");
    if (this.#length + ids.length > this.maxTokens) {
      throw new ContextError(
        `context overflow: ${this.#length} cached + ${ids.length} new tokens > ${this.maxTokens}`,
      );
    }
    const x = this.#tensor(ids.length, this.#model.config.hiddenSize); // [T, H]
    this.#be.embed(this.#model.embed, ids, x);
    this.#length += ids.length;
    return x;
  }

  async #finish(x: Tensor, T: number, all: boolean): Promise<Float32Array> {
    const be = this.#be;
    const m = this.#model;
    const rows = all ? T : 1;
    const last = this.#tensor(rows, m.config.hiddenSize); // [rows, H]
    be.copyRows(x, T - rows, rows, last, 0);
    this.#drop(x);
    be.rmsNorm(last, m.finalNorm, m.config.rmsNormEps, last);
    const logits = this.#tensor(rows, m.config.vocabSize); // [rows, V]
    be.matmul(last, m.lmHead, null, null, logits);
    const out = await be.read(logits);
    this.#drop(last);
    this.#drop(logits);
    return out;
  }

  /** Activations `[T, n_kept]` in bundle order to `[T, I]` in original neuron order. */
  #unpermute(act: Float32Array, l: number, pm: PreparedMask["layers"][number], T: number) {
    const I = this.#model.config.intermediateSize;
    const order = this.#model.neuronOrder![l];
    const rows = pm.neurons.host;
    const out = new Float32Array(T * I); // [T, I] column j = original neuron j
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < rows.length; i++) out[t * I + order[rows[i]]] = act[t * rows.length + i];
    }
    return out;
  }

  /** Run layers [from, to) on x `[T, H]` in place; tokens sit at the end of the cache. */
  async #layers(
    x: Tensor,
    from: number,
    to: number,
    mask: PreparedMask,
    capture?: ActivationCapture,
  ): Promise<void> {
    const be = this.#be;
    const cfg = this.#model.config;
    const T = x.rows;
    const pos0 = this.#length - T;
    const d = cfg.headDim;
    const scale = 1 / Math.sqrt(d);
    for (let l = from; l < to; l++) {
      const w = this.#model.layers[l];
      const pm = mask.layers[l];
      const S = pm.kvOf.length; // kept query heads
      const h = this.#tensor(T, cfg.hiddenSize); // [T, H]
      be.rmsNorm(x, w.attnNorm, cfg.rmsNormEps, h);
      let attnIn: Float32Array | undefined;
      let attnOut: Float32Array | undefined;
      if (capture) attnIn = await be.read(h);
      if (S > 0) {
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
        be.kvWrite(this.#kCache[l], k, pm.kvHeads, this.maxTokens, pos0);
        be.kvWrite(this.#vCache[l], v, pm.kvHeads, this.maxTokens, pos0);
        const att = this.#tensor(T, S * d); // [T, S * d_h]
        be.attention(
          q,
          this.#kCache[l],
          this.#vCache[l],
          pm.kvOf,
          this.maxTokens,
          pos0,
          scale,
          att,
        );
        if (capture) attnOut = await be.read(att);
        be.matmulTAdd(att, w.oT, pm.qRows, x);
        for (const t of [q, k, v, att]) this.#drop(t);
      } else if (capture) {
        attnOut = new Float32Array(T * cfg.numHeads * d);
      }
      if (pm.biasAttn) be.addRow(x, pm.biasAttn);
      be.rmsNorm(x, w.mlpNorm, cfg.rmsNormEps, h);
      let mlpIn: Float32Array | undefined;
      let mlpAct: Float32Array | undefined;
      if (capture) mlpIn = await be.read(h);
      const n = pm.neurons.length;
      if (n > 0 && be.ffn) {
        // Fused: each kept neuron's gate, up and down^T rows read as one contiguous stream.
        const act = capture ? this.#tensor(T, n) : null; // [T, n_kept]
        be.ffn(h, w.gate, w.up, w.downT, pm.neurons, x, act);
        if (act) {
          mlpAct = await be.read(act);
          this.#drop(act);
        }
      } else if (n > 0) {
        const g = this.#tensor(T, n); // [T, n_kept] column i = neuron neurons[i]
        const u = this.#tensor(T, n);
        be.matmul(h, w.gate, pm.neurons, null, g);
        be.matmul(h, w.up, pm.neurons, null, u);
        be.siluMul(g, u, g);
        if (capture) mlpAct = await be.read(g);
        be.matmulTAdd(g, w.downT, pm.neurons, x);
        this.#drop(g);
        this.#drop(u);
      } else if (capture) {
        mlpAct = new Float32Array(T * cfg.intermediateSize);
      }
      if (pm.biasFfn) be.addRow(x, pm.biasFfn);
      this.#drop(h);
      if (capture) {
        if (n > 0 && this.#model.neuronOrder) mlpAct = this.#unpermute(mlpAct!, l, pm, T);
        capture.onLayer(l, { attnIn: attnIn!, attnOut: attnOut!, mlpIn: mlpIn!, mlpAct: mlpAct! });
        if (capture.onHidden) capture.onHidden(l, await be.read(x));
      }
    }
  }
}
