/**
 * The shape every skill of the task suite has: a seeded generator, several natural-language
 * phrasings (some held out of training), an answer checker and, where it fits, a
 * multiple-choice form.
 */

import type { Rng } from "./rng.ts";

/** One generated problem before it is phrased. */
export interface Problem {
  /** Values substituted into a phrasing's `{name}` slots. */
  fields: Record<string, string>;
  /** The exact expected answer (the assistant's whole reply). */
  answer: string;
  /** Multiple-choice options (each a complete reply), including `answer`, or undefined. */
  choices?: string[];
}

/** A skill of the suite. */
export interface Task {
  /** Stable task name, also the `task` field of every row. */
  name: string;
  /** One line saying what the skill is. */
  description: string;
  /** Prompt templates with `{field}` slots. */
  phrasings: readonly string[];
  /** Indices into `phrasings` that never appear in training (router / robustness test). */
  heldOut: readonly number[];
  /** Draw one problem. */
  sample(rng: Rng): Problem;
  /** True when a model's reply counts as correct. */
  check(output: string, answer: string): boolean;
}

/** A phrased problem: what a row of any split is built from. */
export interface Instance {
  task: string;
  /** Index of the phrasing used. */
  phrasing: number;
  /** True when that phrasing is held out of training. */
  heldOutPhrasing: boolean;
  prompt: string;
  answer: string;
  choices?: string[];
  gold?: number;
}

/** Fill `{name}` slots of a template; throws on a slot with no value. */
export function fillTemplate(template: string, fields: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const v = fields[key];
    if (v === undefined) throw new Error(`template "${template}" needs field "${key}"`);
    return v;
  });
}

/** Exact match after trimming surrounding whitespace: the default checker. */
export function exactMatch(output: string, answer: string): boolean {
  return output.trim() === answer.trim();
}

/** Phrase a problem with phrasing `p` of `task`. */
export function phrase(task: Task, problem: Problem, p: number): Instance {
  const inst: Instance = {
    task: task.name,
    phrasing: p,
    heldOutPhrasing: task.heldOut.includes(p),
    prompt: fillTemplate(task.phrasings[p], problem.fields),
    answer: problem.answer,
  };
  if (problem.choices) {
    inst.choices = problem.choices;
    inst.gold = problem.choices.indexOf(problem.answer);
    if (inst.gold < 0) throw new Error(`${task.name}: answer missing from choices`);
  }
  return inst;
}
