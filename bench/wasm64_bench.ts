/**
 * What memory64 costs the kernels: the engine's decode and prefill on the wasm32 and the wasm64
 * (memory64) kernel builds side by side, per weight format, on the SmolLM2-135M shape (random
 * weights), dense and under a SEAP-shaped 50% mask. Every (build, format, mask) triple runs in
 * the same interleaved rounds (bench/decode_bench.ts), so the ratios share the machine's noise.
 * The wasm64 backend is forced on a small model (`addressBits: 64`); its addresses stay below
 * 4 GiB here, which is what the kernels' speed depends on (the i64 address arithmetic and V8's
 * bounds checks), not where the bytes are. `deno task bench --only=wasm64`, or alone:
 *
 *   deno run -A --v8-flags=--experimental-wasm-fp16 bench/wasm64_bench.ts [--weights f32,f16,q8]
 *     [--tokens 32] [--rounds 5] [--f16-paths fp16-simd,bit-trick]
 *
 * f16 runs on the conversion the backend picks (half-precision SIMD with the V8 flag, else the
 * portable bit tricks); `--f16-paths fp16-simd,bit-trick` runs f16 on each, in the same rounds,
 * and adds their ratio per build.
 */

import { parseArgs } from "node:util";
import type { WeightDType } from "../lib/backends/backend.ts";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import type { F16Path } from "../lib/backends/wasm_kernels.ts";
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
  /** How the kernels converted f16 (both builds ran the same one; "bit-trick" for f32/q8). */
  f16Path: F16Path;
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
  /** f16 on each of these conversions (default: the one the backend picks). */
  f16Paths?: F16Path[];
}

/** Measure wasm32 against wasm64 for every weight format, all in the same rounds. */
export async function runWasm64Bench(opts: Wasm64Options): Promise<Wasm64Row[]> {
  const dir = opts.dir ?? await smollmShapedModel();
  const { config } = await readConfig(dir);
  // One variant per format, f16 once per requested conversion.
  const variants: { weights: WeightDType; fp16Simd?: boolean }[] = opts.weights.flatMap((w) =>
    w === "f16" && opts.f16Paths
      ? opts.f16Paths.map((p) => ({ weights: w, fp16Simd: p === "fp16-simd" }))
      : [{ weights: w }]
  );
  const backends = [];
  for (const v of variants) {
    for (const addressBits of [32, 64] as const) {
      backends.push(
        await WasmBackend.create({ weightDType: v.weights, addressBits, fp16Simd: v.fp16Simd }),
      );
    }
  }
  const masks = [seapShapedMask(config, 0.5, 0)];
  // Rows come out per backend, then per mask (dense first): backend b = 2 * variant + (64-bit).
  const rows: DecodeRow[] = await runDecodeBenchMulti(dir, backends, {
    tokens: opts.tokens,
    promptLen: 32,
    rounds: opts.rounds,
    masks,
  });
  const perBackend = masks.length + 1;
  const out: Wasm64Row[] = [];
  for (const [f, { weights }] of variants.entries()) {
    for (let m = 0; m < perBackend; m++) {
      const a = rows[(2 * f) * perBackend + m], b = rows[(2 * f + 1) * perBackend + m];
      out.push({
        weights,
        f16Path: backends[2 * f].f16Path,
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

/**
 * Markdown table of {@link runWasm64Bench}'s rows (ratio = wasm64 / wasm32); where f16 ran on
 * both conversions, a line per mask with fp16-simd / bit-trick on each build.
 */
export function formatWasm64Table(rows: Wasm64Row[]): string {
  const out = [
    "| weights | mask | decode tok/s wasm32 | wasm64 | ratio | prefill tok/s wasm32 | wasm64 | " +
    "ratio |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const label = (r: Wasm64Row) => r.weights === "f16" ? `f16 (${r.f16Path})` : r.weights;
  for (const r of rows) {
    out.push(
      `| ${label(r)} | ${r.mask} | ${r.decode32.toFixed(1)} | ${r.decode64.toFixed(1)} | ` +
        `${(r.decode64 / r.decode32).toFixed(2)} | ${r.prefill32.toFixed(1)} | ` +
        `${r.prefill64.toFixed(1)} | ${(r.prefill64 / r.prefill32).toFixed(2)} |`,
    );
  }
  const lines: string[] = [];
  for (const s of rows.filter((r) => r.weights === "f16" && r.f16Path === "fp16-simd")) {
    const b = rows.find((r) =>
      r.weights === "f16" && r.f16Path === "bit-trick" && r.mask === s.mask
    );
    if (!b) continue;
    const x = (a: number, c: number) => `${(a / c).toFixed(2)}x`;
    lines.push(
      `- f16 ${s.mask}, fp16-simd / bit-trick: decode wasm32 ${x(s.decode32, b.decode32)}, ` +
        `wasm64 ${x(s.decode64, b.decode64)}; prefill wasm32 ${x(s.prefill32, b.prefill32)}, ` +
        `wasm64 ${x(s.prefill64, b.prefill64)}`,
    );
  }
  return [out.join("\n"), ...(lines.length ? ["", ...lines] : [])].join("\n");
}

/** Parse `--f16-paths` (comma-separated fp16-simd / bit-trick); undefined when not given. */
export function parseF16Paths(v: unknown): F16Path[] | undefined {
  if (v === undefined) return undefined;
  const paths = String(v).split(",");
  for (const p of paths) {
    if (p !== "fp16-simd" && p !== "bit-trick") {
      throw new Error(`--f16-paths: expected fp16-simd and/or bit-trick, got "${p}"`);
    }
  }
  return paths as F16Path[];
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
      "f16-paths": { type: "string" },
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
    f16Paths: parseF16Paths(values["f16-paths"]),
  };
}

if (import.meta.main) {
  console.log(formatWasm64Table(await runWasm64Bench(parseWasm64Args(Deno.args))));
}
