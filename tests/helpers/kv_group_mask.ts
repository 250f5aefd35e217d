/**
 * A mask that prunes kv group 0 everywhere (query heads 0 .. group - 1, so that group's cache rows
 * are never written) and every even neuron in layers >= 1: for the KV-cache tests (paging, forks).
 */

import { denseMask, type Mask } from "../../lib/model/mask.ts";
import type { Model } from "../../lib/model/model.ts";

/** The mask described above, named `name`. */
export function kvGroupMask(m: Model, name: string): Mask {
  const d = denseMask(m.config);
  const g = m.config.numHeads / m.config.numKvHeads;
  return {
    name,
    layers: d.layers.map((l, i) => ({
      ...l,
      heads: l.heads.filter((h) => h >= g),
      neurons: i === 0 ? l.neurons : l.neurons.filter((j) => j % 2 === 1),
    })),
  };
}
