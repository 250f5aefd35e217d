/**
 * Sequence behaviour beyond plain logits: the routed prefill (dense head, mask chosen, tail)
 * equals a prefill under that mask; switching masks between sequences copies no weights;
 * context overflow is refused; capture hands out correctly shaped activations.
 */

import assert from "node:assert/strict";
import { loadModel } from "../lib/model/model.ts";
import { ContextError, Sequence } from "../lib/model/sequence.ts";
import { prepareMask } from "../lib/model/prepared_mask.ts";
import { denseMask, type Mask } from "../lib/model/mask.ts";

const DIR = new URL("./fixtures/mistral", import.meta.url).pathname;
const IDS = Int32Array.from([1, 5, 9, 17, 33, 40, 41, 60, 70, 80]);

function halfMask(m: Mask, fromLayer: number): Mask {
  return {
    name: "half",
    layers: m.layers.map((l, i) =>
      i < fromLayer ? l : {
        ...l,
        neurons: l.neurons.filter((j) => j % 2 === 0),
        heads: l.heads.filter((h) => h !== 1),
      }
    ),
  };
}

Deno.test("routed prefill (head dense, tail masked) equals a masked prefill", async () => {
  const model = await loadModel(DIR);
  const m = 1;
  const mask = prepareMask(model, halfMask(denseMask(model.config), m));
  const a = new Sequence(model, { mask, maxTokens: 32 });
  const want = await a.prefill(IDS);
  const b = new Sequence(model, { maxTokens: 32 });
  const feat = await b.prefillHead(IDS, m);
  assert.equal(feat.length, model.config.hiddenSize);
  b.setMask(mask);
  const got = await b.prefillTail();
  assert.deepEqual([...got], [...want]);
  assert.deepEqual([...(await b.decode(7))], [...(await a.decode(7))]);
});

Deno.test("routed prefill recomputes head layers when the chosen mask prunes them", async () => {
  const model = await loadModel(DIR);
  const mask = prepareMask(model, halfMask(denseMask(model.config), 0));
  const a = new Sequence(model, { mask, maxTokens: 32 });
  const want = await a.prefill(IDS);
  const b = new Sequence(model, { maxTokens: 32 });
  await b.prefillHead(IDS, 2);
  b.setMask(mask);
  assert.deepEqual([...(await b.prefillTail())], [...want]);
  assert.equal(b.length, IDS.length);
});

Deno.test("masks share the weights; context overflow is refused", async () => {
  const model = await loadModel(DIR);
  const before = model.layers.map((l) => l.gate.buf);
  const p = prepareMask(model, halfMask(denseMask(model.config), 0));
  const s = new Sequence(model, { mask: p, maxTokens: 12 });
  await s.prefill(IDS);
  assert.ok(model.layers.every((l, i) => l.gate.buf === before[i]));
  await s.decode(3);
  await s.decode(4);
  await assert.rejects(() => s.decode(5), ContextError);
  assert.throws(() => s.setMask(null), /already has cached tokens/);
});

Deno.test("capture hands out [T, n] activations for every layer", async () => {
  const model = await loadModel(DIR);
  const cfg = model.config;
  const seen: number[] = [];
  const s = new Sequence(model, { maxTokens: 32 });
  await s.prefill(IDS, {
    capture: {
      onLayer(l, a) {
        seen.push(l);
        assert.equal(a.attnIn.length, IDS.length * cfg.hiddenSize);
        assert.equal(a.attnOut.length, IDS.length * cfg.numHeads * cfg.headDim);
        assert.equal(a.mlpIn.length, IDS.length * cfg.hiddenSize);
        assert.equal(a.mlpAct.length, IDS.length * cfg.intermediateSize);
      },
    },
  });
  assert.deepEqual(seen, [...Array(cfg.numLayers).keys()]);
});

Deno.test("a model laid out in another neuron order gives the same logits and captures", async () => {
  const plain = await loadModel(DIR);
  const cfg = plain.config;
  // Reverse order in every layer: every bundle row moves.
  const order = Array.from(
    { length: cfg.numLayers },
    () => Int32Array.from({ length: cfg.intermediateSize }, (_, p) => cfg.intermediateSize - 1 - p),
  );
  const perm = await loadModel(DIR, { neuronOrder: order });
  const mask = halfMask(denseMask(cfg), 0);
  for (const m of [null, mask]) {
    const a = new Sequence(plain, { mask: m ? prepareMask(plain, m) : null, maxTokens: 32 });
    const b = new Sequence(perm, { mask: m ? prepareMask(perm, m) : null, maxTokens: 32 });
    const la = await a.prefill(IDS);
    const lb = await b.prefill(IDS);
    const worst = Math.max(...la.map((v, i) => Math.abs(v - lb[i])));
    assert.ok(worst < 1e-5, `permuted layout differs by ${worst}`);
  }
  const acts: Float32Array[][] = [[], []];
  for (const [k, model] of [plain, perm].entries()) {
    await new Sequence(model, { maxTokens: 32 }).prefill(IDS, {
      capture: { onLayer: (_l, a) => acts[k].push(a.mlpAct) },
    });
  }
  acts[0].forEach((a, l) => {
    const worst = Math.max(...a.map((v, i) => Math.abs(v - acts[1][l][i])));
    assert.ok(worst < 1e-5, `layer ${l} captured mlpAct differs by ${worst}`);
  });
});
