/**
 * Load-time ordering of FFN neurons so that the neurons masks keep sit next to each other in
 * memory. A kept set scattered over the weight bundle is read as many short random runs, which
 * CPUs stream at about half the bandwidth of long runs (bench/gemv_bench.ts); ordering the
 * bundle by how many masks keep each neuron turns every mask's kept set into a few long runs.
 * Masks keep their original neuron indices; `prepareMask` maps them through the order.
 */

import type { Mask } from "./mask.ts";

/**
 * Per layer, neuron indices sorted by how many of `masks` keep them (most first), ties by
 * index: position p of the laid-out bundle holds original neuron `order[l][p]`.
 */
export function keepFrequencyOrder(masks: Mask[], numLayers: number, inter: number): Int32Array[] {
  return Array.from({ length: numLayers }, (_, l) => {
    const count = new Int32Array(inter);
    for (const m of masks) for (const j of m.layers[l].neurons) count[j]++;
    return Int32Array.from({ length: inter }, (_, j) => j).sort((a, b) =>
      count[b] - count[a] || a - b
    );
  });
}

/** Check that each layer's order is a permutation of [0, inter). */
export function validateNeuronOrder(order: Int32Array[], numLayers: number, inter: number): void {
  if (order.length !== numLayers) {
    throw new Error(`neuron order has ${order.length} layers, the model has ${numLayers}`);
  }
  order.forEach((o, l) => {
    const seen = new Uint8Array(inter);
    if (o.length !== inter) throw new Error(`neuron order layer ${l}: ${o.length} != ${inter}`);
    for (const j of o) {
      if (j < 0 || j >= inter || seen[j]) {
        throw new Error(`neuron order layer ${l} is not a permutation of [0, ${inter})`);
      }
      seen[j] = 1;
    }
  });
}

/** Inverse permutation: `pos[original] = position`. */
export function inversePermutation(order: Int32Array): Int32Array {
  const pos = new Int32Array(order.length);
  order.forEach((j, p) => (pos[j] = p));
  return pos;
}
