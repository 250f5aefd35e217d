/**
 * Calibration-set loader: JSON lines with `{task, text}` at the least, or the richer rows of
 * the benchmark sets (multiple choice `context` + `choices[gold]`, WinoGrande `contexts[gold]`
 * + `continuation`, generation `context` + `target`), or the project's suite rows (`text` plus
 * the chat-rendered `context` and `held_out_phrasing`).
 */

import { rng } from "../util/seeded_rng.ts";

/** One calibration sample. */
export interface CalibrationSample {
  task: string;
  /** Text whose activations are collected (prompt + answer). */
  text: string;
  /**
   * The prompt alone, as the server would see it (router feature); equals `text` when the row
   * has no separate prompt.
   */
  prompt: string;
  /** True when the row's phrasing is held out of training (router generalisation test). */
  heldOutPhrasing: boolean;
  /** Where it came from, e.g. "calibration.jsonl:12". */
  source: string;
}

/** Error for an unusable row; the message names file and line. */
export class CalibrationDataError extends Error {
  override name = "CalibrationDataError";
}

function str(v: unknown): v is string {
  return typeof v === "string";
}

/** Turn one parsed JSON row into a sample; throws with `where` in the message. */
export function rowToSample(row: unknown, where: string): CalibrationSample {
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    throw new CalibrationDataError(`${where}: expected a JSON object`);
  }
  const r = row as Record<string, unknown>;
  if (!str(r.task) || r.task === "") {
    throw new CalibrationDataError(`${where}: missing string field "task"`);
  }
  const gold = typeof r.gold === "number" ? r.gold : undefined;
  let text: string | undefined;
  let prompt: string | undefined;
  if (str(r.text)) {
    text = r.text;
    prompt = str(r.context) && r.text.startsWith(r.context) ? r.context : undefined;
  } else if (str(r.context) && Array.isArray(r.choices) && gold !== undefined) {
    const c = r.choices[gold];
    if (!str(c)) throw new CalibrationDataError(`${where}: choices[${gold}] is not a string`);
    text = r.context + c;
    prompt = r.context;
  } else if (Array.isArray(r.contexts) && str(r.continuation) && gold !== undefined) {
    const c = r.contexts[gold];
    if (!str(c)) throw new CalibrationDataError(`${where}: contexts[${gold}] is not a string`);
    text = c + r.continuation;
    prompt = c;
  } else if (str(r.context) && str(r.target)) {
    text = r.context + r.target;
    prompt = r.context;
  } else if (str(r.context)) {
    text = r.context;
  }
  if (text === undefined || text.length === 0) {
    throw new CalibrationDataError(
      `${where}: no text (need "text", or "context"+"choices"+"gold", "contexts"+"continuation"+"gold", or "context"+"target")`,
    );
  }
  return {
    task: r.task,
    text,
    prompt: prompt ?? text,
    heldOutPhrasing: r.held_out_phrasing === true,
    source: where,
  };
}

/** Parse JSON-lines text (blank lines skipped). `name` is used in error messages. */
export function parseCalibrationJsonl(content: string, name: string): CalibrationSample[] {
  const out: CalibrationSample[] = [];
  content.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new CalibrationDataError(`${name}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    out.push(rowToSample(row, `${name}:${i + 1}`));
  });
  return out;
}

/** Load and concatenate several calibration files. */
export async function loadCalibrationFiles(paths: string[]): Promise<CalibrationSample[]> {
  const all: CalibrationSample[] = [];
  for (const p of paths) {
    let content: string;
    try {
      content = await Deno.readTextFile(p);
    } catch (e) {
      throw new CalibrationDataError(`${p}: cannot be read (${(e as Error).message})`);
    }
    all.push(...parseCalibrationJsonl(content, p));
  }
  if (all.length === 0) throw new CalibrationDataError(`no rows in ${paths.join(", ")}`);
  return all;
}

/**
 * Group samples by task (tasks in first-seen order) and keep at most `perTask` of each, chosen
 * by a seeded shuffle so every phrasing has its chance.
 */
export function samplesByTask(
  samples: CalibrationSample[],
  perTask: number,
  seed: number,
): Map<string, CalibrationSample[]> {
  const groups = new Map<string, CalibrationSample[]>();
  for (const s of samples) groups.set(s.task, [...(groups.get(s.task) ?? []), s]);
  const rand = rng(seed);
  for (const [task, g] of groups) {
    for (let i = g.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [g[i], g[j]] = [g[j], g[i]];
    }
    groups.set(task, g.slice(0, perTask));
  }
  return groups;
}

/**
 * Per task, a seeded shuffle (the one {@link samplesByTask} makes) split into the rows used for
 * statistics and the router (`rest`, in shuffled order) and up to `heldOut` rows kept apart
 * for mask validation (the last of the shuffle, at most a quarter of the task's rows), so the
 * held-out rows are never in the statistics and the same seed finds them again.
 */
export function splitHeldOut(
  samples: CalibrationSample[],
  heldOut: number,
  seed: number,
): { rest: Map<string, CalibrationSample[]>; heldOut: Map<string, CalibrationSample[]> } {
  const all = samplesByTask(samples, Infinity, seed);
  const rest = new Map<string, CalibrationSample[]>();
  const held = new Map<string, CalibrationSample[]>();
  for (const [task, g] of all) {
    const h = Math.max(0, Math.min(heldOut, Math.floor(g.length / 4)));
    rest.set(task, g.slice(0, g.length - h));
    held.set(task, g.slice(g.length - h));
  }
  return { rest, heldOut: held };
}
