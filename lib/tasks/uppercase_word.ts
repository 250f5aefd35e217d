/** Skill: upper-case a spelled-out word ("c a t" -> "C A T"). */

import { distractors, randomLetters, spell, withChoices } from "./letters.ts";
import { exactMatch, type Task } from "./task.ts";

/** Write a spelled-out word in capital letters. */
export const uppercaseWord: Task = {
  name: "uppercase",
  description: "write the letters of a spelled-out word in capitals",
  phrasings: [
    "Write in capital letters: {w}",
    "Uppercase these letters: {w}",
    "Convert to upper case: {w}",
    "Capitalize every letter: {w}",
    "Make these letters uppercase: {w}",
    "Put {w} in capitals.",
    "Change to capital letters: {w}",
    "How is {w} written in upper case?",
    "What is {w} in capital letters?",
    "{w} in uppercase, please.",
    "Can you write {w} in capitals?",
    "Turn {w} into upper case.",
    "Rewrite {w} with capital letters.",
    "Capital letters, please: {w}",
    "Change {w} to uppercase.",
    "Make {w} all caps.",
    "Uppercase: {w}",
    "Write {w} using capital letters only.",
    "Convert {w} to capitals.",
    "All caps, please: {w}",
    "I need {w} in upper case.",
    "Could you capitalize {w}?",
    "Switch these letters to uppercase: {w}",
    "Make every letter of {w} uppercase.",
    "Shout it: {w}",
    "Give me {w} in block capitals.",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const w = randomLetters(rng, 3, 6);
    const answer = spell(w.toUpperCase());
    const others = distractors(rng, answer, 3, (r) => {
      const i = r.int(0, w.length - 1);
      return spell(w.toUpperCase().slice(0, i) + w[i] + w.toUpperCase().slice(i + 1));
    });
    return { fields: { w: spell(w) }, answer, choices: withChoices(rng, answer, others) };
  },
  check: exactMatch,
};
