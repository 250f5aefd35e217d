/**
 * Activation capture as an observer of the forward pass (calibration, task features): the
 * forward calls a {@link ForwardObserver} at named points with the device tensor it just
 * computed and never reads activations itself. {@link captureObserver} is the observer that
 * copies them to the host and hands a caller's {@link ActivationCapture} one
 * {@link LayerActivations} per layer.
 */

import type { Backend, Tensor } from "../backends/backend.ts";
import type { Model } from "./model.ts";
import type { PreparedLayer } from "./prepared_mask.ts";

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

/**
 * Named points of one layer of the forward pass. Each hook gets the tensor as computed and
 * must be done with it when its promise settles (the forward reuses or frees it afterwards).
 */
export interface ForwardObserver {
  /** Post-norm attention input `[T, H]`. */
  attnIn(l: number, h: Tensor): Promise<void>;
  /** Input of o_proj `[T, S * d_h]` (kept head slots), or null when every head is pruned. */
  attnOut(l: number, att: Tensor | null): Promise<void>;
  /** Post-norm MLP input `[T, H]`. */
  mlpIn(l: number, h: Tensor): Promise<void>;
  /**
   * Input of down_proj `[T, n_kept]` (kept neurons in the bundle's row order, `pm.neurons`),
   * or null when every neuron is pruned.
   */
  mlpAct(l: number, act: Tensor | null, pm: PreparedLayer): Promise<void>;
  /** Residual stream after the layer `[T, H]`. */
  layerDone(l: number, x: Tensor): Promise<void>;
}

/** The observer that reads each point to the host and calls `capture` per layer. */
export function captureObserver(
  model: Model,
  capture: ActivationCapture,
  T: number,
): ForwardObserver {
  const be: Backend = model.backend;
  const cfg = model.config;
  let cur: Partial<LayerActivations> = {};
  return {
    async attnIn(_l, h) {
      cur = { attnIn: await be.read(h) };
    },
    async attnOut(_l, att) {
      cur.attnOut = att ? await be.read(att) : new Float32Array(T * cfg.numHeads * cfg.headDim);
    },
    async mlpIn(_l, h) {
      cur.mlpIn = await be.read(h);
    },
    async mlpAct(l, act, pm) {
      if (!act) {
        cur.mlpAct = new Float32Array(T * cfg.intermediateSize);
        return;
      }
      const a = await be.read(act);
      const order = model.neuronOrder?.[l];
      cur.mlpAct = order ? unpermute(a, order, pm.neurons.host, T, cfg.intermediateSize) : a;
    },
    async layerDone(l, x) {
      capture.onLayer(l, cur as LayerActivations);
      cur = {};
      if (capture.onHidden) capture.onHidden(l, await be.read(x));
    },
  };
}

/**
 * Activations `[T, n_kept]` in bundle order (`rows[i]` = bundle row of column i, bundle row p
 * = original neuron `order[p]`) to `[T, I]` in original neuron order, pruned neurons zero.
 */
function unpermute(
  act: Float32Array,
  order: Int32Array,
  rows: Int32Array,
  T: number,
  I: number,
): Float32Array {
  const out = new Float32Array(T * I); // [T, I] column j = original neuron j
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < rows.length; i++) out[t * I + order[rows[i]]] = act[t * rows.length + i];
  }
  return out;
}
