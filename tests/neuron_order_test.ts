/**
 * FFN layouts (lib/model/neuron_order.ts): the mask-overlap order against a hand-worked example
 * and a brute-force re-derivation of its greedy chain (signatures as strings, distances counted
 * per mask), and with more than 32 masks (several signature words).
 */

import assert from "node:assert/strict";
import {
  keepFrequencyOrder,
  maskOverlapOrder,
  neuronOrderOf,
  validateNeuronOrder,
} from "../lib/model/neuron_order.ts";
import type { Mask } from "../lib/model/mask.ts";
import { rng } from "../lib/util/seeded_rng.ts";

/** A mask keeping `neurons[l]` in layer l (heads unused by the order). */
function maskOf(name: string, neurons: number[][]): Mask {
  return {
    name,
    layers: neurons.map((n) => ({
      neurons: Int32Array.from(n),
      heads: Int32Array.of(0),
      biasAttn: null,
      biasFfn: null,
    })),
  };
}

/** Random masks over `inter` neurons, each keeping a share drawn in [0.2, 0.8]. */
function randomMasks(n: number, layers: number, inter: number, seed: number): Mask[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, k) => {
    const keep = 0.2 + 0.6 * r();
    return maskOf(
      `m${k}`,
      Array.from(
        { length: layers },
        () => Array.from({ length: inter }, (_, j) => j).filter(() => r() < keep),
      ),
    );
  });
}

/** "0101..." signature of neuron j in layer l: character k is 1 when mask k keeps it. */
function signature(masks: Mask[], l: number, j: number): string {
  return masks.map((m) => (m.layers[l].neurons.includes(j) ? "1" : "0")).join("");
}

function hamming(a: string, b: string): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += a[i] === b[i] ? 0 : 1;
  return d;
}

/**
 * Check an order against the rule it should follow, re-derived from strings: neurons of one
 * signature adjacent in index order, the chain starting at the signature most masks share and
 * each next signature the nearest unused one (ties: more masks, then lower first neuron).
 */
function checkGreedy(masks: Mask[], l: number, inter: number, order: Int32Array): void {
  const sig = Array.from({ length: inter }, (_, j) => signature(masks, l, j));
  const ones = (s: string) => [...s].filter((c) => c === "1").length;
  const first = new Map<string, number>();
  sig.forEach((s, j) => first.has(s) || first.set(s, j));
  const chain: string[] = [];
  for (let p = 0; p < inter; p++) {
    const s = sig[order[p]];
    if (p > 0 && s === sig[order[p - 1]]) {
      assert.ok(order[p] > order[p - 1], `layer ${l}: group members out of index order at ${p}`);
      continue;
    }
    assert.ok(!chain.includes(s), `layer ${l}: signature ${s} split at position ${p}`);
    chain.push(s);
  }
  const rank = (s: string, d: number) => [d, -ones(s), first.get(s)!];
  const less = (a: number[], b: number[]) =>
    a[0] !== b[0] ? a[0] < b[0] : a[1] !== b[1] ? a[1] < b[1] : a[2] < b[2];
  const left = new Set(first.keys());
  let prev: string | null = null;
  for (const [i, s] of chain.entries()) {
    let best: string | null = null;
    for (const c of left) {
      const d = prev === null ? 0 : hamming(prev, c);
      if (best === null || less(rank(c, d), rank(best, prev === null ? 0 : hamming(prev, best)))) {
        best = c;
      }
    }
    assert.equal(s, best, `layer ${l}: step ${i} took ${s}, the nearest unused is ${best}`);
    left.delete(s);
    prev = s;
  }
}

Deno.test("mask-overlap order: a hand-worked example", () => {
  // m0 keeps {0, 2, 4}, m1 keeps {2, 3, 4}: signatures n0 = m0, n1 = none, n2 = n4 = both,
  // n3 = m1, n5 = none. Chain: both [2, 4]; then m0-only [0] (distance 1, ties with m1-only
  // [3], lower first neuron); then none [1, 5] (1 from m0-only); then m1-only [3].
  const masks = [maskOf("m0", [[0, 2, 4]]), maskOf("m1", [[2, 3, 4]])];
  const [order] = maskOverlapOrder(masks, 1, 6);
  assert.deepEqual([...order], [2, 4, 0, 1, 5, 3]);
  // By keep frequency: 2, 4 (both), then 0, 3 (one each), then 1, 5.
  assert.deepEqual([...keepFrequencyOrder(masks, 1, 6)[0]], [2, 4, 0, 3, 1, 5]);
});

Deno.test("mask-overlap order: the greedy chain, re-derived by brute force", () => {
  for (const [n, seed] of [[5, 1], [12, 2]]) {
    const masks = randomMasks(n, 3, 200, seed);
    const order = maskOverlapOrder(masks, 3, 200);
    validateNeuronOrder(order, 3, 200);
    order.forEach((o, l) => checkGreedy(masks, l, 200, o));
  }
});

Deno.test("mask-overlap order: more than 32 masks (several signature words)", () => {
  const masks = randomMasks(40, 2, 96, 3);
  const order = maskOverlapOrder(masks, 2, 96);
  validateNeuronOrder(order, 2, 96);
  order.forEach((o, l) => checkGreedy(masks, l, 96, o));
  // Masks 32..39 matter: dropping them changes the order.
  const fewer = maskOverlapOrder(masks.slice(0, 32), 2, 96);
  assert.notDeepEqual([...fewer[0]], [...order[0]]);
});

Deno.test("neuronOrderOf: identity is no reordering, the others are the two orders", () => {
  const masks = randomMasks(4, 2, 64, 4);
  assert.equal(neuronOrderOf("identity", masks, 2, 64), null);
  assert.deepEqual(neuronOrderOf("overlap", masks, 2, 64), maskOverlapOrder(masks, 2, 64));
  assert.deepEqual(
    neuronOrderOf("keep-frequency", masks, 2, 64),
    keepFrequencyOrder(masks, 2, 64),
  );
});
