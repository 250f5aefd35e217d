/**
 * The one cost measure (lib/model/mask.ts maskCost) against counts worked out by hand, and
 * masks requested by share: every method's mask removes the requested share of decoder
 * parameters within ±1 point.
 */

import assert from "node:assert/strict";
import { buildMasks, DEFAULT_MASK_PARAMS } from "../lib/calibrate/build_masks.ts";
import type { CalibrationStats } from "../lib/calibrate/collect_stats.ts";
import { searchShare, ShareError } from "../lib/calibrate/share_search.ts";
import { type Dims, emptyTaskStats } from "../lib/calibrate/stats_types.ts";
import { type Mask, maskCost } from "../lib/model/mask.ts";
import { rng } from "../lib/util/seeded_rng.ts";

// L = 2, H = 4, I = 6, 4 query heads in 2 GQA groups of 2 (heads 0,1 -> kv 0; 2,3 -> kv 1),
// d_h = 2, vocabulary 10.
const shape = {
  numLayers: 2,
  hiddenSize: 4,
  intermediateSize: 6,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 2,
  vocabSize: 10,
};

Deno.test("mask cost by hand: parameters (partial and whole GQA groups, compensation vectors), bytes and FLOPs per token", () => {
  const v = new Float32Array(4);
  const mask: Mask = {
    name: "hand",
    layers: [
      // heads 0 and 2: both groups keep a query head, so all K/V rows stay; 3 of 6 neurons;
      // two compensation vectors
      { heads: Int32Array.of(0, 2), neurons: Int32Array.of(0, 1, 5), biasAttn: v, biasFfn: v },
      // heads 0 and 1: group 1 is pruned whole, its K/V rows go; every neuron kept
      {
        heads: Int32Array.of(0, 1),
        neurons: Int32Array.of(0, 1, 2, 3, 4, 5),
        biasAttn: null,
        biasFfn: null,
      },
    ],
  };
  // dense layer: q 4*8 + o 8*4 + k 4*4 + v 4*4 + gate/up/down 3*4*6 + norms 2*4 = 176
  // layer 0: q 16 + o 16 + k 16 + v 16 + ffn 36 + norms 8 + vectors 8 = 116
  // layer 1: q 16 + o 16 + k 8 + v 8 + ffn 72 + norms 8 = 128
  const c = maskCost(mask, shape, 3);
  assert.equal(c.denseParams, 352);
  assert.equal(c.keptParams, 244);
  assert.ok(Math.abs(c.params - 108 / 352) < 1e-15, `params share ${c.params}`);
  // read per token: + embedding row 4 + final norm 4 + LM head 40
  assert.equal(c.denseRead, 400);
  assert.ok(Math.abs(c.bytesPerToken - (1 - 292 / 400)) < 1e-15);
  // FLOPs at context 3: dense layer 2*(32+32+16+16+72) + 4*2*3*4 heads = 432; LM head 80
  // layer 0: 2*(16+16+16+16+36) + 4*2*3*2 + 8 bias adds = 256; layer 1: 2*120 + 48 = 288
  assert.equal(c.denseFlops, 944);
  assert.equal(c.keptFlops, 624);
  assert.ok(Math.abs(c.flopsPerToken - 320 / 944) < 1e-15);
  // q/k/v biases (Qwen2) are decoder parameters too: dense layer + 8 + 2*4
  const qb = maskCost(mask, { ...shape, attentionBias: true }, 3);
  assert.equal(qb.denseParams, 2 * 192);
  assert.equal(qb.keptParams, 244 + (4 + 8) + (4 + 4));
});

Deno.test("share search: the closest step of a step function, and a clear refusal beyond reach", () => {
  // share removed = floor(knob * 40) / 40 (steps of 2.5 points), reaches at most 0.6
  const f = (k: number) => ({ share: Math.min(0.6, Math.floor(k * 40) / 40), value: k });
  const r = searchShare("toy", 0.255, 0.99, f);
  assert.equal(r.achieved, 0.25);
  const r2 = searchShare("toy", 0.2749, 0.99, f);
  assert.equal(r2.achieved, 0.275);
  assert.throws(
    () => searchShare("toy", 0.7, 0.99, f),
    (e: Error) => e instanceof ShareError && /most it reaches is 60\.00%/.test(e.message),
  );
  // a step wider than the tolerance: refused with the closest share
  const coarse = (k: number) => ({ share: Math.floor(k * 4) / 4, value: k });
  assert.throws(() => searchShare("coarse", 0.4, 0.99, coarse), /closest selection removes/);
});

/** Synthetic statistics of three tasks on a GQA model, with random activations. */
function syntheticStats(d: Dims): CalibrationStats {
  const r = rng(3);
  const stats = ["alpha", "beta", "general"].map((task, t) => {
    const ts = emptyTaskStats(task, d);
    ts.samples = 4;
    ts.tokens = 16;
    for (const ls of ts.layers) {
      for (
        const [s, D] of [
          [ls.attnOut, d.numHeads * d.headDim],
          [ls.mlpAct, d.intermediateSize],
          [ls.attnIn, d.hiddenSize],
          [ls.mlpIn, d.hiddenSize],
        ] as const
      ) {
        const x = Float32Array.from(
          { length: 16 * D },
          (_, i) => (r() - 0.5) * (1 + (i % D) * (t + 1) % 7),
        );
        s.update(x);
      }
    }
    return ts;
  });
  return {
    dims: d,
    fingerprint: "x",
    modelName: "synthetic",
    maxTokens: 16,
    stats,
    router: {
      tasks: [],
      layer: 1,
      features: new Float32Array(0),
      labels: new Int32Array(0),
      heldOut: new Int32Array(0),
    },
    seconds: 0,
    routerSeconds: 0,
    tokens: 48,
  };
}

Deno.test("masks are built by share: every method removes the named share of decoder parameters (±1 point)", () => {
  const d: Dims = {
    numLayers: 8,
    hiddenSize: 48,
    intermediateSize: 192,
    numHeads: 6,
    numKvHeads: 2,
    headDim: 8,
    vocabSize: 100,
  };
  const cal = syntheticStats(d);
  const r = rng(9);
  const proj = Array.from({ length: d.numLayers }, () => ({
    wDown: Float32Array.from({ length: d.hiddenSize * d.intermediateSize }, () => r() - 0.5),
    wO: Float32Array.from({ length: d.hiddenSize * d.numHeads * d.headDim }, () => r() - 0.5),
  }));
  const shares = [0.1, 0.2, 0.35, 0.5];
  const built = buildMasks(cal, proj, {
    ...DEFAULT_MASK_PARAMS,
    sparsities: shares,
    validated: { "0.5": { alpha: 0.5, beta: 1 } },
  });
  const methods = new Set(built.map((b) => b.method));
  assert.deepEqual(
    [...methods].sort(),
    ["flap", "seap", "seap-generic", "seap-task-raw", "wanda-sp"],
  );
  for (const b of built) {
    const c = maskCost(b.mask, d);
    const tag = b.mask.name.split("@")[1];
    assert.equal(Number(tag), b.sparsity, b.mask.name);
    assert.ok(Math.abs(c.params - b.sparsity) <= 0.01, `${b.mask.name}: removes ${c.params}`);
    assert.equal(c.params, b.cost.params);
  }
  // UL-LD masks (m = n = 1 on 8 layers by default) keep the first and last layer dense
  for (const b of built.filter((x) => x.method.startsWith("seap"))) {
    for (const l of [0, 7]) {
      assert.equal(b.mask.layers[l].neurons.length, d.intermediateSize, `${b.mask.name} ${l}`);
      assert.equal(b.mask.layers[l].heads.length, d.numHeads);
    }
  }
  // validated names: alpha@0.5 is a blend, beta@0.5 the generic mask, raw masks kept apart
  const by = (n: string) => built.find((b) => b.mask.name === n)!;
  assert.deepEqual(by("beta@0.5").mask.layers, by("generic@0.5").mask.layers);
  assert.equal(by("beta@0.5").method, "seap");
  assert.equal(by("alpha.raw@0.5").method, "seap-task-raw");
  assert.notDeepEqual(by("alpha@0.5").mask.layers, by("alpha.raw@0.5").mask.layers);
  assert.ok(!built.some((b) => b.mask.name === "alpha.raw@0.2"));
});
