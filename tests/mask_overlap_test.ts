/** tools/mask_overlap.ts: overlaps of two hand-made masks, counted by hand. */

import assert from "node:assert/strict";
import { maskOverlap } from "../tools/mask_overlap.ts";
import type { Mask } from "../lib/model/mask.ts";

const layer = (neurons: number[], heads: number[]) => ({
  neurons: Int32Array.from(neurons),
  heads: Int32Array.from(heads),
  biasAttn: null,
  biasFfn: null,
});

Deno.test("mask overlap: Jaccard of kept neurons and heads, share of same decisions", () => {
  // 2 layers, 8 neurons, 4 heads.
  const a: Mask = { name: "a", layers: [layer([0, 1, 2, 3], [0, 1]), layer([4, 5], [2])] };
  const b: Mask = { name: "b", layers: [layer([0, 1, 2, 7], [0, 1]), layer([4, 6], [3])] };
  const o = maskOverlap(a, b, { inter: 8, heads: 4 });
  // neurons: both {0,1,2} + {4} = 4; union {0,1,2,3,7} + {4,5,6} = 8
  assert.equal(o.neurons, 4 / 8);
  // heads: both {0,1} = 2; union {0,1} + {2,3} = 4
  assert.equal(o.heads, 2 / 4);
  // decisions differ on neurons 3, 7 (layer 0), 5, 6 (layer 1) and heads 2, 3 (layer 1): 6 of 24
  assert.equal(o.agreement, 18 / 24);
  assert.deepEqual(maskOverlap(a, a, { inter: 8, heads: 4 }), {
    name: "a",
    neurons: 1,
    heads: 1,
    agreement: 1,
  });
  assert.throws(() => maskOverlap(a, { name: "c", layers: [a.layers[0]] }, { inter: 8, heads: 4 }));
});
