/**
 * Load-time ordering of FFN neurons so that the neurons masks keep sit next to each other in
 * memory. A kept set scattered over the weight bundle is read as many short random runs, which
 * CPUs stream at about half the bandwidth of long runs (bench/kernel_bench.ts, "random rows").
 * Two orders: by how many masks keep each neuron (`keepFrequencyOrder`: every mask's kept set
 * starts with one long run, but the neurons only some masks keep come in short runs), and by
 * which masks keep it (`maskOverlapOrder`, the default: neurons kept by the same masks side by
 * side, so every mask's kept set is a few long runs). Masks keep their original neuron indices;
 * `prepareMask` maps them through the order.
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

/**
 * Per layer, neurons grouped by their keep signature (the set of `masks` that keep them) and the
 * groups chained greedily so that each group's signature differs from the previous one in as
 * few masks as possible: every place where two neighbours differ in mask k ends one of mask k's
 * runs, so a short chain of small differences gives every mask few, long runs (on the
 * SmolLM2-135M shape with 8 + 8 SEAP-shaped task masks at 0.2 and 0.5: 16-18 runs per layer and
 * mask instead of 112-118 by keep frequency; docs/design.md, Weight layout). The chain starts at
 * the signature most masks share (ties: the lower neuron); each step takes the nearest unused
 * signature (ties: more masks, then lower first neuron). Within a group neurons keep index order.
 * Cost: O(G^2 * masks / 32) per layer for G distinct signatures (at most `inter`).
 */
export function maskOverlapOrder(masks: Mask[], numLayers: number, inter: number): Int32Array[] {
  const words = Math.max(1, Math.ceil(masks.length / 32));
  return Array.from({ length: numLayers }, (_, l) => {
    const sig = new Uint32Array(inter * words); // [inter, words] bit k = mask k keeps neuron j
    masks.forEach((m, k) => {
      for (const j of m.layers[l].neurons) sig[j * words + (k >> 5)] |= 1 << (k & 31);
    });
    // Distinct signatures in order of their first neuron; members in index order.
    const byKey = new Map<string, number[]>();
    for (let j = 0; j < inter; j++) {
      const key = sig.subarray(j * words, (j + 1) * words).join(",");
      const g = byKey.get(key);
      if (g) g.push(j);
      else byKey.set(key, [j]);
    }
    const groups = [...byKey.values()];
    const G = groups.length;
    const gs = new Uint32Array(G * words); // [G, words] signature of group g
    const count = new Int32Array(G); // masks keeping group g
    groups.forEach((g, i) => {
      for (let w = 0; w < words; w++) {
        gs[i * words + w] = sig[g[0] * words + w];
        count[i] += popcount(gs[i * words + w]);
      }
    });
    const better = (a: number, da: number, b: number, db: number) =>
      da < db || (da === db && (count[a] > count[b] || (count[a] === count[b] && a < b)));
    const used = new Uint8Array(G);
    const out = new Int32Array(inter);
    let n = 0;
    let cur = 0;
    for (let i = 1; i < G; i++) if (better(i, 0, cur, 0)) cur = i;
    for (let step = 0; step < G; step++) {
      used[cur] = 1;
      for (const j of groups[cur]) out[n++] = j;
      let next = -1, dn = Infinity;
      for (let i = 0; i < G; i++) {
        if (used[i]) continue;
        let d = 0;
        for (let w = 0; w < words; w++) d += popcount(gs[i * words + w] ^ gs[cur * words + w]);
        if (next < 0 || better(i, d, next, dn)) {
          next = i;
          dn = d;
        }
      }
      cur = next;
    }
    return out;
  });
}

/** Set bits of a 32-bit word. */
function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** The FFN layouts a model can be loaded with (`SEAP_NEURON_ORDER`). */
export const NEURON_ORDER_KINDS = ["overlap", "keep-frequency", "identity"] as const;

/** One of {@link NEURON_ORDER_KINDS}. */
export type NeuronOrderKind = typeof NEURON_ORDER_KINDS[number];

/** Each layer's order of kind `kind` over `masks`; null for "identity" (no reordering). */
export function neuronOrderOf(
  kind: NeuronOrderKind,
  masks: Mask[],
  numLayers: number,
  inter: number,
): Int32Array[] | null {
  if (kind === "identity") return null;
  return (kind === "overlap" ? maskOverlapOrder : keepFrequencyOrder)(masks, numLayers, inter);
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
