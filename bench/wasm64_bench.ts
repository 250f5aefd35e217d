/**
 * What memory64 costs the kernels: the engine's decode and prefill on the wasm32 and the wasm64
 * (memory64) kernel builds side by side, per weight format, on the SmolLM2-135M shape (random
 * weights), dense and under a SEAP-shaped 50% mask. Every (build, format, mask) triple runs in
 * the same interleaved rounds (bench/decode_bench.ts), so the ratios share the machine's noise.
 * The wasm64 backend is forced on a small model (`addressBits: 64`); its addresses stay below
 * 4 GiB here, which is what the kernels' speed depends on (the i64 address arithmetic and V8's
 * bounds checks), not where the bytes are. `deno task bench --only=wasm64`, or alone:
 *
 *   deno run -A bench/wasm64_bench.ts [--weights f32,f16,q8] [--tokens 32] [--rounds 5]
 */

import { parseArgs } from "node:util";
import type { WeightDType } from "../lib/backends/backend.ts";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { readConfig } from "../lib/model/model.ts";
import {
  type DecodeRow,
  runDecodeBenchMulti,
  seapShapedMask,
  smollmShapedModel,
} from "./decode_bench.ts";

/** One format's wasm32 and wasm64 rows for one mask, and their ratio. */
export interface Wasm64Row {
  weights: WeightDType;
  mask: string;
  decode32: number;
  decode64: number;
  prefill32: number;
  prefill64: number;
}

/** Options of {@link runWasm64Bench}. */
export interface Wasm64Options {
  weights: WeightDType[];
  tokens: number;
  rounds: number;
  /** Model folder (default: the SmolLM2-135M-shaped random model). */
  dir?: string;
}

/** Measure wasm32 against wasm64 for every weight format, all in the same rounds. */
export async function runWasm64Bench(opts: Wasm64Options): Promise<Wasm64Row[]> {
  const dir = opts.dir ?? await smollmShapedModel();
  const { config } = await readConfig(dir);
  const backends = [];
  for (const weightDType of opts.weights) {
    for (const addressBits of [32, 64] as const) {
      backends.push(await WasmBackend.create({ weightDType, addressBits }));
    }
  }
  const masks = [seapShapedMask(config, 0.5, 0)];
  // Rows come out per backend, then per mask (dense first): backend b = 2 * format + (64-bit).
  const rows: DecodeRow[] = await runDecodeBenchMulti(dir, backends, {
    tokens: opts.tokens,
    promptLen: 32,
    rounds: opts.rounds,
    masks,
  });
  const perBackend = masks.length + 1;
  const out: Wasm64Row[] = [];
  for (const [f, weights] of opts.weights.entries()) {
    for (let m = 0; m < perBackend; m++) {
      const a = rows[(2 * f) * perBackend + m], b = rows[(2 * f + 1) * perBackend + m];
      out.push({
        weights,
        mask: a.mask,
        decode32: a.decodeTokS,
        decode64: b.decodeTokS,
        prefill32: a.prefillTokS,
        prefill64: b.prefillTokS,
      });
    }
  }
  return out;
}

/** Markdown table of {@link runWasm64Bench}'s rows (ratio = wasm64 / wasm32). */
export function formatWasm64Table(rows: Wasm64Row[]): string {
  const out = [
    "| weights | mask | decode tok/s wasm32 | wasm64 | ratio | prefill tok/s wasm32 | wasm64 | " +
    "ratio |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.weights} | ${r.mask} | ${r.decode32.toFixed(1)} | ${r.decode64.toFixed(1)} | ` +
        `${(r.decode64 / r.decode32).toFixed(2)} | ${r.prefill32.toFixed(1)} | ` +
        `${r.prefill64.toFixed(1)} | ${(r.prefill64 / r.prefill32).toFixed(2)} |`,
    );
  }
  return out.join("\n");
}

/** Parse this bench's flags (shared with bench/bench.ts). */
export function parseWasm64Args(args: string[]): Wasm64Options {
  const { values } = parseArgs({
    args,
    strict: false,
    options: {
      weights: { type: "string", default: "f32,f16,q8" },
      tokens: { type: "string", default: "32" },
      rounds: { type: "string", default: "5" },
      dir: { type: "string" },
    },
  });
  const int = (name: string) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`wasm64 bench: --${name} must be a positive integer, got ${values[name]}`);
    }
    return n;
  };
  return {
    weights: String(values.weights).split(",").map((w) => parseWeightDType(w)),
    tokens: int("tokens"),
    rounds: int("rounds"),
    dir: values.dir as string | undefined,
  };
}

if (import.meta.main) {
  console.log(formatWasm64Table(await runWasm64Bench(parseWasm64Args(Deno.args))));
}
