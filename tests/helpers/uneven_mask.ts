/**
 * A mask that exercises every corner of a physically pruned export: layer 0 keeps uneven GQA
 * groups (3 query heads of kv head 0, 1 of kv head 1) and every third neuron dropped; layer 1
 * keeps no head and no neuron; every layer has both bias-compensation vectors. Only layers 0
 * and 1 are special; further layers keep everything.
 */

import type { ModelConfig } from "../../lib/model/config.ts";
import { denseMask, type Mask } from "../../lib/model/mask.ts";

/** The mask described above for a config with ≥ 2 kv heads of ≥ 4 query heads each. */
export function unevenMask(cfg: ModelConfig): Mask {
  const H = cfg.hiddenSize;
  const group = cfg.numHeads / cfg.numKvHeads;
  return {
    name: "uneven",
    layers: denseMask(cfg).layers.map((l, i) => ({
      neurons: i === 0
        ? l.neurons.filter((j) => j % 3 !== 0)
        : i === 1
        ? new Int32Array(0)
        : l.neurons,
      heads: i === 0 ? Int32Array.of(1, 2, 3, group) : i === 1 ? new Int32Array(0) : l.heads,
      biasAttn: Float32Array.from({ length: H }, (_, r) => Math.sin(r + i) * 0.05),
      biasFfn: Float32Array.from({ length: H }, (_, r) => Math.cos(r * 3 + i) * 0.05),
    })),
  };
}
