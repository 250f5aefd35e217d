/**
 * Mask resolution (lib/masks/resolve.ts) on the fixture catalog, without the server: forced
 * names, the routed plan and its decision checked against the router's argmax computed here
 * from its weights, and the domain errors (no HTTP status) for what a request gets wrong,
 * raised by the plan, before any work would be queued.
 */

import assert from "node:assert/strict";
import { MaskRequestConflictError, UnknownMaskError } from "../lib/masks/errors.ts";
import { decideRouted, planMask } from "../lib/masks/resolve.ts";
import { FIXTURE_TASKS, tinyEngine } from "./server_helpers.ts";

Deno.test("mask resolution: forced, routed by the router's argmax, and domain errors", async () => {
  const { catalog } = await tinyEngine({ threshold: 0 });
  const fixed = (req: { mask?: string; sparsity?: number }) => {
    const p = planMask(catalog, req);
    assert.equal(p.kind, "fixed", JSON.stringify(req));
    return p.kind === "fixed" ? p.choice.info : null;
  };
  assert.deepEqual(fixed({ mask: "dense" }), {
    mask: "dense",
    task: null,
    confidence: null,
    sparsity: 0,
    selection: "forced",
  });
  assert.equal(fixed({ mask: "beta" })!.mask, "beta@0.5"); // the default sparsity
  assert.equal(fixed({ mask: "beta", sparsity: 0.25 })!.mask, "beta@0.25");
  assert.equal(fixed({ mask: "gamma@0.25" })!.task, "gamma");
  assert.equal(fixed({ mask: "generic" })!.mask, "generic@0.5");

  const plan = planMask(catalog, { sparsity: 0.25 });
  assert.ok(plan.kind === "routed");
  assert.equal(plan.layer, 2);
  // The router's own decision, computed here: argmax over tasks of W·f (raw features).
  const r = catalog.router!;
  const H = r.mean.length;
  for (let seed = 1; seed <= 5; seed++) {
    const f = Float32Array.from({ length: H }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
    const logits = FIXTURE_TASKS.map((_, c) => {
      let s = 0;
      for (let h = 0; h < H; h++) s += r.weight[c * H + h] * f[h];
      return s;
    });
    const best = logits.indexOf(Math.max(...logits));
    const choice = decideRouted(catalog, plan, f);
    assert.equal(choice.info.task, FIXTURE_TASKS[best]);
    assert.equal(choice.info.mask, `${FIXTURE_TASKS[best]}@0.25`);
    assert.equal(choice.info.selection, "auto");
    const z = logits.map((l) => Math.exp(l - logits[best]));
    const conf = 1 / z.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(choice.info.confidence! - conf) < 1e-5, `${choice.info.confidence} ${conf}`);
  }

  const refused = (
    req: { mask?: string; sparsity?: number },
    type: typeof UnknownMaskError | typeof MaskRequestConflictError,
    field: string,
  ) => {
    assert.throws(() => planMask(catalog, req), (e: unknown) => {
      assert.ok(e instanceof type, `${JSON.stringify(req)}: ${e}`);
      assert.equal((e as UnknownMaskError).field, field);
      assert.equal("status" in (e as object), false); // no HTTP notion in the domain
      return true;
    });
  };
  refused({ mask: "nope" }, UnknownMaskError, "mask");
  refused({ sparsity: 0.9 }, UnknownMaskError, "sparsity"); // "auto": refused before routing
  refused({ mask: "dense", sparsity: 0.5 }, UnknownMaskError, "sparsity");
  refused({ mask: "beta@0.5", sparsity: 0.25 }, MaskRequestConflictError, "sparsity");
});
