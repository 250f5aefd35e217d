/** Skill: count how often a letter appears in a short spelled-out word (0 to 3). */

import { ALPHABET, spell, withChoices } from "./letters.ts";
import { exactMatch, type Task } from "./task.ts";

/** Count one letter in a short spelled-out word. */
export const countLetter: Task = {
  name: "count_letter",
  description: "count how many times a letter appears in a short spelled-out word",
  phrasings: [
    "How many times does the letter {c} appear in {w}?",
    "Count the letter {c} in {w}",
    "How many {c} are in {w}?",
    "Count how often {c} occurs in {w}",
    "Number of times {c} appears in {w}?",
    "In {w}, how many times does {c} occur?",
    "How often is the letter {c} in {w}?",
    "Tell me how many {c} letters {w} has.",
    "How many letters {c} does {w} contain?",
    "In the letters {w}, count the {c}.",
    "Can you count the {c} in {w}?",
    "{w}: how many times does {c} appear?",
    "How many times is {c} in {w}?",
    "Count the {c} in {w}.",
    "How many {c} does {w} have?",
    "Number of {c} in {w}?",
    "Count occurrences of {c} in {w}",
    "Please give the count of {c} in {w}.",
    "Could you count how many {c} are in {w}?",
    "How many times do you see {c} in {w}?",
    "Look at {w} and count the {c}.",
    "Count {c} in {w}",
    "In {w}, count the letter {c}.",
    "What is the number of {c} letters in {w}?",
    "How frequently does {c} appear in {w}?",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const c = rng.pick(ALPHABET.split(""));
    const len = rng.int(4, 6);
    const count = rng.int(0, 3);
    const others = ALPHABET.replace(c, "").split("");
    const letters: string[] = [];
    for (let i = 0; i < len; i++) letters.push(i < count ? c : rng.pick(others));
    const answer = String(count);
    return {
      fields: { c, w: spell(rng.shuffle(letters).join("")) },
      answer,
      choices: withChoices(rng, answer, ["0", "1", "2", "3"].filter((x) => x !== answer)),
    };
  },
  check: exactMatch,
};
