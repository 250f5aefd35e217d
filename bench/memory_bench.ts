/**
 * Resident memory of a loaded model with 1 and with 10 masks prepared: masks hold index lists
 * and bias vectors only, never weights, so ten of them should cost almost nothing.
 */

import type { Backend } from "../lib/backends/backend.ts";
import { loadModel } from "../lib/model/model.ts";
import { type PreparedMask, prepareMask } from "../lib/model/prepared_mask.ts";
import { seapShapedMask } from "./decode_bench.ts";

/** One measurement. */
export interface MemoryRow {
  model: string;
  backend: string;
  /** RSS in MB after loading the model and preparing one mask. */
  rss1: number;
  /** RSS in MB after preparing ten masks. */
  rss10: number;
  /** Weight bytes of the model (MB, fp32). */
  weightsMb: number;
}

function rssMb(): number {
  return Deno.memoryUsage().rss / 1e6;
}

/** Load `dir` on `backend`, prepare 1 then 10 masks (with bias vectors), measure RSS. */
export async function runMemoryBench(dir: string, backend: Backend): Promise<MemoryRow> {
  const model = await loadModel(dir, { backend });
  const H = model.config.hiddenSize;
  const withBias = (seed: number) => {
    const m = seapShapedMask(model.config, 0.5, seed);
    for (const l of m.layers) {
      l.biasAttn = new Float32Array(H).fill(0.01);
      l.biasFfn = new Float32Array(H).fill(0.01);
    }
    return m;
  };
  const held: PreparedMask[] = [prepareMask(model, withBias(1))];
  await new Promise((r) => setTimeout(r, 50));
  const rss1 = rssMb();
  for (let i = 2; i <= 10; i++) held.push(prepareMask(model, withBias(i)));
  await new Promise((r) => setTimeout(r, 50));
  const rss10 = rssMb();
  held.forEach((p) => p.release());
  return {
    model: model.name,
    backend: `${backend.name}-${backend.weightDType}`,
    rss1,
    rss10,
    weightsMb: model.denseWeightBytes / 1e6,
  };
}

/** Markdown table of memory rows. */
export function formatMemoryTable(rows: MemoryRow[]): string {
  return [
    "| model | backend | weights (fp32 MB) | RSS, 1 mask (MB) | RSS, 10 masks (MB) | added by 9 more masks |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.model} | ${r.backend} | ${r.weightsMb.toFixed(1)} | ${r.rss1.toFixed(1)} | ` +
      `${r.rss10.toFixed(1)} | ${(100 * (r.rss10 - r.rss1) / r.rss1).toFixed(2)}% |`
    ),
  ].join("\n");
}

if (import.meta.main) {
  // Run alone (fresh process, clean RSS): memory_bench.ts DIR BACKEND -> one JSON line.
  const { selectBackend } = await import("../lib/backends/select_backend.ts");
  const [dir, choice = "wasm"] = Deno.args;
  const backend = await selectBackend(choice as "wasm");
  console.log(JSON.stringify(await runMemoryBench(dir, backend)));
}
