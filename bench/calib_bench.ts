/**
 * Calibration cost bench (`deno task bench --only=calib`, not run by the tests; issue 14,
 * "Calibration at any size"): the statistics pass of lib/calibrate/collect_stats.ts against a
 * plain dense prefill of the same tokens, on the same backend and weight format, in one
 * process per shape and format, rounds alternating which runs first. The ratio is the cost of
 * calibrating over serving the same tokens (the target is ≤ 1.5). Models are random weights
 * in real shapes (tools/make_random_model.ts presets), or `--model DIR`.
 *
 *   deno run -A bench/calib_bench.ts [--shapes smollm2-135m,llama-3.2-1b] [--model DIR]
 *     [--formats f16,q8] [--backend wasm|webgpu] [--samples 8] [--max-tokens 64] [--rounds 2]
 *     [--dir DIR]
 */

import { runChildJson } from "./child_json.ts";
import { parseArgs } from "node:util";
import { type BackendChoice, parseWeightDType } from "../lib/backends/select_backend.ts";
import { selectBackend } from "../lib/backends/select_backend.ts";
import { collectStats, encodeSample } from "../lib/calibrate/collect_stats.ts";
import {
  type CalibrationSample,
  parseCalibrationJsonl,
} from "../lib/calibrate/calibration_data.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { PRESETS } from "../tools/make_random_model.ts";
import { ensureModel } from "./scale_bench.ts";

/** One shape, backend and format, measured. */
export interface CalibRow {
  shape: string;
  backend: string;
  format: string;
  /** Set when it could not be measured. */
  skipped?: string;
  samples?: number;
  tokens?: number;
  /** Seconds of every round's dense pass and calibration pass over the same tokens. */
  denseSeconds?: number[];
  calibSeconds?: number[];
}

/** Options of {@link runCalibBench}. */
export interface CalibOptions {
  shapes: string[];
  /** A model folder instead of random shapes. */
  model?: string;
  formats: string[];
  backend: BackendChoice;
  samples: number;
  maxTokens: number;
  rounds: number;
  dir?: string;
}

/** The first `n` rows of the default model's calibration set, grouped by task. */
async function benchSamples(n: number): Promise<Map<string, CalibrationSample[]>> {
  const all = parseCalibrationJsonl(
    await Deno.readTextFile(`${DEFAULT_MODEL_DIR}/calibration.jsonl`),
    "calibration.jsonl",
  );
  // Every task in turn, so the samples span the set's tasks and lengths.
  const byTask = new Map<string, CalibrationSample[]>();
  for (const s of all) byTask.set(s.task, [...byTask.get(s.task) ?? [], s]);
  const groups = new Map<string, CalibrationSample[]>();
  for (let i = 0, k = 0; k < n && i < all.length; i++) {
    for (const [task, rows] of byTask) {
      if (k >= n || i >= rows.length) continue;
      groups.set(task, [...groups.get(task) ?? [], rows[i]]);
      k++;
    }
  }
  return groups;
}

/** Seconds of a plain dense prefill of every sample's tokens (what serving them costs). */
async function densePass(model: Model, ids: Int32Array[]): Promise<number> {
  const t0 = performance.now();
  for (const x of ids) {
    const seq = new Sequence(model, { maxTokens: x.length });
    try {
      await seq.prefill(x);
    } finally {
      seq.free();
    }
  }
  return (performance.now() - t0) / 1000;
}

/** Measure one model folder in one backend and format in this process (the child's job). */
async function measureHere(
  dir: string,
  format: string,
  o: CalibOptions,
): Promise<Omit<CalibRow, "shape">> {
  const be = await selectBackend(o.backend, { weightDType: parseWeightDType(format) });
  const model = await loadModel(dir, { backend: be });
  const tok = await Tokenizer.load(dir);
  const groups = await benchSamples(o.samples);
  const ids = [...groups.values()].flat().map((s) => encodeSample(tok, s.text, o.maxTokens));
  const tokens = ids.reduce((a, x) => a + x.length, 0);
  await densePass(model, ids.slice(0, 1)); // warm-up: kernels, pools, shaders
  const denseSeconds: number[] = [];
  const calibSeconds: number[] = [];
  const calib = async () => {
    const t0 = performance.now();
    await collectStats(model, tok, groups, {
      maxTokens: o.maxTokens,
      routerLayer: 1,
      progress: false,
    });
    return (performance.now() - t0) / 1000;
  };
  for (let r = 0; r < o.rounds; r++) {
    // Alternate which pass runs first, so drift (other load, heat) falls on both.
    if (r % 2 === 0) {
      denseSeconds.push(await densePass(model, ids));
      calibSeconds.push(await calib());
    } else {
      calibSeconds.push(await calib());
      denseSeconds.push(await densePass(model, ids));
    }
    console.error(
      `calib: ${format} round ${r + 1}: dense ${denseSeconds.at(-1)!.toFixed(2)} s, ` +
        `calibration ${calibSeconds.at(-1)!.toFixed(2)} s over ${tokens} tokens`,
    );
  }
  return { backend: be.name, format, samples: ids.length, tokens, denseSeconds, calibSeconds };
}

/** {@link measureHere} in a fresh process (so each model's memory is its own). */
async function measureInChild(
  dir: string,
  format: string,
  o: CalibOptions,
): Promise<Omit<CalibRow, "shape">> {
  const r = await runChildJson<Omit<CalibRow, "shape">>(new URL(import.meta.url), [
    dir,
    "--formats",
    format,
    "--backend",
    o.backend,
    "--samples",
    String(o.samples),
    "--max-tokens",
    String(o.maxTokens),
    "--rounds",
    String(o.rounds),
  ]);
  return r.ok ? r.value : { backend: o.backend, format, skipped: r.reason };
}

/** Measure every shape (or `model`) × format. */
export async function runCalibBench(o: CalibOptions): Promise<CalibRow[]> {
  for (const f of o.formats) parseWeightDType(f);
  for (const s of o.model ? [] : o.shapes) {
    if (!PRESETS[s]) {
      throw new Error(`calib: unknown shape "${s}" (known: ${Object.keys(PRESETS).join(", ")})`);
    }
  }
  const root = o.dir ?? await Deno.makeTempDir({ prefix: "seap_calib_" });
  const rows: CalibRow[] = [];
  try {
    const targets = o.model ? [[o.model, o.model]] : o.shapes.map((s) => [s, ""]);
    for (const [shape, given] of targets) {
      const dir = given || await ensureModel(root, shape);
      for (const format of o.formats) {
        console.error(`calib: ${shape} ${o.backend} ${format}: measuring in a fresh process ...`);
        rows.push({ shape, ...await measureInChild(dir, format, o) });
      }
    }
  } finally {
    if (!o.dir) await Deno.remove(root, { recursive: true });
  }
  return rows;
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

/** Markdown table of {@link runCalibBench}'s rows. */
export function formatCalibTable(rows: CalibRow[]): string {
  const out = [
    "| shape | backend | format | samples | tokens | dense prefill tok/s | calibration tok/s | " +
    "calibration / dense |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    if (r.skipped) {
      out.push(`| ${r.shape} | ${r.backend} | ${r.format} | ${r.skipped} | | | | |`);
      continue;
    }
    const d = sum(r.denseSeconds!), c = sum(r.calibSeconds!);
    const n = r.tokens! * r.denseSeconds!.length;
    const per = r.calibSeconds!.map((s, i) => (s / r.denseSeconds![i]).toFixed(2)).join(", ");
    out.push(
      `| ${r.shape} | ${r.backend} | ${r.format} | ${r.samples} | ${r.tokens} | ` +
        `${(n / d).toFixed(1)} | ${(n / c).toFixed(1)} | **${(c / d).toFixed(2)}** (${per}) |`,
    );
  }
  return out.join("\n");
}

/** Parse the calibration bench's flags (shared by bench/bench.ts and this file run alone). */
export function parseCalibArgs(args: string[]): CalibOptions & { child?: string } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: false,
    options: {
      shapes: { type: "string", default: "smollm2-135m,llama-3.2-1b" },
      model: { type: "string" },
      formats: { type: "string", default: "f16" },
      backend: { type: "string", default: "wasm" },
      samples: { type: "string", default: "8" },
      "max-tokens": { type: "string", default: "64" },
      rounds: { type: "string", default: "2" },
      dir: { type: "string" },
      child: { type: "boolean" },
    },
  });
  const int = (name: string, min: number) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`calib: --${name} must be an integer ≥ ${min}, got ${values[name]}`);
    }
    return n;
  };
  const backend = String(values.backend);
  if (!["wasm", "webgpu", "reference", "auto"].includes(backend)) {
    throw new Error(`calib: --backend wasm, webgpu, reference or auto, got "${backend}"`);
  }
  return {
    shapes: String(values.shapes).split(","),
    model: values.model as string | undefined,
    formats: String(values.formats).split(","),
    backend: backend as BackendChoice,
    samples: int("samples", 1),
    maxTokens: int("max-tokens", 2),
    rounds: int("rounds", 1),
    dir: values.dir as string | undefined,
    child: values.child ? positionals[0] : undefined,
  };
}

if (import.meta.main) {
  const o = parseCalibArgs(Deno.args);
  if (o.child) {
    console.log(JSON.stringify(await measureHere(o.child, o.formats[0], o)));
  } else {
    console.log(formatCalibTable(await runCalibBench(o)));
  }
}
