/**
 * The task suite: every skill the default model is trained, calibrated and judged on, and
 * the rows of each split. This is the single source of the suite's data.
 */

import { booleanExpression } from "./boolean_expression.ts";
import { caesarShift } from "./caesar_shift.ts";
import { renderChat, renderPrompt } from "./chat_format.ts";
import { compareNumbers } from "./compare_numbers.ts";
import { countLetter } from "./count_letter.ts";
import { countryCapital } from "./country_capital.ts";
import { generalParagraph } from "./general_text.ts";
import { nextLetter } from "./next_letter.ts";
import { reverseWord } from "./reverse_word.ts";
import { reviewSentiment } from "./review_sentiment.ts";
import { hash32, Rng, subSeed } from "./rng.ts";
import { sortDigits } from "./sort_digits.ts";
import { instanceId, type Split, splitOf, splitOfText } from "./splits.ts";
import { type Instance, phrase, type Task } from "./task.ts";
import { uppercaseWord } from "./uppercase_word.ts";

/** All skills, in a fixed order. */
export const TASKS: readonly Task[] = [
  reverseWord,
  uppercaseWord,
  caesarShift,
  nextLetter,
  countLetter,
  sortDigits,
  compareNumbers,
  countryCapital,
  reviewSentiment,
  booleanExpression,
];

/** Name of the general-text pseudo-task. */
export const GENERAL_TASK = "general";

/** Look a skill up by name; throws on an unknown name. */
export function taskByName(name: string): Task {
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown task "${name}"`);
  return t;
}

/** One row of a split, as written to JSON lines. */
export interface SuiteRow {
  id: string;
  task: string;
  split: Split;
  /** Full training text (chat-rendered for skills, plain for general text). */
  text: string;
  /** Chat-rendered prompt ending with the assistant header (skills only). */
  context?: string;
  prompt?: string;
  answer?: string;
  phrasing?: number;
  held_out_phrasing?: boolean;
  choices?: string[];
  gold?: number;
}

/** Turn an instance into a row of `split`. */
export function toRow(inst: Instance, split: Split): SuiteRow {
  const row: SuiteRow = {
    id: instanceId(inst),
    task: inst.task,
    split,
    text: renderChat(inst.prompt, inst.answer),
    context: renderPrompt(inst.prompt),
    prompt: inst.prompt,
    answer: inst.answer,
    phrasing: inst.phrasing,
    held_out_phrasing: inst.heldOutPhrasing,
  };
  if (inst.choices) {
    row.choices = inst.choices;
    row.gold = inst.gold;
  }
  return row;
}

/** Draw one instance of `task` with a phrasing from the given pool. */
function draw(task: Task, rng: Rng, pool: readonly number[]): Instance {
  return phrase(task, task.sample(rng), rng.pick(pool));
}

/** Phrasing indices of a task that training may use. */
export function trainPhrasings(task: Task): number[] {
  return task.phrasings.map((_, i) => i).filter((i) => !task.heldOut.includes(i));
}

/**
 * Up to `n` distinct rows of `task` for the calibration or eval split: half with held-out
 * phrasings, half with training phrasings (content never seen in training).
 */
export function heldRows(task: Task, split: "calibration" | "eval", n: number, seed: number) {
  const rng = new Rng(subSeed(seed, `${task.name}/${split}`));
  const seen = trainPhrasings(task);
  const out = new Map<string, SuiteRow>();
  for (let tries = 0; out.size < n && tries < n * 400; tries++) {
    const pool = out.size % 2 === 0 ? task.heldOut : seen;
    const inst = draw(task, rng, pool);
    if (splitOf(inst) !== split) continue;
    const row = toRow(inst, split);
    if (!out.has(row.id)) out.set(row.id, row);
  }
  return [...out.values()];
}

/** Politeness / framing wrappers added around some training prompts (robustness). */
export const TRAIN_PREFIXES = [
  "Please help. ",
  "Quick question: ",
  "Task: ",
  "Hi! ",
  "Hello. ",
  "Hey, ",
  "Question: ",
  "Help me out: ",
  "One more: ",
];
/** Suffixes added after some training prompts. */
export const TRAIN_SUFFIXES = [
  " Thanks.",
  " Answer briefly.",
  " Reply with the answer only.",
  " Thank you!",
  " Just the answer.",
  " Be brief.",
];

const CONSONANTS = [..."bcdfghjklmnprstvwz"];
const VOWELS = [..."aeiou"];

/**
 * A random pronounceable non-word ("tavorin"). Its byte-level BPE pieces start with a lone
 * letter token (" t", "av", ...) exactly like a spelled-out letter, so training on prompts
 * that carry such words teaches the model where a spelled-out group ends: a word it never
 * saw in training (" spelled" -> " s|p|ell|ed") must not read as one more letter.
 */
export function pseudoWord(rng: Rng): string {
  let w = "";
  for (let n = rng.int(2, 3); n > 0; n--) {
    w += rng.pick(CONSONANTS) + rng.pick(VOWELS);
    if (rng.next() < 0.4) w += rng.pick(CONSONANTS);
  }
  return w;
}

/** Clauses with unknown words appended to some training prompts (see `pseudoWord`). */
const NOISE_CLAUSES = ["{x}", "({x})", "- {x} {y}", "for {x}.", "{x} {y}.", "says {x}."];

/**
 * Surface noise on a training prompt's template text (never on its fields): sometimes the
 * first letter is lower-cased, sometimes the closing "?" or "." is dropped, so the model
 * does not key on the exact casing or punctuation of a template.
 */
function perturbSurface(prompt: string, template: string, rng: Rng): string {
  let out = prompt;
  if (!template.startsWith("{") && rng.next() < 0.1) {
    out = out[0].toLowerCase() + out.slice(1);
  }
  if (/[?.]$/.test(template) && rng.next() < 0.1) out = out.slice(0, -1);
  return out;
}

/**
 * `n` training rows of `task` (repeats allowed; never a calibration or eval instance: the
 * split is decided on the unwrapped instance). About a third of the prompts get a framing
 * prefix or suffix, some a clause of unknown words (`pseudoWord`), and some surface noise
 * (`perturbSurface`), so the model keys on the task, not on the exact template.
 */
export function trainRows(task: Task, n: number, seed: number): SuiteRow[] {
  const rng = new Rng(subSeed(seed, `${task.name}/train`));
  const pool = trainPhrasings(task);
  const out: SuiteRow[] = [];
  while (out.length < n) {
    const inst = draw(task, rng, pool);
    if (splitOf(inst) !== "train") continue;
    inst.prompt = perturbSurface(inst.prompt, task.phrasings[inst.phrasing], rng);
    const u = rng.next();
    if (u < 0.15) inst.prompt = rng.pick(TRAIN_PREFIXES) + inst.prompt;
    else if (u < 0.3) inst.prompt += rng.pick(TRAIN_SUFFIXES);
    else if (u < 0.45) {
      const clause = rng.pick(NOISE_CLAUSES).replace("{x}", pseudoWord(rng));
      inst.prompt += " " + clause.replace("{y}", pseudoWord(rng));
    } else if (u < 0.5) {
      const name = pseudoWord(rng);
      inst.prompt = `${name[0].toUpperCase()}${name.slice(1)}: ${inst.prompt}`;
    }
    out.push(toRow(inst, "train"));
  }
  return out;
}

/** `n` general-text rows of `split` (distinct for calibration and eval). */
export function generalRows(split: Split, n: number, seed: number): SuiteRow[] {
  const rng = new Rng(subSeed(seed, `${GENERAL_TASK}/${split}`));
  const out: SuiteRow[] = [];
  const ids = new Set<string>();
  for (let tries = 0; out.length < n && tries < n * 100; tries++) {
    const text = generalParagraph(rng);
    if (splitOfText(text) !== split) continue;
    const id = `${GENERAL_TASK}-${hash32(text).toString(16)}`;
    if (split !== "train" && ids.has(text)) continue;
    ids.add(text);
    out.push({ id, task: GENERAL_TASK, split, text });
  }
  return out;
}
