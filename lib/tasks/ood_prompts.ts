/**
 * Out-of-distribution chat prompts: ordinary requests that belong to no skill of the suite
 * (greetings, writing, explanations, code, advice, trivia, story and news sentences,
 * multi-sentence messages, other languages, lists, ...). The router must send them to the
 * generic mask (docs/design.md, Router).
 *
 * Every template belongs to exactly one split, "train" or "held-out", fixed by its id, so a
 * held-out prompt is never a paraphrase of a training one: it comes from a template (and
 * often a category) the router never saw. Generation is a pure function of the seed.
 */

import { renderPrompt } from "./chat_format.ts";
import { OOD_TEMPLATES, type OodSplit, type OodTemplate } from "./ood_templates.ts";
import { hash32, Rng } from "./rng.ts";

/** One generated prompt. */
export interface OodPrompt {
  /** The user's message. */
  prompt: string;
  /** Chat-rendered prompt ending with the assistant header (what the router sees). */
  context: string;
  template: string;
  category: string;
  split: OodSplit;
}

/** The templates of one split. */
export function oodTemplates(split: OodSplit): OodTemplate[] {
  return OOD_TEMPLATES.filter((t) => t.split === split);
}

/**
 * `count` distinct prompts from the templates of `split`, round-robin over the templates (so
 * every template is represented), each drawn from a seeded stream. Stops early when the
 * templates cannot give more distinct prompts.
 */
export function oodPrompts(count: number, split: OodSplit, seed = 0): OodPrompt[] {
  const templates = oodTemplates(split);
  const streams = templates.map((t) => new Rng(hash32(`ood:${seed}:${t.id}`)));
  const seen = new Set<string>();
  const out: OodPrompt[] = [];
  let misses = 0;
  for (let i = 0; out.length < count && misses < 50 * templates.length; i++) {
    const k = i % templates.length;
    const t = templates[k];
    const prompt = t.make(streams[k]);
    if (seen.has(prompt)) {
      misses++;
      continue;
    }
    seen.add(prompt);
    out.push({
      prompt,
      context: renderPrompt(prompt),
      template: t.id,
      category: t.category,
      split,
    });
  }
  return out;
}
