/**
 * Contenders from a mask catalog: every method at its share, the oracle picking each task's
 * own mask (the generic one for a task without), validated masks beside the paper's
 * `<task>.raw` ones, and the routed pick following the server's rule.
 */

import assert from "node:assert/strict";
import { catalogContenders } from "../lib/eval/contenders.ts";
import { denseMask, type Mask } from "../lib/model/mask.ts";
import { loadModel } from "../lib/model/model.ts";
import { MaskCatalog } from "../lib/masks/catalog.ts";

const DIR = new URL("./fixtures/tiny_chat", import.meta.url).pathname;

Deno.test("contenders: methods, oracle, validated vs raw, routed", async () => {
  const model = await loadModel(DIR);
  const mk = (name: string, keep: number): Mask => {
    const d = denseMask(model.config, name);
    return { name, layers: d.layers.map((l) => ({ ...l, neurons: l.neurons.slice(0, keep) })) };
  };
  const masks = [
    { mask: mk("a@0.5", 10), kind: "task" as const, task: "a", sparsity: 0.5 },
    { mask: mk("b@0.5", 20), kind: "task" as const, task: "b", sparsity: 0.5 },
    { mask: mk("a.raw@0.5", 30), kind: "baseline" as const, task: "a.raw", sparsity: 0.5 },
    { mask: mk("generic@0.5", 40), kind: "generic" as const, task: null, sparsity: 0.5 },
    { mask: mk("flap@0.5", 50), kind: "baseline" as const, task: "flap", sparsity: 0.5 },
  ];
  // A router that ignores the feature: its biases alone make "b" the most probable of three
  // tasks, at confidence 18 / 20 = 0.9 (then 1.2 / 3.2 = 0.375, below the threshold).
  const H = model.config.hiddenSize;
  const bias = Float32Array.of(0, Math.log(18), 0); // [C]
  const cat = new MaskCatalog(model, masks, {
    tasks: ["a", "b", "c"],
    layer: 1,
    threshold: 0.5,
    mean: new Float32Array(H),
    std: new Float32Array(H).fill(1),
    weight: new Float32Array(3 * H),
    bias,
    ood: null,
  });
  const cs = catalogContenders(cat, (m) => m.layers[0].neurons.length);
  assert.deepEqual(cs.map((c) => c.label), [
    "dense",
    "flap@0.5",
    "seap-generic@0.5",
    "seap-task@0.5",
    "seap-validated@0.5",
    "seap-routed@0.5",
    "mask a@0.5",
    "mask b@0.5",
    "mask a.raw@0.5",
    "mask generic@0.5",
    "mask flap@0.5",
  ]);
  const by = Object.fromEntries(cs.map((c) => [c.label, c.pick]));
  const name = (p: unknown) => (p as { mask: { name: string } } | null)?.mask.name ?? "dense";
  const task = by["seap-task@0.5"], val = by["seap-validated@0.5"];
  assert.ok(task.kind === "per-task" && val.kind === "per-task");
  assert.equal(name(task.masks.get("a")), "a.raw@0.5");
  assert.equal(task.masks.get("b"), undefined);
  assert.equal(name(task.fallback), "generic@0.5");
  assert.equal(name(val.masks.get("a")), "a@0.5");
  assert.equal(name(val.masks.get("b")), "b@0.5");
  const routed = by["seap-routed@0.5"];
  assert.ok(routed.kind === "routed");
  assert.equal(routed.layer, 1);
  assert.equal(name(routed.choose(new Float32Array(64))), "b@0.5");
  bias[1] = Math.log(1.2); // "b" at confidence 0.375, below the threshold: the generic mask
  assert.equal(name(routed.choose(new Float32Array(64))), "generic@0.5");
  // removed = the cost function's value, averaged over a contender's masks.
  const removed = Object.fromEntries(cs.map((c) => [c.label, c.removed]));
  assert.equal(removed["dense"], 0);
  assert.equal(removed["flap@0.5"], 50);
  assert.equal(removed["seap-task@0.5"], 30); // a.raw only
  assert.equal(removed["seap-validated@0.5"], 15); // (10 + 20) / 2
  assert.equal(removed["mask b@0.5"], 20);
  const fixed = by["flap@0.5"];
  assert.ok(fixed.kind === "fixed" && name(fixed.mask) === "flap@0.5");
  cat.release();
});
