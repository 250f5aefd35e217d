/**
 * Scale benchmark (`deno task bench --only=scale`, not run by the tests): random-weight models
 * in the shapes users run (F16 safetensors written tensor by tensor, the default model's
 * tokenizer padded to the vocabulary), each weight format on the WASM backend in a fresh
 * process: load time and peak RSS (tools/load_memory.ts), prefill and decode tok/s (a short
 * prompt, a few decoded tokens), calibration tok/s (the statistics pass of
 * lib/calibrate/collect_stats.ts over a few samples of the default model's calibration set)
 * and the largest memory-safe context at concurrency 1 and 4 (lib/server/memory_fit.ts, what
 * lib/server/admission.ts advertises) in the memory the server would make (SEAP_MAX_MEMORY, else
 * by the weights' size: wasm64 past 4 GiB, lib/backends/wasm_memory.ts). A shape/format whose
 * weights exceed V8's 16 GiB memory64 ceiling gets a "does not fit" row.
 *
 *   deno run -A bench/scale_bench.ts [--shapes smollm2-135m,smollm2-360m] [--formats f32,f16,q8]
 *     [--tokens 8] [--prompt 16] [--samples 2] [--dir DIR]
 */

import { runChildJson } from "./child_json.ts";
import { parseArgs } from "node:util";
import { PRESETS, writeRandomModelF16 } from "../tools/make_random_model.ts";
import { loadMeasured, type LoadMemory } from "../tools/load_memory.ts";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { BackendMemoryError } from "../lib/backends/backend.ts";
import { WASM64_MAX_BYTES } from "../lib/backends/wasm_memory.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { collectStats } from "../lib/calibrate/collect_stats.ts";
import {
  type CalibrationSample,
  parseCalibrationJsonl,
} from "../lib/calibrate/calibration_data.ts";
import { estimateFootprint, memorySafeContext } from "../lib/server/memory_fit.ts";

/** The WASM backend's memory ceiling (one 64-bit memory in Deno 2.9's V8). */
const WASM_LIMIT = WASM64_MAX_BYTES;

/** One measured (or refused) shape and format. */
export interface ScaleRow {
  shape: string;
  format: string;
  /** Set when the shape/format could not be measured ("does not fit: …" or an error). */
  skipped?: string;
  load?: LoadMemory;
  prefillTokS?: number;
  decodeTokS?: number;
  calibTokS?: number;
  calibTokens?: number;
  context1?: number;
  context4?: number;
  /** The config's context (max_position_embeddings), which caps the two above. */
  configContext?: number;
  /** How the kernels converted f16 weights (f16 rows only). */
  f16Path?: string;
}

/** Options of {@link runScaleBench}. */
export interface ScaleOptions {
  shapes: string[];
  formats: string[];
  /** Decoded tokens per timing. */
  tokens: number;
  /** Prompt tokens of the prefill timing. */
  prompt: number;
  /** Calibration samples (of the default model's calibration set). */
  samples: number;
  /** Folder the models are written to (kept and reused when given). */
  dir?: string;
}

/** Write `shape`'s random model under `root` unless it is already there; returns its folder. */
export async function ensureModel(root: string, shape: string): Promise<string> {
  const dir = `${root}/${shape}`;
  try {
    await Deno.stat(`${dir}/tokenizer_config.json`); // written last
    return dir;
  } catch {
    // not there yet
  }
  console.error(`scale: writing a random ${shape} model (F16) to ${dir} ...`);
  const t0 = performance.now();
  let shown = 0;
  await writeRandomModelF16(dir, PRESETS[shape], DEFAULT_MODEL_DIR, 1, (done, total) => {
    if (done - shown >= 256 * 2 ** 20 || done === total) {
      shown = done;
      const m = (n: number) => (n / 2 ** 20).toFixed(0);
      console.error(`scale: ${shape} ${m(done)} / ${m(total)} MiB`);
    }
  });
  console.error(`scale: wrote ${shape} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/** Measure one model folder in one format in this process (the child's job). */
async function measureHere(
  dir: string,
  format: string,
  opts: { tokens: number; prompt: number; samples: number },
): Promise<Omit<ScaleRow, "shape">> {
  let loaded;
  try {
    loaded = await loadMeasured(dir, format);
  } catch (e) {
    if (e instanceof BackendMemoryError) return { format, skipped: `does not fit: ${e.message}` };
    throw e;
  }
  const { load, model } = loaded;
  const be = model.backend;
  const cfg = model.config;
  // Context first: memory free right after loading, as the server's admission sees it.
  const free = Math.max(0, be.memoryLimitBytes! - be.usedBytes!);
  const ctx = (c: number) =>
    memorySafeContext(cfg, { freeBytes: free, maxConcurrent: c, chunk: 64 });
  const row: Omit<ScaleRow, "shape"> = {
    format,
    load,
    context1: ctx(1),
    context4: ctx(4),
    configContext: cfg.maxPositionEmbeddings,
    ...(format === "f16" && "f16Path" in be ? { f16Path: String(be.f16Path) } : {}),
  };
  // Prefill and decode: a warm-up token, then one timed prompt and `tokens` decode steps.
  const ids = Int32Array.from({ length: opts.prompt }, (_, i) => 2 + (i * 31) % 200);
  try {
    const warm = new Sequence(model, { maxTokens: 4 });
    await warm.prefill(ids.subarray(0, 2));
    warm.free();
    console.error(`scale: ${format} timing prefill of ${opts.prompt} and ${opts.tokens} decodes`);
    const seq = new Sequence(model, { maxTokens: opts.prompt + opts.tokens + 1 });
    const t0 = performance.now();
    await seq.prefill(ids);
    const t1 = performance.now();
    for (let i = 0; i < opts.tokens; i++) await seq.decode(3 + i % 50);
    const t2 = performance.now();
    seq.free();
    row.prefillTokS = opts.prompt / ((t1 - t0) / 1000);
    row.decodeTokS = opts.tokens / ((t2 - t1) / 1000);
    // Calibration: the dense statistics pass over the first samples of the default model's set.
    if (opts.samples > 0) {
      const tok = await Tokenizer.load(dir);
      const all = parseCalibrationJsonl(
        await Deno.readTextFile(`${DEFAULT_MODEL_DIR}/calibration.jsonl`),
        "calibration.jsonl",
      );
      const groups = new Map<string, CalibrationSample[]>();
      for (const s of all.slice(0, opts.samples)) {
        groups.set(s.task, [...groups.get(s.task) ?? [], s]);
      }
      const c0 = performance.now();
      const stats = await collectStats(model, tok, groups, {
        maxTokens: 64,
        routerLayer: 1,
        progress: false,
      });
      row.calibTokens = stats.tokens;
      row.calibTokS = stats.tokens / ((performance.now() - c0) / 1000);
    }
  } catch (e) {
    if (!(e instanceof BackendMemoryError)) throw e;
    row.skipped = `does not fit: ${e.message} (after loading)`;
  }
  return row;
}

/** Run {@link measureHere} in a fresh process (so peak RSS is this load's alone). */
async function measureInChild(
  dir: string,
  format: string,
  opts: ScaleOptions,
): Promise<Omit<ScaleRow, "shape">> {
  const r = await runChildJson<Omit<ScaleRow, "shape">>(new URL(import.meta.url), [
    dir,
    "--formats",
    format,
    "--tokens",
    String(opts.tokens),
    "--prompt",
    String(opts.prompt),
    "--samples",
    String(opts.samples),
  ]);
  return r.ok ? r.value : { format, skipped: r.reason };
}

/** Measure every shape × format; models are written first (into a temp folder unless `dir`). */
export async function runScaleBench(opts: ScaleOptions): Promise<ScaleRow[]> {
  for (const s of opts.shapes) {
    if (!PRESETS[s]) {
      throw new Error(`scale: unknown shape "${s}" (known: ${Object.keys(PRESETS).join(", ")})`);
    }
  }
  for (const f of opts.formats) parseWeightDType(f);
  const root = opts.dir ?? await Deno.makeTempDir({ prefix: "seap_scale_" });
  const rows: ScaleRow[] = [];
  try {
    for (const shape of opts.shapes) {
      const p = PRESETS[shape];
      const cfg = {
        hiddenSize: p.hidden,
        intermediateSize: p.intermediate,
        numLayers: p.layers,
        numHeads: p.heads,
        numKvHeads: p.kvHeads,
        headDim: p.headDim ?? p.hidden / p.heads,
        vocabSize: p.vocab,
        tieWordEmbeddings: p.tied,
      };
      let dir: string | undefined;
      for (const format of opts.formats) {
        // Weights alone past the WASM ceiling: say so without writing or loading the model.
        const fp = estimateFootprint(cfg, {
          weights: parseWeightDType(format),
          maxConcurrent: 1,
          context: 1,
        });
        if (fp.weights >= WASM_LIMIT) {
          rows.push({
            shape,
            format,
            skipped: `does not fit: weights ${(fp.weights / 2 ** 30).toFixed(2)} GiB ≥ the ` +
              `16 GiB of V8's 64-bit WASM memory`,
          });
          console.error(`scale: ${shape} ${format}: ${rows.at(-1)!.skipped}`);
          continue;
        }
        dir ??= await ensureModel(root, shape);
        console.error(`scale: ${shape} ${format}: loading in a fresh process ...`);
        rows.push({ shape, ...await measureInChild(dir, format, opts) });
        console.error(`scale: ${shape} ${format}: ${JSON.stringify(rows.at(-1))}`);
      }
    }
  } finally {
    if (!opts.dir) await Deno.remove(root, { recursive: true });
  }
  return rows;
}

const f1 = (x: number | undefined) => x === undefined ? "" : x.toFixed(1);

/** The admitted context: memory-safe, capped at the config's (marked "cfg" when that binds). */
function admitted(memory: number | undefined, config: number | undefined): string {
  if (memory === undefined) return "";
  return config !== undefined && memory > config ? `${config} (cfg)` : String(memory);
}

/** Markdown table of {@link runScaleBench}'s rows. */
export function formatScaleTable(rows: ScaleRow[]): string {
  const out = [
    "| shape | format | weights MiB | load s | peak RSS MiB | prefill tok/s | decode tok/s | " +
    "calibration tok/s | context @1 | context @4 |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    if (r.skipped && !r.load) {
      out.push(`| ${r.shape} | ${r.format} | ${r.skipped} | | | | | | | |`);
      continue;
    }
    const l = r.load!;
    out.push(
      `| ${r.shape} | ${r.format}${r.f16Path ? ` (${r.f16Path})` : ""} | ${
        (l.weightBytes / 2 ** 20).toFixed(0)
      } | ` +
        `${(l.loadMs / 1000).toFixed(1)} | ${(l.peakRss / 2 ** 20).toFixed(0)} | ` +
        `${f1(r.prefillTokS)} | ${f1(r.decodeTokS)} | ${f1(r.calibTokS)} | ` +
        `${admitted(r.context1, r.configContext)} | ${admitted(r.context4, r.configContext)} |` +
        (r.skipped ? ` ${r.skipped}` : ""),
    );
  }
  return out.join("\n");
}

/** Parse the scale flags (shared by bench/bench.ts and this file run alone). */
export function parseScaleArgs(args: string[]): ScaleOptions & { child?: string } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: false,
    options: {
      shapes: { type: "string", default: "smollm2-135m,smollm2-360m" },
      formats: { type: "string", default: "f32,f16,q8" },
      tokens: { type: "string", default: "8" },
      prompt: { type: "string", default: "16" },
      samples: { type: "string", default: "2" },
      dir: { type: "string" },
      child: { type: "boolean" },
    },
  });
  const int = (name: string, min: number) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`scale: --${name} must be an integer ≥ ${min}, got ${values[name]}`);
    }
    return n;
  };
  return {
    shapes: String(values.shapes).split(","),
    formats: String(values.formats).split(","),
    tokens: int("tokens", 1),
    prompt: int("prompt", 2),
    samples: int("samples", 0),
    dir: values.dir as string | undefined,
    child: values.child ? positionals[0] : undefined,
  };
}

if (import.meta.main) {
  const opts = parseScaleArgs(Deno.args);
  if (opts.child) {
    console.log(JSON.stringify(await measureHere(opts.child, opts.formats[0], opts)));
  } else {
    console.log(formatScaleTable(await runScaleBench(opts)));
  }
}
