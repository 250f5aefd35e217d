/**
 * Out-of-distribution prompts for the router: the suite's own generated chat requests
 * (lib/tasks/ood_prompts.ts) and, optionally, the questions and texts of benchmark JSONL
 * files (the row shapes of the paper's sets: multiple choice, WinoGrande, GSM8K, plain text)
 * turned into chat prompts. Nothing here is needed to build or serve; benchmark files are
 * read only when named.
 */

import type { Model } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import { renderPrompt } from "../tasks/chat_format.ts";
import { hash32 } from "../tasks/rng.ts";
import { oodPrompts } from "../tasks/ood_prompts.ts";
import type { OodSplit } from "../tasks/ood_templates.ts";
import { rng } from "../util/seeded_rng.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { CalibrationDataError } from "./calibration_data.ts";
import { encodeSample } from "./collect_stats.ts";

/** One out-of-distribution prompt, chat-rendered. */
export interface OodSample {
  /** Rendered prompt ending with the assistant header (what the server routes on). */
  context: string;
  /** "train" prompts may fit the detector; "held-out" ones only test it. */
  split: OodSplit;
  /** Where it came from: a template id ("writing.poem") or "file.jsonl:12". */
  source: string;
  /** Group for reporting: a template category or a file's base name. */
  group: string;
}

/** Longest user message taken from a benchmark row, in characters (cut at a word boundary). */
export const MAX_OOD_CHARS = 400;

function str(v: unknown): v is string {
  return typeof v === "string" && v.trim() !== "";
}

/** Cut `s` to at most `max` characters at a word boundary. */
function clip(s: string, max: number): string {
  const t = s.replace(/\s+/g, " ").trim();
  if (t.length <= max) return t;
  const cut = t.slice(0, max);
  const sp = cut.lastIndexOf(" ");
  return (sp > max / 2 ? cut.slice(0, sp) : cut).trim();
}

/** Strip the lm-eval "Question: ... Answer:" scaffolding from a context. */
function question(context: string): string {
  return context.replace(/\n?Answer:\s*$/, "").replace(/(^|\n)Question:\s*/g, "$1").trim();
}

/**
 * The user message a benchmark row becomes, or null for a row with nothing usable. Multiple
 * choice and GSM8K: the question (with its passage, clipped); WinoGrande: the sentence with
 * its first option; plain text: the paragraph, clipped. Throws on a row that is not an object.
 */
export function benchmarkRowToMessage(row: unknown, where: string): string | null {
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    throw new CalibrationDataError(`${where}: expected a JSON object`);
  }
  const r = row as Record<string, unknown>;
  let msg: string | null = null;
  if (str(r.context)) msg = question(r.context);
  else if (Array.isArray(r.contexts) && str(r.contexts[0]) && typeof r.continuation === "string") {
    msg = r.contexts[0] + r.continuation;
  } else if (str(r.text)) msg = r.text;
  if (msg === null || msg.trim() === "") return null;
  return clip(msg, MAX_OOD_CHARS);
}

/** Split of a benchmark row: half train, half held out, by a hash of its message. */
export function benchmarkSplit(message: string): OodSplit {
  return hash32(`ood-bench\u0000${message}`) % 2 === 0 ? "train" : "held-out";
}

/**
 * Up to `perFile` prompts from each benchmark JSONL file (a seeded sample of its usable rows),
 * each assigned to a split by {@link benchmarkSplit}. Errors name the file and line.
 */
export async function loadBenchmarkOod(
  paths: string[],
  perFile: number,
  seed: number,
): Promise<OodSample[]> {
  const out: OodSample[] = [];
  for (const p of paths) {
    let content: string;
    try {
      content = await Deno.readTextFile(p);
    } catch (e) {
      throw new CalibrationDataError(`${p}: cannot be read (${(e as Error).message})`);
    }
    const base = p.split("/").pop()!.replace(/\.jsonl$/, "");
    const rows: OodSample[] = [];
    const seen = new Set<string>();
    content.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new CalibrationDataError(`${p}:${i + 1}: not JSON (${(e as Error).message})`);
      }
      const msg = benchmarkRowToMessage(row, `${p}:${i + 1}`);
      if (msg === null || seen.has(msg)) return;
      seen.add(msg);
      rows.push({
        context: renderPrompt(msg),
        split: benchmarkSplit(msg),
        source: `${base}:${i + 1}`,
        group: base,
      });
    });
    if (rows.length === 0) throw new CalibrationDataError(`${p}: no usable rows`);
    const rand = rng(hash32(`${seed}:${base}`));
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [rows[i], rows[j]] = [rows[j], rows[i]];
    }
    out.push(...rows.slice(0, perFile));
  }
  return out;
}

/** The suite's generated prompts of both splits: `perSplit` of each. */
export function generatedOod(perSplit: number, seed: number): OodSample[] {
  return (["train", "held-out"] as const).flatMap((split) =>
    oodPrompts(perSplit, split, seed).map((p) => ({
      context: p.context,
      split,
      source: p.template,
      group: p.category,
    }))
  );
}

/** Router features of OOD prompts, split for training and held-out evaluation. */
export interface OodFeatures {
  /** [M, H] row i = mean hidden state after layer m-1 over prompt i */
  features: Float32Array;
  /** [M] split of each prompt */
  split: OodSplit[];
  /** [M] where each prompt came from */
  sources: string[];
  /** [M] reporting group of each prompt */
  groups: string[];
}

/**
 * Run the protected leading layers [0, m) over each OOD prompt and keep the router feature
 * (the prompt only: cheap). `onDone` is called after each prompt.
 */
export async function oodFeatures(
  model: Model,
  tok: Tokenizer,
  samples: OodSample[],
  m: number,
  maxTokens: number,
  onDone?: (done: number) => void,
): Promise<OodFeatures> {
  const H = model.config.hiddenSize;
  const features = new Float32Array(samples.length * H); // [M, H]
  for (const [i, s] of samples.entries()) {
    const ids = encodeSample(tok, s.context, maxTokens);
    const seq = new Sequence(model, { maxTokens: ids.length });
    try {
      features.set(await seq.prefillHead(ids, m), i * H);
    } finally {
      seq.free();
    }
    onDone?.(i + 1);
  }
  return {
    features,
    split: samples.map((s) => s.split),
    sources: samples.map((s) => s.source),
    groups: samples.map((s) => s.group),
  };
}
