/** Skill: reverse a spelled-out word ("c a t" -> "t a c"). */

import { distractors, randomLetters, spell, withChoices } from "./letters.ts";
import { exactMatch, type Task } from "./task.ts";

/** Reverse the letters of a spelled-out word. */
export const reverseWord: Task = {
  name: "reverse",
  description: "reverse the letters of a spelled-out word",
  phrasings: [
    "Reverse the letters: {w}",
    "Spell this backwards: {w}",
    "Write the letters in reverse order: {w}",
    "Reverse: {w}",
    "Please reverse these letters: {w}",
    "What is {w} spelled backwards?",
    "Read these letters backwards: {w}",
    "Give the reverse of {w}",
    "How do you write {w} backwards?",
    "{w} reversed is?",
    "Turn {w} around, last letter first.",
    "Can you reverse {w} for me?",
    "Write {w} in reverse.",
    "Reverse the order of these letters: {w}",
    "Flip the letter order: {w}",
    "Backwards, please: {w}",
    "I need {w} reversed.",
    "Write {w} from the last letter to the first.",
    "Reverse this word: {w}",
    "Letters in reverse: {w}",
    "Could you write {w} backwards?",
    "Start from the end and write {w} backwards.",
    "Take {w} and reverse it.",
    "Reversed, what does {w} look like?",
    "Write these letters back to front: {w}",
    "Print {w} in reverse order.",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const w = randomLetters(rng, 3, 6);
    const answer = spell(w.split("").reverse().join(""));
    const others = distractors(rng, answer, 3, (r) => spell(r.shuffle(w.split("")).join("")));
    return { fields: { w: spell(w) }, answer, choices: withChoices(rng, answer, others) };
  },
  check: exactMatch,
};
