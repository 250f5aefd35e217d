/**
 * Masks turned into time, per WASM weight format: decode tok/s dense vs SEAP masks and the share
 * of each mask's bytes ideal reached, on the SmolLM2-135M shape (SEAP-shaped masks at 20% and 50%)
 * and on the default model (its calibrated generic and task masks, the server's route, laid out
 * over the set's served SEAP masks as the server does (`layoutMasks`): by mask overlap, or
 * `--layout keep-frequency`). The WASM rows of
 * `deno task bench --only=decode` without the ONNX, reference and WebGPU rows, so a kernel change
 * is checked against "every mask >= 90% of its ideal, never slower than dense" in minutes.
 *
 *   deno run -A bench/mask_speed_bench.ts [--weights f32,f16,q8] [--rounds 5] [--tokens 64]
 *     [--clock cpu|wall]   (default cpu: this process's CPU time; the machine is shared)
 *     [--layout overlap|keep-frequency|both|keep-frequency,overlap]   (FFN layouts,
 *     lib/model/neuron_order.ts; several: each timed in the same rounds, in the order given;
 *     both = overlap,keep-frequency)
 * Prints the decode table (best round of each pair) and each mask's share of its ideal both as
 * best over best and as the median of per-round paired ratios (less moved by a burst of load).
 */

import { parseArgs } from "node:util";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { loadModel } from "../lib/model/model.ts";
import { layoutMasks, loadMaskSet } from "../lib/masks/mask_io.ts";
import type { NeuronOrderKind } from "../lib/model/neuron_order.ts";
import {
  type DecodeRow,
  formatDecodeTable,
  runDecodeBenchMulti,
  smollmShapedModel,
} from "./decode_bench.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      weights: { type: "string", default: "f32,f16,q8" },
      rounds: { type: "string", default: "5" },
      tokens: { type: "string", default: "64" },
      clock: { type: "string", default: "cpu" },
      layout: { type: "string", default: "overlap" },
    },
  });
  const weights = values.weights!.split(",").map((w) => parseWeightDType(w));
  const rows: DecodeRow[] = [];
  const backends = async () => {
    const b = [];
    for (const w of weights) {
      const be = await WasmBackend.create({ weightDType: w });
      if (w === "f16") console.error(`mask speed: f16 kernels: ${be.f16Path}`);
      b.push(be);
    }
    return b;
  };
  const rounds = Number(values.rounds), tokens = Number(values.tokens);
  const cpu = values.clock === "cpu";
  const layouts = (values.layout === "both" ? "overlap,keep-frequency" : values.layout!).split(",")
    .map((l) => {
      if (l !== "overlap" && l !== "keep-frequency") {
        throw new Error(`--layout: expected overlap, keep-frequency, both or a list, got "${l}"`);
      }
      return l as NeuronOrderKind;
    });
  console.error("mask speed: SmolLM2-135M shape");
  rows.push(
    ...await runDecodeBenchMulti(await smollmShapedModel(), await backends(), {
      rounds,
      tokens: Math.max(8, tokens / 4),
      cpu,
      layouts,
    }),
  );
  const model = await loadModel(DEFAULT_MODEL_DIR);
  const set = await loadMaskSet(new URL(`../masks/${model.name}`, import.meta.url).pathname, model);
  const firstTask = set.manifest.masks.find((m) => m.method === "seap")?.task;
  const timed = set.manifest.masks
    .filter((m) => m.method === "seap-generic" || (m.method === "seap" && m.task === firstTask))
    .map((m) => set.masks.get(m.name)!);
  console.error(`mask speed: ${model.name}, masks ${timed.map((m) => m.name).join(", ")}`);
  rows.push(
    ...await runDecodeBenchMulti(DEFAULT_MODEL_DIR, await backends(), {
      rounds,
      tokens,
      masks: timed,
      layoutFrom: layoutMasks(set),
      cpu,
      layouts,
    }),
  );
  console.log(formatDecodeTable(rows));
  console.log(
    `\nTimes: ${cpu ? "process CPU time" : "wall clock"}, best of ${rounds} interleaved rounds.`,
  );
  // The same masks as shares of their ideal measured two ways: best over best (the table's), and
  // the median over rounds of each round's dense/mask time ratio (the pair shares the round's load).
  console.log(
    "\n| model | backend | mask | ideal | of ideal, best / best | of ideal, paired median |",
  );
  console.log("| --- | --- | --- | ---: | ---: | ---: |");
  for (const r of rows) {
    if (r.pairedSpeedup === undefined) continue;
    const dense = rows.find((x) =>
      x.model === r.model && x.backend === r.backend && x.mask === "dense"
    )!;
    const best = r.decodeTokS / dense.decodeTokS / r.idealSpeedup;
    console.log(
      `| ${r.model} | ${r.backend} | ${r.mask} | ${r.idealSpeedup.toFixed(2)}x | ` +
        `${(100 * best).toFixed(0)}% | ${(100 * r.pairedSpeedup / r.idealSpeedup).toFixed(0)}% |`,
    );
  }
}
