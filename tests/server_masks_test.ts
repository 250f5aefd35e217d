/**
 * The server over a real calibrated mask set (lib/calibrate output on the tiny model): the
 * adapter maps task, generic and baseline masks and the router, and requests run them.
 */

import assert from "node:assert/strict";
import { DEFAULT_MASK_PARAMS } from "../lib/calibrate/build_masks.ts";
import { runCalibration } from "../lib/calibrate/pipeline.ts";
import { createApp } from "../lib/server/app.ts";
import { DEFAULT_CONFIG } from "../lib/server/config.ts";
import { loadEngine } from "../lib/server/engine_handle.ts";
import { post, TINY_CHAT } from "./server_helpers.ts";

function rows(): string {
  const out: string[] = [];
  const words = ["the dog barks", "a cat sleeps", "birds sing now", "fish swim deep"];
  for (let i = 0; i < 8; i++) {
    const w = words[i % 4];
    out.push(JSON.stringify({ task: "upper", text: `Upper: ${w} -> ${w.toUpperCase()}` }));
    out.push(JSON.stringify({ task: "count", text: `How many letters in ${w}? ${w.length}` }));
    out.push(JSON.stringify({ task: "general", text: `${w} and ${words[(i + 1) % 4]} ${i}` }));
  }
  return out.join("\n") + "\n";
}

Deno.test("calibrated mask set: manifest masks, router and default sparsity reach the API", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/cal.jsonl`, rows());
    await runCalibration({
      modelDir: TINY_CHAT,
      calibrationFiles: [`${dir}/cal.jsonl`],
      outDir: `${dir}/masks`,
      samplesPerTask: 8,
      maxTokens: 48,
      mask: {
        ...DEFAULT_MASK_PARAMS,
        sparsities: [0.2, 0.4],
        logistic: { m: 1, n: 1, k: 1.2, x0: 0.3 },
      },
      routerThreshold: 0.5,
      routerTestFraction: 0.25,
      seed: 1,
      progress: false,
      log: () => {},
    });
    const engine = await loadEngine({
      ...DEFAULT_CONFIG,
      modelDir: TINY_CHAT,
      masksDir: `${dir}/masks`,
      backend: "reference",
    });
    const c = engine.catalog;
    assert.equal(c.protectedLayers, 1);
    assert.deepEqual(c.sparsities, [0.2, 0.4]);
    assert.equal(c.defaultSparsity, 0.2);
    assert.ok(c.tasks.includes("upper") && c.tasks.includes("count"), `tasks ${c.tasks}`);
    const kinds = new Set(c.entries.map((e) => e.kind));
    for (const k of ["dense", "generic", "task", "baseline"]) assert.ok(kinds.has(k as never), k);
    const app = createApp(engine);
    const models = await (await app.request("/v1/models")).json();
    assert.equal(models.data[0].seap.router_threshold, 0.5);
    // every listed mask says what it removes, and removes what its name says (±1 point)
    for (const m of models.data[0].seap.masks) {
      const r = m.removed;
      for (const k of ["params", "bytes_per_token", "flops_per_token"]) {
        assert.ok(r[k] >= 0 && r[k] < 1, `${m.name} ${k} ${r[k]}`);
      }
      assert.ok(Math.abs(r.params - m.sparsity) <= 0.01, `${m.name}: removes ${r.params}`);
    }
    // the default sparsity's generic mask removes 20% of decoder parameters
    const g = models.data[0].seap.masks.find((m: { name: string }) => m.name === "generic@0.2");
    assert.ok(Math.abs(g.removed.params - 0.2) <= 0.01);
    for (
      const [mask, want] of [
        ["upper", "upper@0.2"],
        ["upper.raw", "upper.raw@0.2"],
        ["generic", "generic@0.2"],
        ["flap", "flap@0.2"],
      ]
    ) {
      const r = await post(app, "/v1/completions", {
        model: engine.modelId,
        prompt: "Upper: a cat ->",
        max_tokens: 3,
        seap: { mask },
      });
      assert.equal(r.status, 200, mask);
      assert.equal(r.headers.get("x-seap-mask"), want);
    }
    const r = await post(app, "/v1/chat/completions", {
      model: engine.modelId,
      messages: [{ role: "user", content: "Upper: the dog barks ->" }],
      max_tokens: 3,
      seap: { sparsity: 0.4 },
    });
    const j = await r.json();
    assert.ok(["auto", "fallback"].includes(j.seap.selection));
    assert.ok(["upper", "count", "general"].includes(j.seap.task), j.seap.task);
    assert.ok(j.seap.mask.endsWith("@0.4"));
    if (j.seap.selection === "auto") assert.equal(j.seap.mask, `${j.seap.task}@0.4`);
    else assert.equal(j.seap.mask, "generic@0.4");
    // The mask-overlap FFN layout (default) serves the same answers as the identity layout.
    assert.ok(engine.model.neuronOrder, "mask-overlap order not applied");
    const plain = await loadEngine({
      ...DEFAULT_CONFIG,
      modelDir: TINY_CHAT,
      masksDir: `${dir}/masks`,
      backend: "reference",
      neuronOrder: "identity",
    });
    assert.equal(plain.model.neuronOrder, null);
    const plainApp = createApp(plain);
    for (const mask of ["upper", "count", "generic", "dense", "auto"]) {
      const body = {
        model: engine.modelId,
        prompt: "How many letters in a cat sleeps?",
        max_tokens: 8,
        temperature: 0,
        seap: { mask, sparsity: 0.4 },
      };
      if (mask === "dense") delete (body.seap as { sparsity?: number }).sparsity;
      const a = await (await post(app, "/v1/completions", body)).json();
      const b = await (await post(plainApp, "/v1/completions", body)).json();
      assert.equal(a.choices[0].text, b.choices[0].text, mask);
      assert.equal(a.seap.mask, b.seap.mask);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
