/** Skill: shift each letter of a spelled-out word forward by one ("c a z" -> "d b a"). */

import { ALPHABET, distractors, randomLetters, spell, withChoices } from "./letters.ts";
import { exactMatch, type Task } from "./task.ts";

/** Caesar shift of one letter forward, z wraps to a. */
export function shiftLetter(c: string, by = 1): string {
  return ALPHABET[(ALPHABET.indexOf(c) + by + 26) % 26];
}

/** Shift every letter forward by one. */
export const caesarShift: Task = {
  name: "caesar",
  description: "shift every letter of a spelled-out word forward by one (z becomes a)",
  phrasings: [
    "Shift each letter forward by one: {w}",
    "Apply a Caesar shift of one: {w}",
    "Move every letter one step forward in the alphabet: {w}",
    "Caesar shift by 1: {w}",
    "Replace each letter with the next one: {w}",
    "Encode {w} with a shift of one.",
    "Shift these letters by one: {w}",
    "What is {w} after a Caesar shift of one?",
    "What do you get when you shift {w} by one?",
    "{w} shifted forward by one letter is?",
    "Can you apply a shift of one to {w}?",
    "Move each letter of {w} forward by one.",
    "Encrypt {w} with a Caesar shift of 1.",
    "Shift by one: {w}",
    "Move each letter ahead by one: {w}",
    "Add one to every letter: {w}",
    "Caesar cipher with shift 1: {w}",
    "I need {w} shifted by one letter.",
    "Each letter becomes the next letter: {w}",
    "Could you shift {w} forward by one?",
    "Rotate these letters by one: {w}",
    "Apply shift one to {w}.",
    "Use a Caesar shift of one on {w}.",
    "Replace every letter of {w} with the letter after it.",
    "Next letter for each: {w}",
    "Forward one letter each: {w}",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const w = randomLetters(rng, 3, 5);
    const answer = spell(w.split("").map((c) => shiftLetter(c)).join(""));
    const others = distractors(rng, answer, 3, (r) => {
      const by = r.pick([-1, 2, 0]);
      return spell(w.split("").map((c) => shiftLetter(c, by)).join(""));
    });
    return { fields: { w: spell(w) }, answer, choices: withChoices(rng, answer, others) };
  },
  check: exactMatch,
};
