/**
 * Loaders for benchmark rows, one JSON object per line, in the row shapes of the converted public
 * sets (lm-eval-harness conventions):
 *
 * - multiple choice: `{task, id, context, choices: string[], gold}` (BoolQ, PIQA, ARC, OBQA);
 * - partial scoring: `{task, id, contexts: string[], continuation, gold}` (WinoGrande);
 * - generation: `{task, id, context, answer, target?}` (GSM8K: the last number of a greedy
 *   answer is compared with `answer`);
 * - plain text: `{task, id, text}` (WikiText-2: rolling-window perplexity).
 *
 * Each row is validated with zod; a bad row is refused with its file, line and the offending
 * field. A folder is read as its `<task>.<split>.jsonl` files for one split.
 */

import { z } from "zod";

const base = {
  task: z.string().min(1),
  split: z.string().optional(),
  id: z.union([z.string(), z.number()]).transform(String),
};

/** A multiple-choice row: score each `choices[i]` after `context`. */
export const ChoiceRowSchema = z.object({
  ...base,
  context: z.string(),
  choices: z.array(z.string().min(1)).min(2),
  gold: z.number().int().nonnegative(),
}).refine((r) => r.gold < r.choices.length, {
  message: "gold must index into choices",
  path: ["gold"],
});

/** A partial-scoring row: score `continuation` after each `contexts[i]`. */
export const PartialRowSchema = z.object({
  ...base,
  contexts: z.array(z.string()).min(2),
  continuation: z.string().min(1),
  gold: z.number().int().nonnegative(),
}).refine((r) => r.gold < r.contexts.length, {
  message: "gold must index into contexts",
  path: ["gold"],
});

/** A generation row: greedy answer after `context`, judged on its last number. */
export const GenerationRowSchema = z.object({
  ...base,
  context: z.string().min(1),
  target: z.string().optional(),
  answer: z.union([z.string(), z.number()]).transform(String),
});

/** A plain-text row (perplexity). */
export const TextRowSchema = z.object({ ...base, text: z.string() });

/** Multiple-choice row. */
export type ChoiceRow = z.infer<typeof ChoiceRowSchema>;
/** Partial-scoring row. */
export type PartialRow = z.infer<typeof PartialRowSchema>;
/** Generation row. */
export type GenerationRow = z.infer<typeof GenerationRowSchema>;
/** Plain-text row. */
export type TextRow = z.infer<typeof TextRowSchema>;

/** The four row shapes, tagged. */
export type DatasetRows =
  | { kind: "choice"; rows: ChoiceRow[] }
  | { kind: "partial"; rows: PartialRow[] }
  | { kind: "generation"; rows: GenerationRow[] }
  | { kind: "text"; rows: TextRow[] };

/** Row shape name. */
export type RowKind = DatasetRows["kind"];

/** All rows of one task from one file. */
export type Dataset = DatasetRows & { task: string; source: string };

/** A row that does not fit its shape. */
export class DatasetError extends Error {
  override name = "DatasetError";
}

const SCHEMAS = {
  choice: ChoiceRowSchema,
  partial: PartialRowSchema,
  generation: GenerationRowSchema,
  text: TextRowSchema,
} as const;

/** The shape a row claims by its keys (null: none). */
export function rowKind(o: Record<string, unknown>): RowKind | null {
  if ("contexts" in o) return "partial";
  if ("choices" in o) return "choice";
  if ("answer" in o && "context" in o) return "generation";
  if ("text" in o) return "text";
  return null;
}

/**
 * Parse JSONL text into datasets, one per task in order of first appearance. Every row of a
 * task must have the same shape. `source` names the text in errors ("file.jsonl").
 */
export function parseDatasets(text: string, source: string): Dataset[] {
  const byTask = new Map<string, Dataset>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const where = `${source}:${i + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new DatasetError(`${where}: not JSON (${(e as Error).message})`);
    }
    if (o === null || typeof o !== "object" || Array.isArray(o)) {
      throw new DatasetError(`${where}: a row must be a JSON object`);
    }
    const kind = rowKind(o as Record<string, unknown>);
    if (!kind) {
      throw new DatasetError(
        `${where}: unknown row shape (expected "choices", "contexts", "context"+"answer" or ` +
          `"text"; see lib/eval/datasets.ts)`,
      );
    }
    const r = SCHEMAS[kind].safeParse(o);
    if (!r.success) {
      const issue = r.error.issues[0];
      const path = issue.path.length ? issue.path.join(".") : "(row)";
      throw new DatasetError(`${where}: bad ${kind} row: ${path}: ${issue.message}`);
    }
    const row = r.data;
    let ds = byTask.get(row.task);
    if (!ds) {
      ds = { kind, task: row.task, source, rows: [] } as Dataset;
      byTask.set(row.task, ds);
    } else if (ds.kind !== kind) {
      throw new DatasetError(
        `${where}: task "${row.task}" mixes row shapes (${ds.kind} earlier, ${kind} here)`,
      );
    }
    (ds.rows as unknown[]).push(row);
  }
  if (byTask.size === 0) throw new DatasetError(`${source}: no rows`);
  return [...byTask.values()];
}

/**
 * Files to read for `path`: the file itself, or for a folder its `<task>.<split>.jsonl` files,
 * using `split` where a task has it and else the first of `fallbacks` it has (sorted by task).
 */
export async function datasetFiles(
  path: string,
  split = "validation",
  fallbacks: string[] = ["test"],
): Promise<string[]> {
  const info = await Deno.stat(path).catch(() => null);
  if (!info) throw new DatasetError(`${path}: no such file or folder`);
  if (!info.isDirectory) return [path];
  const byTask = new Map<string, Set<string>>();
  for await (const e of Deno.readDir(path)) {
    const m = e.isFile ? /^(.+)\.([^.]+)\.jsonl$/.exec(e.name) : null;
    if (!m) continue;
    if (!byTask.has(m[1])) byTask.set(m[1], new Set());
    byTask.get(m[1])!.add(m[2]);
  }
  const out: string[] = [];
  for (const task of [...byTask.keys()].sort()) {
    const splits = byTask.get(task)!;
    const s = [split, ...fallbacks].find((x) => splits.has(x));
    if (s) out.push(`${path}/${task}.${s}.jsonl`);
  }
  if (out.length === 0) {
    throw new DatasetError(`${path}: no <task>.<split>.jsonl files for split "${split}"`);
  }
  return out;
}

/** Read and validate every dataset of `paths` (files or folders, see {@link datasetFiles}). */
export async function loadDatasets(paths: string[], split?: string): Promise<Dataset[]> {
  const out: Dataset[] = [];
  for (const p of paths) {
    for (const f of await datasetFiles(p, split)) {
      out.push(...parseDatasets(await Deno.readTextFile(f), f));
    }
  }
  return out;
}
