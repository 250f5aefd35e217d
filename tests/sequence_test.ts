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
