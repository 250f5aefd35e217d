/**
 * Decode profile: time share per backend op of a decode step on the WASM backend, per weight
 * format (every op call is timed with performance.now, so the shares include each call's JS
 * overhead; the total is also given untimed for comparison). Tells where a decode step's time
 * goes when the kernels alone (bench/kernel_bench.ts) are faster than the whole step.
 *
 *   deno run -A bench/decode_profile.ts [--model DIR] [--weights f32,f16,q8] [--tokens 16]
 *     [--mask 0.5 | NAME]   (a mask of the model's calibrated set by name, e.g. reverse@0.5, or
 *     for a model without one a SEAP-shaped mask at that share removed; default dense) [--prompt 32]
 * Also prints the prefill of the prompt: its time and its four largest ops.
 */

import { parseArgs } from "node:util";
import { WasmBackend } from "../lib/backends/wasm.ts";
import type { WeightDType } from "../lib/backends/backend.ts";
import { loadModel, readConfig } from "../lib/model/model.ts";
import { denseFor, prepareMask } from "../lib/model/prepared_mask.ts";
import { maskOverlapOrder } from "../lib/model/neuron_order.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { seapShapedFamily, seapShapedMask, smollmShapedModel } from "./decode_bench.ts";
import { layoutMasks, loadMaskSet } from "../lib/masks/mask_io.ts";

const OPS = [
  "embed",
  "rmsNorm",
  "matmul",
  "matmulTAdd",
  "ffn",
  "siluMul",
  "rope",
  "attention",
  "add",
  "addRow",
  "kvWrite",
  "copyRows",
  "read",
  "write",
  "tensor",
  "free",
] as const;

/**
 * What one timed call adds to the time it records (ms): the two clock reads of the wrapper
 * around an empty function, best of a few batches. About 0.15 µs here, the cost of a small op
 * itself, so it is subtracted from every op's total (the rest of the wrapper's cost lands in
 * "outside ops").
 */
function timerBiasMs(): number {
  const f = () => {};
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    let ms = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      f();
      ms += performance.now() - t0;
    }
    best = Math.min(best, ms / n);
  }
  return best;
}

/** Wrap the backend's op methods with timers; returns the per-op totals (ms) and call counts. */
function instrument(b: WasmBackend): Map<string, { ms: number; n: number }> {
  const acc = new Map<string, { ms: number; n: number }>();
  const rec = b as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const op of OPS) {
    const f = rec[op];
    if (typeof f !== "function") continue;
    const slot = { ms: 0, n: 0 };
    acc.set(op, slot);
    rec[op] = function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      const r = f.apply(b, args);
      slot.ms += performance.now() - t0;
      slot.n++;
      return r;
    };
  }
  return acc;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      weights: { type: "string", default: "f32,f16,q8" },
      tokens: { type: "string", default: "16" },
      mask: { type: "string" },
      prompt: { type: "string", default: "32" },
    },
  });
  const dir = values.model ?? await smollmShapedModel();
  const { config: cfg } = await readConfig(dir);
  const steps = Number(values.tokens);
  const ids = Int32Array.from({ length: Number(values.prompt) }, (_, i) => 2 + (i * 31) % 200);
  const prefillRows: string[] = [];
  console.log(`decode profile: ${dir}, ${steps} tokens, mask ${values.mask ?? "dense"}\n`);
  console.log("| format | op | calls/token | ms/token | share |");
  console.log("| --- | --- | ---: | ---: | ---: |");
  for (const w of values.weights!.split(",") as WeightDType[]) {
    const backend = await WasmBackend.create({ weightDType: w });
    if (w === "f16") console.log(`f16 kernels: ${backend.f16Path}\n`);
    // The model's calibrated mask set when it has one (laid out by mask overlap over it, as the
    // server does; --mask names one of its masks), else SEAP-shaped masks (--mask = share).
    const ident = await loadModel(dir);
    const set = await loadMaskSet(
      new URL(`../masks/${ident.name}`, import.meta.url).pathname,
      ident,
    ).catch(() => null);
    const family = set ? layoutMasks(set) : seapShapedFamily(cfg, [0.2, 0.5]);
    const model = await loadModel(dir, {
      backend,
      neuronOrder: maskOverlapOrder(family, cfg.numLayers, cfg.intermediateSize),
    });
    const chosen = !values.mask
      ? null
      : set
      ? set.masks.get(values.mask)
      : seapShapedMask(cfg, Number(values.mask), 0);
    if (values.mask && !chosen) {
      throw new Error(`--mask ${values.mask}: not in the model's mask set`);
    }
    const mask = chosen ? prepareMask(model, chosen) : denseFor(model);
    const run = async () => {
      const seq = new Sequence(model, { mask, maxTokens: ids.length + steps + 1 });
      let logits = await seq.prefill(ids);
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) {
        let tok = 0;
        for (let j = 1; j < logits.length; j++) if (logits[j] > logits[tok]) tok = j;
        logits = await seq.decode(tok);
      }
      const ms = performance.now() - t0;
      seq.free();
      return ms;
    };
    await run();
    const plain = Math.min(await run(), await run());
    const acc = instrument(backend);
    for (const v of acc.values()) v.ms = v.n = 0;
    // Prefill is not instrumented separately: count decode only by resetting after it.
    const seq = new Sequence(model, { mask, maxTokens: ids.length + steps + 1 });
    const tp = performance.now();
    let logits = await seq.prefill(ids);
    const prefillMs = performance.now() - tp;
    const pre = [...acc].map(([op, v]) => [op, v.ms] as const).filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1]);
    prefillRows.push(
      `| ${w} | ${ids.length} | ${prefillMs.toFixed(1)} | ` +
        pre.slice(0, 4).map(([op, ms]) => `${op} ${(100 * ms / prefillMs).toFixed(0)}%`).join(
          ", ",
        ) +
        " |",
    );
    for (const v of acc.values()) v.ms = v.n = 0;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      let tok = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[tok]) tok = j;
      logits = await seq.decode(tok);
    }
    const total = performance.now() - t0;
    seq.free();
    const bias = timerBiasMs();
    for (const v of acc.values()) v.ms = Math.max(0, v.ms - v.n * bias);
    let sum = 0;
    for (const [op, v] of [...acc].sort((a, b) => b[1].ms - a[1].ms)) {
      if (v.n === 0) continue;
      sum += v.ms;
      console.log(
        `| ${w} | ${op} | ${(v.n / steps).toFixed(0)} | ${(v.ms / steps).toFixed(3)} | ` +
          `${(100 * v.ms / total).toFixed(1)}% |`,
      );
    }
    console.log(
      `| ${w} | outside ops (JS, sampling) | | ${((total - sum) / steps).toFixed(3)} | ` +
        `${(100 * (total - sum) / total).toFixed(1)}% |`,
    );
    console.log(
      `| ${w} | **step, timed / untimed** | | ${(total / steps).toFixed(3)} / ` +
        `${(plain / steps).toFixed(3)} | |`,
    );
  }
  console.log(
    "\nEach op's time has the timer's own cost per call (two clock reads, measured) taken out.",
  );
  console.log("\n| format | prompt tokens | prefill ms | largest ops (share of prefill) |");
  console.log("| --- | ---: | ---: | --- |");
  for (const r of prefillRows) console.log(r);
}
